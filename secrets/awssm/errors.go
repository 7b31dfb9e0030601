package awssm

import (
	"errors"
	"strings"
)

// Sentinel errors. Every error from this package is an *Error whose Kind is
// one of these, or secrets.ErrNotFound / secrets.ErrEmpty; test with
// errors.Is.
var (
	// ErrConfig means the Config passed to New is invalid, or the SDK
	// could not load the AWS configuration (e.g. an unknown AWS_PROFILE).
	ErrConfig = errors.New("invalid AWS Secrets Manager configuration")
	// ErrNoRegion means the SDK's configuration chain found no region.
	ErrNoRegion = errors.New("no AWS region")
	// ErrNoCredentials means no credentials were found, or AWS rejected them.
	ErrNoCredentials = errors.New("no usable AWS credentials")
	// ErrAccessDenied means the credentials may not read the secret (or
	// decrypt it with its KMS key).
	ErrAccessDenied = errors.New("access denied")
	// ErrUnreachable means Secrets Manager did not answer: connection
	// refused, DNS failure, TLS failure or timeout.
	ErrUnreachable = errors.New("secrets manager unreachable")
	// ErrService means Secrets Manager answered with an error that is not
	// one of the above (internal error, throttling, invalid request).
	ErrService = errors.New("secrets manager error")
	// ErrFormat means the secret's content is not what tickgate expects: not
	// JSON, not a JSON object, a field that is not a string, or binary data.
	ErrFormat = errors.New("unexpected secret format")
	// ErrClosed means the provider was closed.
	ErrClosed = errors.New("provider closed")
)

// Error is the one error type the provider returns. Its text is a single
// line naming the tickgate secret, the Secrets Manager secret id and, for
// JSON secrets, the field; it never contains a secret value or raw SDK
// text that could.
type Error struct {
	// Name is the secret's name in tickgate; empty when the error concerns
	// no single name (most errors from New).
	Name string
	// SecretID is the Secrets Manager secret id (name or ARN).
	SecretID string
	// Field is the JSON field the problem is about; empty when it is about
	// the whole secret.
	Field string
	// Problem says what went wrong, in words meant for an operator.
	Problem string
	// RequestID is AWS's request id when there was a response.
	RequestID string
	// Kind is the sentinel the error matches with errors.Is.
	Kind error
}

// Error returns e.g. `secret VENDOR_KEY: AWS secret "prod/tickgate" field
// "VENDOR_KEY": not in the JSON object (it has 2 fields)`.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Name != "" {
		b.WriteString("secret ")
		b.WriteString(e.Name)
		b.WriteString(": ")
	}
	if e.SecretID != "" {
		b.WriteString("AWS secret ")
		b.WriteString(quote(e.SecretID))
		if e.Field != "" {
			b.WriteString(" field ")
			b.WriteString(quote(e.Field))
		}
		b.WriteString(": ")
	} else {
		b.WriteString("AWS Secrets Manager: ")
	}
	b.WriteString(e.Problem)
	if e.RequestID != "" {
		b.WriteString(" (request id ")
		b.WriteString(oneLine(e.RequestID, 100))
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns Kind, so errors.Is(err, secrets.ErrNotFound) and
// errors.Is(err, ErrAccessDenied) work.
func (e *Error) Unwrap() error { return e.Kind }

// quote quotes an id or field name so that odd characters cannot break the
// one-line rule.
func quote(s string) string {
	return `"` + oneLine(s, 2048) + `"`
}

// oneLine makes s safe to print on one line: control characters become
// '?', quotes are escaped, and it is cut to max bytes.
func oneLine(s string, max int) string {
	if len(s) > max {
		s = s[:max] + "…"
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029':
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
