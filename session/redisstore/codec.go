package redisstore

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tickgate/tickgate/session"
)

// Record fields of the Redis hash. Short names keep the hash small; the
// hash, not a JSON string, lets Touch rewrite LastSeen with one HSET
// instead of decoding and re-encoding the record inside Lua.
const (
	fieldUser      = "u"
	fieldCreatedAt = "c"
	fieldLastSeen  = "l"
	fieldExpiresAt = "e"
	// fieldRoles holds the roles joined by commas ("" for none). It is
	// optional: records written before roles existed lack it and read
	// back with no roles.
	fieldRoles = "r"
)

// recordFields are the fields Get reads, in decodeRecord's order.
var recordFields = []string{fieldUser, fieldCreatedAt, fieldLastSeen, fieldExpiresAt, fieldRoles}

// joinRoles encodes roles for fieldRoles; role names never hold commas.
func joinRoles(roles []string) string { return strings.Join(roles, ",") }

// splitRoles decodes fieldRoles; "" is no roles (nil).
func splitRoles(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// appendTime appends t as decimal Unix seconds with up to nine fractional
// digits, trailing zeros dropped ("1700000000", "1700000000.123",
// "-0.25"). It is exact to the nanosecond for every time.Time and stays
// readable in redis-cli.
func appendTime(b []byte, t time.Time) []byte {
	sec, ns := t.Unix(), int64(t.Nanosecond())
	if ns == 0 {
		return strconv.AppendInt(b, sec, 10)
	}
	if sec < 0 {
		// t.Unix floors: -1.25 s is sec -2 plus 0.75 s.
		sec++
		ns = 1e9 - ns
		b = append(b, '-')
		b = strconv.AppendUint(b, uint64(-sec), 10) // sec in (MinInt64, 0]
	} else {
		b = strconv.AppendInt(b, sec, 10)
	}
	var frac [9]byte
	for i := len(frac) - 1; i >= 0; i-- {
		frac[i] = byte('0' + ns%10)
		ns /= 10
	}
	n := len(frac)
	for frac[n-1] == '0' {
		n--
	}
	b = append(b, '.')
	return append(b, frac[:n]...)
}

func formatTime(t time.Time) string { return string(appendTime(make([]byte, 0, 24), t)) }

// parseTime reads what appendTime writes. Times come back in UTC.
func parseTime(s string) (time.Time, error) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	if !digits(whole) || (hasFrac && (!digits(frac) || len(frac) > 9)) {
		return time.Time{}, errTimeSyntax
	}
	u, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		return time.Time{}, errTimeSyntax
	}
	var ns int64
	for i := range 9 {
		ns *= 10
		if i < len(frac) {
			ns += int64(frac[i] - '0')
		}
	}
	if !neg {
		if u > math.MaxInt64 {
			return time.Time{}, errTimeSyntax
		}
		return time.Unix(int64(u), ns).UTC(), nil
	}
	if u > 1<<63 || (u == 1<<63 && ns > 0) {
		return time.Time{}, errTimeSyntax
	}
	sec := -int64(u) // u == 1<<63 wraps to MinInt64, which is right
	if ns > 0 {
		sec--
		ns = 1e9 - ns
	}
	return time.Unix(sec, ns).UTC(), nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// numFields is the number of required fields in a record hash.
const numFields = 4

// fieldName returns the name of the i-th field of an HMGET reply.
func fieldName(i int) string {
	return [numFields]string{fieldUser, fieldCreatedAt, fieldLastSeen, fieldExpiresAt}[i]
}

// decodeRecord turns the reply to HMGET key u c l e [r] into the record
// stored under key. found is false when every field is missing (no such
// key). The roles field is optional. Errors wrap ErrMalformedRecord and
// never name the key.
func decodeRecord(key string, vals []any) (rec session.Record, found bool, err error) {
	if len(vals) != numFields && len(vals) != numFields+1 {
		return session.Record{}, false, fmt.Errorf("%w: %d fields", ErrMalformedRecord, len(vals))
	}
	var roles []string
	if len(vals) == numFields+1 {
		switch v := vals[numFields].(type) {
		case nil:
		case string:
			roles = splitRoles(v)
		default:
			return session.Record{}, false, fmt.Errorf("%w: field %s has type %T", ErrMalformedRecord, fieldRoles, v)
		}
		vals = vals[:numFields]
	}
	var strs [numFields]string
	missing := 0
	for i, v := range vals {
		switch v := v.(type) {
		case nil:
			missing++
		case string:
			strs[i] = v
		default:
			return session.Record{}, false, fmt.Errorf("%w: field %s has type %T", ErrMalformedRecord, fieldName(i), v)
		}
	}
	if missing == len(vals) {
		if roles != nil {
			return session.Record{}, false, fmt.Errorf("%w: field %s without a record", ErrMalformedRecord, fieldRoles)
		}
		return session.Record{}, false, nil
	}
	for i, v := range vals {
		if v == nil {
			return session.Record{}, false, fmt.Errorf("%w: field %s missing", ErrMalformedRecord, fieldName(i))
		}
	}
	rec = session.Record{Key: key, User: strs[0], Roles: roles}
	for i, dst := range []*time.Time{&rec.CreatedAt, &rec.LastSeen, &rec.ExpiresAt} {
		if *dst, err = parseTime(strs[i+1]); err != nil {
			return session.Record{}, false, fmt.Errorf("%w: field %s: %w", ErrMalformedRecord, fieldName(i+1), err)
		}
	}
	return rec, true, nil
}

// millis is d in whole milliseconds, rounded up so that a positive ttl
// never becomes 0 (which Redis would refuse or treat as "expire now").
func millis(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond > 0 {
		ms++
	}
	return ms
}

// indexMillis is t in Unix milliseconds, clamped to [1970, 9999] so the
// Lua arithmetic on it stays exact (well below 2^53).
func indexMillis(t time.Time) int64 {
	const lo, hi = 0, 253402300799999 // 9999-12-31T23:59:59.999Z
	switch {
	case t.Before(time.UnixMilli(lo)):
		return lo
	case t.After(time.UnixMilli(hi)):
		return hi
	}
	return t.UnixMilli()
}
