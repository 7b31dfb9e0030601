package secrets

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Spellings returns the forms in which a vendor may echo v: raw,
// URL-encoded for a query and for a path (upper- and lower-case hex), and
// JSON-escaped (with and without HTML escaping, with and without "\/"),
// and as Python's and .NET's encoders write it.
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
		j := string(b[1 : len(b)-1])
		forms = append(forms, j, strings.ReplaceAll(j, "/", `\/`))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(k) == nil {
		j := strings.TrimSuffix(buf.String(), "\n")
		j = j[1 : len(j)-1]
		forms = append(forms, j, strings.ReplaceAll(j, "/", `\/`))
	}
	// Other encoders: Python's urllib quote (keeps "/"), .NET's JSON
	// encoder (\u002B for +, & ' " < > `), and JSON that escapes every
	// ASCII symbol, in either hex case.
	forms = append(forms,
		pythonQuote(k),
		jsonEscapeSymbols(k, "+&'\"<>`", upperHexDigits),
		jsonEscapeSymbols(k, "", upperHexDigits),
		jsonEscapeSymbols(k, "", lowerHexDigits),
	)
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

const (
	upperHexDigits = "0123456789ABCDEF"
	lowerHexDigits = "0123456789abcdef"
)

// pythonQuote is urllib.parse.quote(k): %XX for every byte but letters,
// digits, "_.-~" and "/".
func pythonQuote(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		if isAlnum(c) || strings.IndexByte("_.-~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHexDigits[c>>4])
		b.WriteByte(upperHexDigits[c&15])
	}
	return b.String()
}

// jsonEscapeSymbols is k as a JSON string body that writes the ASCII
// symbols in set (every ASCII byte but letters and digits when set is "")
// and control characters as \u00XX in the given hex digits; a backslash
// outside set is \\ and other bytes are kept.
func jsonEscapeSymbols(k, set, hex string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		esc := c < 0x20 || c == 0x7f
		if set == "" {
			esc = esc || (c < utf8.RuneSelf && !isAlnum(c))
		} else {
			esc = esc || strings.IndexByte(set, c) >= 0
		}
		switch {
		case esc:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		case c == '\\':
			b.WriteString(`\\`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
