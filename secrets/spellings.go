package secrets

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
)

// Spellings returns the forms in which a vendor may echo v: raw,
// URL-encoded for a query and for a path (upper- and lower-case hex), and
// JSON-escaped (with and without HTML escaping, with and without "\/").
// Scrubbers and guards search for all of them. Duplicates are removed.
func Spellings(v Value) []string {
	k := v.s
	if k == "" {
		return nil
	}
	forms := []string{k, url.QueryEscape(k), url.PathEscape(k)}
	for _, f := range forms[1:] {
		forms = append(forms, lowerHex(f))
	}
	if b, err := json.Marshal(k); err == nil {
		forms = append(forms, string(b[1:len(b)-1]))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(k) == nil {
		j := strings.TrimSuffix(buf.String(), "\n")
		j = j[1 : len(j)-1]
		forms = append(forms, j, strings.ReplaceAll(j, "/", `\/`))
	}
	seen := make(map[string]bool, len(forms))
	out := forms[:0]
	for _, f := range forms {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// lowerHex lower-cases the hex digits of every %XX escape in s.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			for j := i + 1; j <= i+2; j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			i += 2
		}
	}
	return string(b)
}
