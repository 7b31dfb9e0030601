package logging

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// fuzzSecret is registered with the redactor; it has no self-overlap, so
// any occurrence left in the output is a leak.
const fuzzSecret = "Zq7xLIVEk3y9Wm2vT"

// FuzzRedactor: whatever surrounds a registered secret, in a message, an
// attribute, an error or a group, neither log format prints the secret,
// and a record stays one line whatever control characters its values hold
// (no forged log lines). Scrub never panics and never grows a clean
// string's secret back.
func FuzzRedactor(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""}, {"apikey=", "&x=1"}, {"Bearer ", ""}, {"https://u:", "@h/"}, {"\r\nlevel=ERROR msg=forged ", "\n"},
		{"key=\"", "\""}, {"%", "%"}, {"\x00", "\x1b[31m"}, {"password=", ";"}, {"\u2028", "\u2029"}, {"\xff\xfe", "\xc0"},
	} {
		f.Add(s[0], s[1], "user")
	}
	f.Fuzz(func(t *testing.T, before, after, attr string) {
		r := NewRedactor()
		r.Set("fuzz", fuzzSecret)
		s := before + fuzzSecret + after
		if got := r.Scrub(s); strings.Contains(got, fuzzSecret) {
			t.Fatalf("Scrub(%q) = %q keeps the secret", s, got)
		}
		_ = r.Scrub(before + after)
		for _, format := range []string{"json", "text"} {
			var buf bytes.Buffer
			log, err := New(&buf, Options{Format: format, Level: "debug", Redactor: r})
			if err != nil {
				t.Fatal(err)
			}
			log.With(attr, s).WithGroup(attr).InfoContext(context.Background(), s, attr, s, "err", errors.New(s), "list", []string{before, s})
			out := buf.String()
			if strings.Contains(out, fuzzSecret) {
				t.Fatalf("%s log holds the secret: %q", format, out)
			}
			if n := strings.Count(out, "\n"); n != 1 || !strings.HasSuffix(out, "\n") {
				t.Fatalf("%s record is %d lines: %q", format, n, out)
			}
		}
	})
}
