// Package logging builds the one *slog.Logger that cmd/tickgate passes to
// every package, and makes it safe to hand anything to: DESIGN section 9
// says logs never contain cookies, session ids, Authorization or key
// values, and BRIEF section 2 says all access is logged. Secret values
// are already a type that cannot print (secrets.Value); this package is
// the last line of defence for everything else.
//
// # Handlers
//
// New picks JSON for production (and anything that is not a terminal)
// and text on a terminal, at the configured level, and wraps the handler
// with a Redactor and the request context.
//
// # Redaction
//
// A Redactor scrubs every record before it is written:
//
//   - the values registered with Set (vendor keys from the secrets cache
//     on every load and refresh, the demo password, an OIDC client
//     secret), also URL-encoded and JSON-escaped, wherever they occur:
//     the message, string attributes, errors, groups, URLs and other
//     values (as fmt, encoding/json and MarshalText render them);
//   - the value of any attribute whose key names a credential (cookie,
//     set-cookie, authorization, password, token, secret, api_key, ...),
//     whatever its type, including http.Header and cookies;
//   - credential-shaped text: "Authorization: ...", "Cookie: ...",
//     "Bearer ...", the session cookie's name=value, and URL query
//     parameters named like a key or token (apikey=, token=, code=, ...).
//
// # Request context
//
// WithRequestID stores a request's id in its context; every record logged
// with that context (slog's ...Context methods and LogAttrs) carries it as
// request_id, so the lines of one request can be found together.
//
// # Audit events
//
// Audit events are ordinary records with the attribute audit=true (Audit)
// and stable field names, so a log pipeline can route them to their own
// stream with one filter. README.md lists them.
//
// Example:
//
//	red := logging.NewRedactor()
//	log, err := logging.New(os.Stderr, logging.Options{Format: "json", Level: "info", Redactor: red})
//	red.Set("secrets", key.Reveal())
//	log.Info("upstream call failed", "err", err) // the key never appears
package logging
