package proxy

import (
	"strings"
	"testing"
)

// TestAttackKeyInOtherEncoders: vendors echo the key through their own
// encoders, and a key holding +, / or = (base64-style tokens) comes out
// differently from Go's: Python's urllib quote keeps "/" (vk%2B/...),
// ASP.NET Core's default JSON encoder writes "+" as \u002B, and encoders
// that escape every symbol write \u002b\u002f... None of these may reach
// a browser.
func TestAttackKeyInOtherEncoders(t *testing.T) {
	t.Parallel()
	const k = "vk+/9f8e=SECRET&x'y"
	s := newScrubber("/api/demo", "http://v.example", "apikey", k)
	for name, echo := range map[string]string{
		"python quote":          `vk%2B/9f8e%3DSECRET%26x%27y`,
		"dotnet json":           `vk\u002B/9f8e=SECRET\u0026x\u0027y`,
		"every symbol (upper)":  `vk\u002B\u002F9f8e\u003DSECRET\u0026x\u0027y`,
		"every symbol (lower)":  `vk\u002b\u002f9f8e\u003dSECRET\u0026x\u0027y`,
		"go json (html-escape)": `vk+/9f8e=SECRET\u0026x'y`,
	} {
		body := `{"error":"invalid key ` + echo + `","n":1}`
		got := s.String(body)
		if strings.Contains(got, "SECRET") {
			t.Errorf("%s: %s reached the browser as %s", name, echo, got)
		}
		// Streamed in small pieces too.
		var out, pending []byte
		for src := []byte(body); len(src) > 0; {
			n := min(len(src), 5)
			pending = append(pending, src[:n]...)
			src = src[n:]
			var used int
			out, used = s.transform(out, pending, false)
			pending = append([]byte(nil), pending[used:]...)
		}
		out, _ = s.transform(out, pending, true)
		if strings.Contains(string(out), "SECRET") {
			t.Errorf("%s (streamed): %s reached the browser as %s", name, echo, out)
		}
	}
}

// FuzzAttackScrubSymbolKey is FuzzScrub with a key full of symbols, so
// that every spelling keyForms adds (Python quote, ASP.NET JSON, escaped
// symbols) is one the scrubber must find across chunk boundaries.
func FuzzAttackScrubSymbolKey(f *testing.F) {
	const k = "vk+/9f8e=SECRET&x'y"
	s := newScrubber("/api/demo", testBase, "apikey", k)
	forms := keyForms(k)
	for i, form := range forms {
		f.Add([]byte(`{"e":"`+form+`","next_url":"`+testBase+`/v1/x?apikey=`+form+`"}`), uint8(i))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		if len(in) > 4096 {
			return
		}
		n := int(chunk%64) + 1
		oneShot := s.String(string(in))
		streamed := scrubStream(t, s, string(in), n)
		if oneShot != streamed {
			t.Fatalf("chunk %d: streamed %q, one shot %q", n, streamed, oneShot)
		}
		for _, form := range forms {
			if strings.Contains(streamed, form) {
				t.Fatalf("key form %q survived: %q", form, streamed)
			}
		}
	})
}
