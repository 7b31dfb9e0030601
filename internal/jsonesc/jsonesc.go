// Package jsonesc undoes JSON string escapes in raw bytes, wherever they
// stand: the key guards of the proxy and the relay look for a vendor key
// behind escapes ("\u0041", "\/") that a browser's JSON.parse would turn
// back into the key.
package jsonesc

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// Unescape returns b with every JSON string escape replaced by the text
// it stands for (a surrogate pair as one rune); malformed escapes are kept
// as written. slash and unicode report whether a "\/" or a "\uXXXX"
// escape was seen, so a caller can escape its own output alike. b itself
// is returned when it holds no backslash.
func Unescape(b []byte) (out []byte, slash, unicode bool) {
	if bytes.IndexByte(b, '\\') < 0 {
		return b, false, false
	}
	out = make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' || i+1 >= len(b) {
			out = append(out, c)
			continue
		}
		switch e := b[i+1]; e {
		case '"', '\\':
			out = append(out, e)
			i++
		case '/':
			out = append(out, '/')
			slash = true
			i++
		case 'b', 'f', 'n', 'r', 't':
			out = append(out, "\b\f\n\r\t"[bytes.IndexByte([]byte("bfnrt"), e)])
			i++
		case 'u':
			r, ok := Hex4(b, i+2)
			if !ok {
				out = append(out, c)
				continue
			}
			unicode = true
			i += 5
			if utf16.IsSurrogate(r) && i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				if r2, ok := Hex4(b, i+3); ok {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					}
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			out = append(out, c)
		}
	}
	return out, slash, unicode
}

// Hex4 reads the four hex digits of a \u escape at b[i:].
func Hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
