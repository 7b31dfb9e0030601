package relay

import (
	"bytes"

	"github.com/tickgate/tickgate/internal/jsonesc"
)

// holdsKey reports whether a vendor frame holds one of the key's
// spellings (guard), as written or behind JSON escapes ("\u0041", "\/"):
// a browser's JSON.parse turns those back into the key. Frames without a
// backslash, nearly all, cost one search per spelling.
func holdsKey(frame []byte, guard [][]byte) bool {
	if containsAny(frame, guard) {
		return true
	}
	if len(guard) == 0 || bytes.IndexByte(frame, '\\') < 0 {
		return false
	}
	plain, _, _ := jsonesc.Unescape(frame)
	return containsAny(plain, guard)
}

// containsAny reports whether b holds one of the spellings.
func containsAny(b []byte, guard [][]byte) bool {
	for _, g := range guard {
		if bytes.Contains(b, g) {
			return true
		}
	}
	return false
}
