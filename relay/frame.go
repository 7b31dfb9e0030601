package relay

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"
)

// vendorMsg is one message of a vendor frame. Its byte slices point into
// the frame: a frame is parsed once and its messages are relayed with
// their bytes unchanged.
type vendorMsg struct {
	raw     []byte // the message as the vendor sent it
	sym     []byte // upper-cased value of the symbol field; nil when absent or not a string
	object  bool   // raw is a JSON object
	control bool   // matches the adapter's Control (or Rejected) conditions: never relayed
}

// cond is one "top-level field equals one of these values" condition: a
// string value, or the JSON text of a number, true, false or null.
type cond struct {
	key    string
	values []string
}

// holds reports whether the JSON value val is one of c's values.
func (c cond) holds(val []byte) bool {
	for _, v := range c.values {
		if valueIs(val, v) {
			return true
		}
	}
	return false
}

// matcher holds when every condition holds. An empty matcher never holds:
// an adapter that leaves Busy unset has no busy answer to detect.
type matcher []cond

func newMatcher(m map[string]string) matcher {
	out := make(matcher, 0, len(m))
	for k, v := range m {
		out = append(out, cond{k, strings.Split(v, "|")})
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
			if i < 64 && keyIs(key, keyEsc, c.key) && c.holds(val) {
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
	symbolField string   // the first step of the symbol's path
	symbolPath  []string // the rest of a dotted path, or nil
	msgField    string   // array field holding the messages, or ""
	control     matcher
	rejected    matcher // the vendor refusing symbols: control too, even with a symbol field
}

func newScanner(symbolField, msgField string, control matcher) scanner {
	first, rest, _ := strings.Cut(symbolField, ".")
	s := scanner{symbolField: first, msgField: msgField, control: control}
	if rest != "" {
		s.symbolPath = strings.Split(rest, ".")
	}
	return s
}

// split appends the messages of frame to dst. A frame is a JSON array of
// messages or a single message. ok is false when frame is not JSON,
// including JSON with invalid UTF-8 in a string (json.Valid accepts it),
// which browsers would answer by failing the socket.
func (s *scanner) split(dst []vendorMsg, frame []byte) (_ []vendorMsg, ok bool) {
	if !json.Valid(frame) || !utf8.Valid(frame) {
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
		return s.appendMessage(dst, frame[i:end]), true
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
		dst = s.appendMessage(dst, frame[i:end])
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

// appendMessage appends raw, or, when raw is an object whose msgField is
// an array and that is not a control message, that array's elements.
func (s *scanner) appendMessage(dst []vendorMsg, raw []byte) []vendorMsg {
	if s.msgField == "" || len(raw) == 0 || raw[0] != '{' {
		return append(dst, s.message(raw))
	}
	if m := s.message(raw); m.control {
		return append(dst, m) // a status envelope stays whole
	}
	var arr []byte
	eachMember(raw, func(key []byte, keyEsc bool, val []byte) {
		if arr == nil && len(val) > 0 && val[0] == '[' && keyIs(key, keyEsc, s.msgField) {
			arr = val
		}
	})
	if arr == nil {
		return append(dst, s.message(raw))
	}
	i := skipWS(arr, 1)
	for i < len(arr) && arr[i] != ']' {
		end, ok := skipValue(arr, i)
		if !ok {
			break
		}
		dst = append(dst, s.message(arr[i:end]))
		i = skipWS(arr, end)
		if i < len(arr) && arr[i] == ',' {
			i = skipWS(arr, i+1)
		}
	}
	return dst
}

// message reads one message's symbol and control status.
func (s *scanner) message(raw []byte) vendorMsg {
	m := vendorMsg{raw: raw}
	if len(raw) == 0 || raw[0] != '{' {
		return m
	}
	m.object = true
	var hit, rej uint64
	eachMember(raw, func(key []byte, keyEsc bool, val []byte) {
		if m.sym == nil && keyIs(key, keyEsc, s.symbolField) {
			m.sym = symbolValue(lookupPath(val, s.symbolPath))
		}
		for i, c := range s.control {
			if i < 64 && keyIs(key, keyEsc, c.key) && c.holds(val) {
				hit |= 1 << i
			}
		}
		for i, c := range s.rejected {
			if i < 64 && keyIs(key, keyEsc, c.key) && c.holds(val) {
				rej |= 1 << i
			}
		}
	})
	m.control = (len(s.control) > 0 && hit == allBits(len(s.control))) ||
		(len(s.rejected) > 0 && rej == allBits(len(s.rejected)))
	return m
}

// lookupPath follows path through nested objects from val, or returns nil.
func lookupPath(val []byte, path []string) []byte {
	for _, step := range path {
		var next []byte
		eachMember(val, func(key []byte, keyEsc bool, v []byte) {
			if next == nil && keyIs(key, keyEsc, step) {
				next = v
			}
		})
		if next == nil {
			return nil
		}
		val = next
	}
	return val
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

// valueIs reports whether the JSON value val is the string want, or,
// when val is not a string, whether its JSON text is want (200, false).
func valueIs(val []byte, want string) bool {
	if len(val) > 0 && val[0] != '"' {
		return string(val) == want
	}
	if len(val) < 2 || val[len(val)-1] != '"' {
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

// listedSymbols reads the symbols listed in field of the JSON object raw:
// a JSON array of strings or of objects holding the symbol in elemField
// (Twelve Data's "fails":[{"symbol":"X"}]), a comma-separated string or
// one string. Each is turned into a browser symbol by norm; invalid ones
// are skipped.
func listedSymbols(raw []byte, field, elemField string, norm func(string) (string, bool)) []string {
	var val []byte
	eachMember(raw, func(key []byte, keyEsc bool, v []byte) {
		if val == nil && keyIs(key, keyEsc, field) {
			val = v
		}
	})
	var list []string
	switch {
	case len(val) == 0:
		return nil
	case val[0] == '"':
		var s string
		if json.Unmarshal(val, &s) != nil {
			return nil
		}
		list = strings.Split(s, ",")
	case val[0] == '[':
		var ss []any
		if json.Unmarshal(val, &ss) != nil {
			return nil
		}
		for _, v := range ss {
			switch v := v.(type) {
			case string:
				list = append(list, v)
			case map[string]any:
				if s, ok := v[elemField].(string); ok {
					list = append(list, s)
				}
			}
		}
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		if n, ok := norm(strings.TrimSpace(s)); ok && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
