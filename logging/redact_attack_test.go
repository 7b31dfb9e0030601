package logging_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/logging"
)

// A value whose fmt rendering differs from the handler's encoding must
// not slip past the Redactor: json.RawMessage (a named []byte) prints as
// decimal bytes under %+v but the JSON and text handlers write its
// bytes, and a struct holding one is encoded the same way.
func TestAttackRedactorRenderingMismatch(t *testing.T) {
	t.Parallel()
	type wrapped struct {
		Body json.RawMessage
	}
	type named []byte
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		red := logging.NewRedactor()
		red.Set("secrets", vendorKey)
		log, err := logging.New(&buf, logging.Options{Format: format, Redactor: red})
		if err != nil {
			t.Fatal(err)
		}
		body := json.RawMessage(`{"echo":"` + vendorKey + `"}`)
		log.Info("vendor answer", "body", body, "named", named("k="+vendorKey), "wrapped", wrapped{Body: body},
			slog.Group("g", slog.Any("body", body)))
		if out := buf.String(); strings.Contains(out, vendorKey) {
			t.Errorf("%s: key in log output:\n%s", format, out)
		}
	}
}

// User-controlled text cannot forge a second log line in text format.
func TestAttackTextFormatInjection(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := logging.New(&buf, logging.Options{Format: "text"})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("ws refused\nlevel=ERROR msg=forged", "origin", "https://x\nlevel=ERROR msg=forged user=admin", "user", "a\r\nb")
	if n := strings.Count(strings.TrimSuffix(buf.String(), "\n"), "\n"); n != 0 {
		t.Errorf("one record wrote %d extra lines:\n%s", n, buf.String())
	}
}

// A vendor echoing the key inside its JSON error body writes it
// JSON-escaped (PHP's json_encode turns "/" into "\/", Go's encoder "+"
// into nothing but "<" into "\u003c"), and URL encoders differ in the
// case of %XX: every spelling must be scrubbed, as the proxy and the
// relay scrub them (secrets.Spellings).
func TestAttackRedactorKeySpellings(t *testing.T) {
	t.Parallel()
	const key = "wJalrXUt/K7MDENG+bPxRfi<CY=="
	red := logging.NewRedactor()
	red.Set("secrets", key)
	for _, in := range []string{
		`vendor said {"error":"bad key wJalrXUt\/K7MDENG+bPxRfi<CY=="}`,
		`vendor said {"error":"bad key wJalrXUt/K7MDENG+bPxRfi\u003cCY=="}`,
		`vendor said {"error":"bad key wJalrXUt\/K7MDENG+bPxRfi\u003cCY=="}`,
		`GET /q?k=wJalrXUt%2fK7MDENG%2bbPxRfi%3cCY%3d%3d`,
	} {
		if got := red.Scrub(in); strings.Contains(got, "K7MDENG") {
			t.Errorf("Scrub(%s) = %s", in, got)
		}
	}
}
