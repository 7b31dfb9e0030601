package loadgen

import (
	"bytes"
	"errors"
)

// Errors of the frame scanners.
var (
	ErrNotArray  = errors.New("loadgen: not a JSON array of objects")
	ErrTruncated = errors.New("loadgen: JSON array or object is not terminated")
	ErrBadEvent  = errors.New("loadgen: event has a malformed sym or t field")
)

// FrameType returns the value of the "type" field of a tickgate message
// ({"type":"data",...}), or "" when there is none. It does not validate
// the rest of the frame.
func FrameType(frame []byte) string {
	v, ok := stringField(frame, `"type":`)
	if !ok {
		return ""
	}
	return string(v)
}

// DataMessages returns the "messages" array of a tickgate data frame, from
// its '[' to the end of the frame.
func DataMessages(frame []byte) ([]byte, bool) {
	i := bytes.Index(frame, []byte(`"messages":`))
	if i < 0 {
		return nil, false
	}
	rest := bytes.TrimLeft(frame[i+len(`"messages":`):], " \t\r\n")
	if len(rest) == 0 || rest[0] != '[' {
		return nil, false
	}
	return rest, true
}

// ScanEvents calls fn for every object of the JSON array at the start of
// arr that has a string "sym" and a whole-number "t" field (a vendor data
// event of marketsim: {"ev":"T","sym":"AAPL",...,"t":1733241600123});
// other objects, such as status events, are skipped. sym aliases arr.
// It returns the number of objects seen. The scan understands JSON
// strings and nesting, so a brace inside a string does not end an object.
func ScanEvents(arr []byte, fn func(sym []byte, t int64)) (int, error) {
	if len(arr) == 0 || arr[0] != '[' {
		return 0, ErrNotArray
	}
	n := 0
	i := 1
	for {
		for i < len(arr) && (arr[i] == ' ' || arr[i] == ',' || arr[i] == '\n' || arr[i] == '\t' || arr[i] == '\r') {
			i++
		}
		if i >= len(arr) {
			return n, ErrTruncated
		}
		switch arr[i] {
		case ']':
			return n, nil
		case '{':
		default:
			return n, ErrNotArray
		}
		end, err := objectEnd(arr, i)
		if err != nil {
			return n, err
		}
		obj := arr[i : end+1]
		n++
		sym, okSym := stringField(obj, `"sym":`)
		t, okT, err := intField(obj, `"t":`)
		if err != nil {
			return n, err
		}
		if okSym && okT {
			fn(sym, t)
		}
		i = end + 1
	}
}

// objectEnd returns the index of the '}' that closes the object opened
// at b[start].
func objectEnd(b []byte, start int) (int, error) {
	depth := 0
	inString := false
	for i := start; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				if c != '}' {
					return 0, ErrNotArray
				}
				return i, nil
			}
		}
	}
	return 0, ErrTruncated
}

// stringField returns the value of the first string field named by key
// (with its quotes and colon, e.g. `"sym":`). Values with escapes are
// not expected in the fields read here and count as absent.
func stringField(b []byte, key string) ([]byte, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return nil, false
	}
	rest := bytes.TrimLeft(b[i+len(key):], " \t\r\n")
	if len(rest) == 0 || rest[0] != '"' {
		return nil, false
	}
	rest = rest[1:]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
		return nil, false
	}
	return rest[:j], true
}

// intField returns the value of the first field named by key when it is a
// whole number; a field that is present but not a number is ErrBadEvent.
func intField(b []byte, key string) (int64, bool, error) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false, nil
	}
	rest := bytes.TrimLeft(b[i+len(key):], " \t\r\n")
	var v int64
	j := 0
	for ; j < len(rest) && rest[j] >= '0' && rest[j] <= '9'; j++ {
		if j >= 18 {
			return 0, false, ErrBadEvent
		}
		v = v*10 + int64(rest[j]-'0')
	}
	if j == 0 || (j < len(rest) && rest[j] != ',' && rest[j] != '}' && rest[j] != ' ') {
		return 0, false, ErrBadEvent
	}
	return v, true, nil
}
