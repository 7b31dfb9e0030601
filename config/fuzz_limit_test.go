package config

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseLimit: any rate-limit spelling (TICKGATE_*_LIMIT, guard.yaml
// route limits) parses to one or two positive rates of at least 1ms, or a
// one-line error naming the input; never a panic. A parsed limit prints
// back to a spelling that parses to the same limit.
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"100/1s", "10/s", "20/1s,1000/1h", " 5 / 1m ", "0/1s", "1/0s", "1/1ns", "a/b", "1/1s,2/2s,3/3s",
		"4294967296/1s", "1/-1s", "1/", "/1s", "1/1s,", ",", "1/1h1m1s", "1/ 9223372036854775807ns", "1/\x00s", "1/1s\r\nX: y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLimit(s)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") && !strings.ContainsAny(s, "\r\n") {
				t.Fatalf("error for %q spans lines: %v", s, err)
			}
			if l != nil {
				t.Fatalf("error with a limit for %q", s)
			}
			return
		}
		if len(l) < 1 || len(l) > 2 {
			t.Fatalf("%q parsed to %d rates", s, len(l))
		}
		for _, r := range l {
			if r.Tokens == 0 || r.Interval < time.Millisecond {
				t.Fatalf("%q parsed to %v", s, r)
			}
		}
		again, err := ParseLimit(l.String())
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, l.String(), err)
		}
		if again.String() != l.String() {
			t.Fatalf("%q: %q reparsed as %q", s, l.String(), again.String())
		}
		for i := range l {
			if again[i] != l[i] {
				t.Fatalf("%q: rate %d %v reparsed as %v", s, i, l[i], again[i])
			}
		}
	})
}
