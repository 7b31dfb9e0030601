package relay

import (
	"bytes"
	"encoding/json"
)

// vendorMsg is one message of a vendor frame. Its byte slices point into
// the frame: a frame is parsed once and its messages are relayed with
// their bytes unchanged.
type vendorMsg struct {
	raw     []byte // the message as the vendor sent it
	sym     []byte // upper-cased value of the symbol field; nil when absent or not a string
	object  bool   // raw is a JSON object
	control bool   // matches the adapter's Control conditions: never relayed
}

// cond is one "top-level field equals this string" condition.
type cond struct{ key, value string }

// matcher holds when every condition holds. An empty matcher never holds:
// an adapter that leaves Busy unset has no busy answer to detect.
type matcher []cond

func newMatcher(m map[string]string) matcher {
	out := make(matcher, 0, len(m))
	for k, v := range m {
		out = append(out, cond{k, v})
	}
	return out
}

// matches reports whether the JSON object raw satisfies every condition.
func (m matcher) matches(raw []byte) bool {
	if len(m) == 0 || len(raw) == 0 || raw[0] != '{' {
		return false
	}
	var hit uint64
	eachMember(raw, func(key []byte, keyEsc bool, val []byte) {
		for i, c := range m {
			if i < 64 && keyIs(key, keyEsc, c.key) && stringIs(val, c.value) {
				hit |= 1 << i
			}
		}
	})
	return hit == allBits(len(m))
}

func allBits(n int) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<n - 1
}

// scanner splits vendor frames into messages, finds each message's symbol
// and recognises control messages, in one pass over each message's
// top-level fields.
type scanner struct {
	symbolField string
	control     matcher
}

// split appends the messages of frame to dst. A frame is a JSON array of
// messages or a single message. ok is false when frame is not JSON.
func (s *scanner) split(dst []vendorMsg, frame []byte) (_ []vendorMsg, ok bool) {
	if !json.Valid(frame) {
		return dst, false
	}
	i := skipWS(frame, 0)
	if i >= len(frame) {
		return dst, false
	}
	if frame[i] != '[' {
		end, ok := skipValue(frame, i)
		if !ok {
			return dst, false
		}
		return append(dst, s.message(frame[i:end])), true
	}
	i = skipWS(frame, i+1)
	if i < len(frame) && frame[i] == ']' {
		return dst, true
	}
	for i < len(frame) {
		end, ok := skipValue(frame, i)
		if !ok {
			return dst, false
		}
		dst = append(dst, s.message(frame[i:end]))
		i = skipWS(frame, end)
		if i >= len(frame) {
			return dst, false
		}
		switch frame[i] {
		case ',':
			i = skipWS(frame, i+1)
		case ']':
			return dst, true
		default:
			return dst, false
		}
	}
	return dst, false
}

// message reads one message's symbol and control status.
func (s *scanner) message(raw []byte) vendorMsg {
	m := vendorMsg{raw: raw}
	if len(raw) == 0 || raw[0] != '{' {
		return m
	}
	m.object = true
	var hit uint64
	eachMember(raw, func(key []byte, keyEsc bool, val []byte) {
		if m.sym == nil && keyIs(key, keyEsc, s.symbolField) {
			m.sym = symbolValue(val)
		}
		for i, c := range s.control {
			if i < 64 && keyIs(key, keyEsc, c.key) && stringIs(val, c.value) {
				hit |= 1 << i
			}
		}
	})
	m.control = len(s.control) > 0 && hit == allBits(len(s.control))
	return m
}

// symbolValue returns the content of a JSON string value with ASCII
// letters upper-cased (as browser symbols are), or nil when val is not a
// non-empty string.
func symbolValue(val []byte) []byte {
	if len(val) < 3 || val[0] != '"' || val[len(val)-1] != '"' {
		return nil
	}
	content := val[1 : len(val)-1]
	if bytes.IndexByte(content, '\\') >= 0 {
		var s string
		if json.Unmarshal(val, &s) != nil || s == "" {
			return nil
		}
		content = []byte(s)
	}
	for i, c := range content {
		if 'a' <= c && c <= 'z' {
			up := bytes.Clone(content)
			for j := i; j < len(up); j++ {
				if 'a' <= up[j] && up[j] <= 'z' {
					up[j] -= 'a' - 'A'
				}
			}
			return up
		}
	}
	return content
}

// keyIs reports whether a member key (raw content between the quotes)
// equals want.
func keyIs(key []byte, esc bool, want string) bool {
	if !esc {
		return string(key) == want
	}
	var s string
	q := make([]byte, 0, len(key)+2)
	q = append(append(append(q, '"'), key...), '"')
	return json.Unmarshal(q, &s) == nil && s == want
}

// stringIs reports whether the JSON value val is the string want.
func stringIs(val []byte, want string) bool {
	if len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
		return false
	}
	content := val[1 : len(val)-1]
	if bytes.IndexByte(content, '\\') < 0 {
		return string(content) == want
	}
	var s string
	return json.Unmarshal(val, &s) == nil && s == want
}

// The functions below walk JSON that json.Valid accepted; they still check
// every bound, so any input returns without panicking.

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'
// and whether it holds an escape.
func skipString(b []byte, i int) (end int, esc, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return i, false, false
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return j + 1, esc, true
		}
	}
	return len(b), esc, false
}

// skipValue returns the index after the JSON value starting at b[i].
func skipValue(b []byte, i int) (end int, ok bool) {
	if i >= len(b) {
		return i, false
	}
	switch b[i] {
	case '"':
		end, _, ok = skipString(b, i)
		return end, ok
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e, _, ok := skipString(b, j)
				if !ok {
					return len(b), false
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return len(b), false
	case ',', ':', '}', ']':
		return i, false
	default:
		j := i
		for j < len(b) && !isWS(b[j]) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ':' {
			j++
		}
		return j, j > i
	}
}

// eachMember calls fn with the key (raw content between its quotes) and
// the raw value of every top-level member of the object obj.
func eachMember(obj []byte, fn func(key []byte, keyEsc bool, val []byte)) {
	if len(obj) == 0 || obj[0] != '{' {
		return
	}
	i := skipWS(obj, 1)
	if i < len(obj) && obj[i] == '}' {
		return
	}
	for i < len(obj) {
		kend, esc, ok := skipString(obj, i)
		if !ok {
			return
		}
		key := obj[i+1 : kend-1]
		i = skipWS(obj, kend)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		i = skipWS(obj, i+1)
		vend, ok := skipValue(obj, i)
		if !ok {
			return
		}
		fn(key, esc, obj[i:vend])
		i = skipWS(obj, vend)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i = skipWS(obj, i+1)
	}
}
