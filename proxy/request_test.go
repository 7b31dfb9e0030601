package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestFilterQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"a=1&b=2", "a=1&b=2", true},
		{"symbols=A,B&x=%41", "symbols=A,B&x=%41", true},
		{"apikey=evil", "", true},
		{"a=1&APIKEY=evil&b=2", "a=1&b=2", true},
		{"api%6Bey=evil&a=1", "a=1", true},
		{"apikey%5B%5D=evil&apikey[x]=e&a=1", "a=1", true},
		{"apikey", "", true},
		{"a=1&&b=2&", "a=1&b=2", true},
		{"q=a\"b", "q=a%22b", true},
		{"q=a#b", "q=a%23b", true},
		{"flag&q=<x>", "flag&q=%3Cx%3E", true},
		{"a=1;apikey=x", "", false},
		{"a=%3B", "a=%3B", true},
		{"a=%0A", "", false},
		{"a%00=1", "", false},
		{"a=\x7f", "", false},
		{"a=%zz", "", false},
		{"a=%", "", false},
	}
	for _, tt := range tests {
		got, ok := filterQuery(tt.in, "apikey")
		if got != tt.want || ok != tt.ok {
			t.Errorf("filterQuery(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzFilterQuery: whatever the client sends, the vendor gets exactly one
// key parameter (ours), a query Go's own parser accepts, and no control
// characters.
func FuzzFilterQuery(f *testing.F) {
	for _, s := range []string{"a=1&apikey=x", "APIKEY=x", "api%6Bey=x&b=%0a", "a=1;apikey=2", "x=%zz", "q=\"<>#"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := filterQuery(in, "apikey")
		if !ok {
			return
		}
		full := out
		if full != "" {
			full += "&"
		}
		full += "apikey=THEKEY"
		q, err := url.ParseQuery(full)
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", in, out, err)
		}
		for name, vals := range q {
			if strings.EqualFold(name, "apikey") && (name != "apikey" || len(vals) != 1 || vals[0] != "THEKEY") {
				t.Fatalf("%q -> %q: key parameter %q = %q", in, out, name, vals)
			}
			for _, v := range append(vals, name) {
				if hasCtl(v) {
					t.Fatalf("%q -> %q: control character", in, out)
				}
			}
		}
		if strings.ContainsAny(out, "#; \"<>\\") {
			t.Fatalf("%q -> %q: raw character that could change the query", in, out)
		}
	})
}

func TestStripRequestHeaders(t *testing.T) {
	t.Parallel()
	h := http.Header{
		"Connection":        {"keep-alive, X-Named", "x-named2"},
		"X-Named":           {"1"},
		"X-Named2":          {"1"},
		"x-named2":          {"1"}, // non-canonical key
		"Cookie":            {"a=b"},
		"Authorization":     {"Basic x"},
		"X-Forwarded-Port":  {"1"},
		"x-forwarded-for":   {"1.2.3.4"},
		"Sec-Ch-Ua":         {"x"},
		"X-Api-Key":         {"evil"},
		"X_api_key":         {"evil"},
		"Accept":            {"application/json"},
		"Accept-Language":   {"en"},
		"Content-Type":      {"application/json"},
		"If-None-Match":     {`"abc"`},
		"X-Custom":          {"kept"},
		"Transfer-Encoding": {"chunked"},
	}
	stripRequestHeaders(h, "X-Api-Key")
	var got []string
	for k := range h {
		got = append(got, k)
	}
	want := map[string]bool{"Accept": true, "Accept-Language": true, "Content-Type": true, "If-None-Match": true, "X-Custom": true}
	if len(got) != len(want) {
		t.Errorf("left %v", got)
	}
	for _, k := range got {
		if !want[k] {
			t.Errorf("%s not removed", k)
		}
	}
}
