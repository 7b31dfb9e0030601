package redisstore

import (
	"errors"
	"fmt"
	"io"
	"math"
	"testing"
	"time"
)

func TestFormatTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Unix(0, 0), "0"},
		{time.Unix(1700000000, 0), "1700000000"},
		{time.Unix(1700000000, 123_000_000), "1700000000.123"},
		{time.Unix(1700000000, 1), "1700000000.000000001"},
		{time.Unix(1700000000, 999_999_999), "1700000000.999999999"},
		{time.Unix(-1, 0), "-1"},
		{time.Unix(0, -250_000_000), "-0.25"},
		{time.Unix(-1, -250_000_000), "-1.25"},
		{time.Unix(-1, 1), "-0.999999999"},
		{time.Time{}, "-62135596800"},
		{time.Date(2031, 3, 9, 23, 59, 58, 123_000_000, time.FixedZone("x", 5*3600+1800)), "1930847398.123"},
	}
	for _, tt := range tests {
		if got := formatTime(tt.t); got != tt.want {
			t.Errorf("formatTime(%v) = %q, want %q", tt.t, got, tt.want)
		}
		back, err := parseTime(tt.want)
		if err != nil || !back.Equal(tt.t) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", tt.want, back, err, tt.t)
		}
	}
}

func TestParseTimeRejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "-", ".", "1.", ".5", "-.5", "+1", "1e9", "0x10", "1_000", " 1", "1 ",
		"1.0000000001", "1.-5", "--1", "1.2.3", "١٢", "9223372036854775808",
		"-9223372036854775808.5", "-9223372036854775809", "18446744073709551616",
	} {
		if got, err := parseTime(s); !errors.Is(err, errTimeSyntax) {
			t.Errorf("parseTime(%q) = %v, %v; want errTimeSyntax", s, got, err)
		}
	}
	for _, s := range []string{"9223372036854775807", "-9223372036854775808", "-0", "007.5"} {
		if _, err := parseTime(s); err != nil {
			t.Errorf("parseTime(%q): %v", s, err)
		}
	}
}

func FuzzTimeRoundTrip(f *testing.F) {
	f.Add(int64(1700000000), int64(123_000_000))
	f.Add(int64(-1), int64(1))
	f.Add(int64(0), int64(0))
	f.Add(int64(-62135596800), int64(999_999_999))
	f.Add(int64(math.MaxInt64), int64(0))
	f.Add(int64(math.MinInt64), int64(0))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		want := time.Unix(sec, nsec%1e9)
		s := formatTime(want)
		got, err := parseTime(s)
		if err != nil {
			t.Fatalf("parseTime(%q): %v", s, err)
		}
		if !got.Equal(want) {
			t.Fatalf("round trip of %d.%09d via %q = %v, want %v", sec, nsec%1e9, s, got, want)
		}
	})
}

// FuzzParseTime: values read from Redis never make the decoder panic, and
// what it accepts formats back to something that parses to the same time.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"0", "1700000000.123", "-0.25", "", "1.", "-9223372036854775808", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseTime(s)
		if err != nil {
			return
		}
		again, err := parseTime(formatTime(got))
		if err != nil || !again.Equal(got) {
			t.Fatalf("parseTime(%q) = %v, but its formatting %q parses to %v, %v", s, got, formatTime(got), again, err)
		}
	})
}

func TestDecodeRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		vals      []any
		found     bool
		malformed bool
	}{
		{"absent", []any{nil, nil, nil, nil}, false, false},
		{"complete", []any{"alice", "1", "2.5", "3"}, true, false},
		{"empty user", []any{"", "1", "2.5", "3"}, true, false},
		{"missing field", []any{"alice", "1", nil, "3"}, false, true},
		{"bad time", []any{"alice", "1", "2", "soon"}, false, true},
		{"wrong type", []any{"alice", int64(1), "2", "3"}, false, true},
		{"short reply", []any{"alice"}, false, true},
		{"empty reply", nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, found, err := decodeRecord("k", tt.vals)
			if got := errors.Is(err, ErrMalformedRecord); got != tt.malformed {
				t.Fatalf("err = %v, malformed = %v, want %v", err, got, tt.malformed)
			}
			if found != tt.found {
				t.Fatalf("found = %v, want %v", found, tt.found)
			}
			if found && (rec.Key != "k" || rec.User != tt.vals[0] || !rec.LastSeen.Equal(time.Unix(2, 5e8))) {
				t.Fatalf("record = %+v", rec)
			}
		})
	}
}

func TestMillis(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want int64
	}{
		{time.Nanosecond, 1},
		{time.Millisecond, 1},
		{time.Millisecond + time.Nanosecond, 2},
		{90 * time.Second, 90000},
		{12 * time.Hour, 43200000},
	}
	for _, tt := range tests {
		if got := millis(tt.d); got != tt.want {
			t.Errorf("millis(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

func TestIndexMillis(t *testing.T) {
	t.Parallel()
	tests := []struct {
		t    time.Time
		want int64
	}{
		{time.Time{}, 0},
		{time.UnixMilli(1700000000123), 1700000000123},
		{time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC), 253402300799999},
		{time.Unix(math.MaxInt64/2, 0), 253402300799999},
	}
	for _, tt := range tests {
		if got := indexMillis(tt.t); got != tt.want {
			t.Errorf("indexMillis(%v) = %d, want %d", tt.t, got, tt.want)
		}
	}
}

func TestValidKey(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]bool{
		"":           false,
		"user:alice": false,
		"a:b":        false,
		"0123abcdef": true,
		"revoked":    true,
	} {
		if got := validKey(key); got != want {
			t.Errorf("validKey(%q) = %v, want %v", key, got, want)
		}
	}
}

// replyErr is an error reply from Redis, as go-redis types them.
type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}

func TestIsWrongType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{replyErr("WRONGTYPE Operation against a key holding the wrong kind of value"), true},
		{fmt.Errorf("pipeline: %w", replyErr("WRONGTYPE Operation against a key")), true},
		{replyErr("LOADING Redis is loading the dataset in memory"), false},
		{replyErr("READONLY You can't write against a read only replica."), false},
		{replyErr("OOM command not allowed when used memory > 'maxmemory'."), false},
		{errors.New("WRONGTYPE but not a reply"), false},
		{io.EOF, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := isWrongType(tt.err); got != tt.want {
			t.Errorf("isWrongType(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
