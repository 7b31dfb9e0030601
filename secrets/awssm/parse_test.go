package awssm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/tickgate/tickgate/secrets"
)

func TestParseRef(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		want    ref
		wantErr string
	}{
		{"vendor/x", ref{id: "vendor/x"}, ""},
		{"vendor/x#key", ref{id: "vendor/x", field: "key"}, ""},
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:vendor/x-AbCdEf#api key", ref{id: "arn:aws:secretsmanager:us-east-1:123456789012:secret:vendor/x-AbCdEf", field: "api key"}, ""},
		{"", ref{}, "empty secret id"},
		{"#key", ref{}, "empty secret id"},
		{"vendor/x#", ref{}, `nothing after "#"`},
		{"vendor x", ref{}, "spaces"},
		{"vendor/x#a\nb", ref{}, "control characters"},
		{strings.Repeat("a", 2049), ref{}, "longer than 2048"},
	}
	for _, tc := range cases {
		got, err := parseRef(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseRef(%q) err = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseRef(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestExtract(t *testing.T) {
	t.Parallel()
	field := ref{id: "s", field: "K"}
	whole := ref{id: "s"}
	cases := []struct {
		name  string
		text  string
		r     ref
		want  string
		kind  error
		msg   string
		field bool
	}{
		{"field", `{"K":"v1","L":"v2"}`, field, "v1", nil, "", false},
		{"field trimmed", "{\"K\":\"  v1\\n\"}", field, "v1", nil, "", false},
		{"field escaped", `{"K":"a\"b\u00e9"}`, field, "a\"bé", nil, "", false},
		{"object with space", " \n{\"K\":\"v\"}\n", field, "v", nil, "", false},
		{"whole", "v1", whole, "v1", nil, "", false},
		{"whole trimmed", " v1 \n", whole, "v1", nil, "", false},
		{"whole JSON string kept as text", `"v1"`, whole, `"v1"`, nil, "", false},
		{"whole broken object kept as text", `{v1`, whole, `{v1`, nil, "", false},
		{"whole object", `{"K":"v"}`, whole, "", ErrFormat, `reference one field as "s#FIELD"`, false},
		{"whole empty", "  ", whole, "", secrets.ErrEmpty, "empty secret string", false},
		{"missing field", `{"L":"v"}`, field, "", secrets.ErrNotFound, "it has 1 field", true},
		{"no fields", `{}`, field, "", secrets.ErrNotFound, "it has no fields", true},
		{"case differs", `{"k":"v"}`, field, "", secrets.ErrNotFound, "differs only in upper/lower case", true},
		{"number", `{"K":1}`, field, "", ErrFormat, "a JSON number, not a string", true},
		{"bool", `{"K":true}`, field, "", ErrFormat, "a JSON boolean", true},
		{"array", `{"K":["v"]}`, field, "", ErrFormat, "a JSON array", true},
		{"null", `{"K":null}`, field, "", ErrFormat, "a JSON null", true},
		{"empty field", `{"K":""}`, field, "", secrets.ErrEmpty, "empty", true},
		{"not json", `v1`, field, "", ErrFormat, "not valid JSON (syntax error at byte 1)", false},
		{"trailing comma", `{"K":"v",}`, field, "", ErrFormat, "not valid JSON (syntax error at byte", false},
		{"top array", `["v"]`, field, "", ErrFormat, "a JSON array, not an object", false},
		{"top string", `"v"`, field, "", ErrFormat, "a JSON string, not an object", false},
		{"top number", `12`, field, "", ErrFormat, "a JSON number, not an object", false},
		{"empty text", ``, field, "", secrets.ErrEmpty, "empty secret string", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, p := extract(tc.text, tc.r)
			if tc.kind == nil {
				if p != nil || got != tc.want {
					t.Fatalf("extract = %q, %+v; want %q", got, p, tc.want)
				}
				return
			}
			if p == nil {
				t.Fatalf("extract = %q, want a problem", got)
			}
			if !errors.Is(p.kind, tc.kind) || !strings.Contains(p.msg, tc.msg) || p.field != tc.field {
				t.Fatalf("problem = %+v, want kind %v, field %v, containing %q", p, tc.kind, tc.field, tc.msg)
			}
		})
	}
}

// FuzzExtract: secret contents are untrusted input. extract never panics,
// a success is the trimmed field or text, and a problem never quotes the
// content (marker) nor encoding/json's 'x' character quotes.
func FuzzExtract(f *testing.F) {
	const marker = "Zq7x"
	for _, s := range []string{
		`{"K":"Zq7x"}`, `{"K":Zq7x}`, `Zq7x-not-json`, `["Zq7x"]`, `"Zq7x"`, `{"Zq7x":1}`,
		`{"K":"Zq7x",}`, `{"K":{"a":"Zq7x"}}`, `{"K":"\u0000Zq7x"}`, "{\"K\":\"Zq7x\"}\x00", `{"K":1e999}`,
		`{"K":"a","K":"Zq7x"}`, " ", "", `{`, `{"K":"\ud800Zq7x"}`,
	} {
		f.Add(s, "K")
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, text, field string) {
		r := ref{id: "id", field: field}
		v, p := extract(text, r)
		if p == nil {
			if v == "" || v != strings.TrimSpace(v) {
				t.Fatalf("extract(%q, %q) = %q: empty or untrimmed success", text, field, v)
			}
			if field == "" && v != strings.TrimSpace(text) {
				t.Fatalf("whole-secret value %q is not the trimmed text %q", v, text)
			}
			return
		}
		if p.kind == nil {
			t.Fatalf("problem without kind: %+v", p)
		}
		if strings.Contains(p.msg, marker) || strings.ContainsRune(p.msg, '\'') || strings.ContainsAny(p.msg, "\n\r") {
			t.Fatalf("problem text quotes the secret: %q (text %q)", p.msg, text)
		}
	})
}

func TestClassifyTransportAndCodes(t *testing.T) {
	t.Parallel()
	send := func(err error) error {
		return &smithy.OperationError{ServiceID: "Secrets Manager", OperationName: "GetSecretValue", Err: &smithyhttp.RequestSendError{Err: err}}
	}
	op := func(err error) error {
		return &smithy.OperationError{ServiceID: "Secrets Manager", OperationName: "GetSecretValue", Err: err}
	}
	cases := []struct {
		name   string
		err    error
		closed bool
		kind   error
		want   string
	}{
		{"dns", send(&net.DNSError{Name: "secretsmanager.nowhere.example", IsNotFound: true}), false, ErrUnreachable, `host "secretsmanager.nowhere.example" not found (DNS)`},
		{"dns temporary", send(&net.DNSError{Name: "h", IsTemporary: true}), false, ErrUnreachable, `DNS lookup of "h" failed`},
		{"tls unknown authority", send(x509.UnknownAuthorityError{}), false, ErrUnreachable, "AWS_CA_BUNDLE"},
		{"tls to plain http", send(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), false, ErrUnreachable, "does not speak TLS"},
		{"deadline", op(fmt.Errorf("wrapped: %w", context.DeadlineExceeded)), false, ErrUnreachable, "no answer within 2s"},
		{"cancelled", op(&smithy.CanceledError{Err: context.Canceled}), false, ErrUnreachable, "cancelled"},
		{"closed", op(&smithy.CanceledError{Err: context.Canceled}), true, ErrClosed, "closed"},
		{"missing region", op(&aws.MissingRegionError{}), false, ErrNoRegion, "AWS_REGION"},
		{"expired token", op(&smithy.GenericAPIError{Code: "ExpiredTokenException", Message: "VERYSECRET"}), false, ErrNoCredentials, "session token has expired"},
		{"scheduled for deletion", op(&smithy.GenericAPIError{Code: "InvalidRequestException", Message: "VERYSECRET"}), false, ErrService, "scheduled for deletion"},
		{"unknown server code", op(&smithy.GenericAPIError{Code: "Weird\nCode", Message: "VERYSECRET", Fault: smithy.FaultServer}), false, ErrService, "answered Weird?Code (server fault)"},
		{"deserialization", op(&smithy.DeserializationError{Err: errors.New("invalid character 'V' in VERYSECRET")}), false, ErrService, "could not be read"},
		{"other", op(errors.New("VERYSECRET")), false, ErrService, "request to Secrets Manager failed"},
	}
	for _, tc := range cases {
		e := classify(tc.err, "s/id", "AWSCURRENT", 2*time.Second, tc.closed)
		msg := e.Error()
		if !errors.Is(e, tc.kind) || !strings.Contains(msg, tc.want) || strings.Contains(msg, "VERYSECRET") || strings.ContainsAny(msg, "\n\r") {
			t.Errorf("%s: %q (kind %v), want kind %v containing %q", tc.name, msg, e.Kind, tc.kind, tc.want)
		}
	}
}

// BenchmarkExtract measures reading one name from a JSON secret of 50
// keys, which every refresh does once per name.
func BenchmarkExtract(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("{")
	for i := range 50 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `"KEY_%02d":"sk-live-%032d"`, i, i)
	}
	sb.WriteString("}")
	text := sb.String()
	r := ref{id: "s", field: "KEY_25"}
	b.ReportAllocs()
	for b.Loop() {
		if _, p := extract(text, r); p != nil {
			b.Fatal(p.msg)
		}
	}
}
