package relay

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// holdsKey reports whether a vendor frame holds one of the key's
// spellings (guard), as written or behind JSON escapes ("\u0041", "\/"):
// a browser's JSON.parse turns those back into the key. Frames without a
// backslash, nearly all, cost one search per spelling.
func holdsKey(frame []byte, guard [][]byte) bool {
	if len(guard) == 0 {
		return false
	}
	for _, g := range guard {
		if bytes.Contains(frame, g) {
			return true
		}
	}
	if bytes.IndexByte(frame, '\\') < 0 {
		return false
	}
	plain := unescapeJSON(frame)
	for _, g := range guard {
		if bytes.Contains(plain, g) {
			return true
		}
	}
	return false
}

// unescapeJSON returns b with every JSON string escape replaced by the
// text it stands for, wherever it is (the guard over-approximates: an
// escape outside a string only makes it stricter). Malformed escapes are
// kept as written.
func unescapeJSON(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' || i+1 >= len(b) {
			out = append(out, c)
			continue
		}
		switch e := b[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
			i++
		case 'b':
			out = append(out, '\b')
			i++
		case 'f':
			out = append(out, '\f')
			i++
		case 'n':
			out = append(out, '\n')
			i++
		case 'r':
			out = append(out, '\r')
			i++
		case 't':
			out = append(out, '\t')
			i++
		case 'u':
			r, ok := hex4(b, i+2)
			if !ok {
				out = append(out, c)
				continue
			}
			i += 5
			if utf16.IsSurrogate(r) && i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				if r2, ok := hex4(b, i+3); ok {
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
	return out
}

// hex4 reads the four hex digits of a \u escape at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
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
