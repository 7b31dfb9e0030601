package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rate is N requests per Interval.
type Rate struct {
	Tokens   uint64
	Interval time.Duration
}

func (r Rate) String() string { return fmt.Sprintf("%d/%s", r.Tokens, shortDuration(r.Interval)) }

// shortDuration prints 1h rather than 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Limit is one rate, or a burst and a sustained rate that must both allow a
// request ("20/1s,1000/1h").
type Limit []Rate

func (l Limit) String() string {
	s := make([]string, len(l))
	for i, r := range l {
		s[i] = r.String()
	}
	return strings.Join(s, ",")
}

// UnmarshalText lets a Limit be written as a string in YAML.
func (l *Limit) UnmarshalText(b []byte) error {
	v, err := ParseLimit(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// ParseLimit parses "N/duration" or "N/duration,M/duration". A duration
// without a number means one unit ("10/s" = 10 per second).
func ParseLimit(s string) (Limit, error) {
	parts := strings.Split(s, ",")
	if len(parts) > 2 {
		return nil, fmt.Errorf("%q: at most two windows (burst,sustained)", s)
	}
	var l Limit
	for _, p := range parts {
		p = strings.TrimSpace(p)
		n, d, ok := strings.Cut(p, "/")
		if !ok {
			return nil, fmt.Errorf("%q: want N/duration, e.g. 100/1s", s)
		}
		tokens, err := strconv.ParseUint(strings.TrimSpace(n), 10, 32)
		if err != nil || tokens == 0 {
			return nil, fmt.Errorf("%q: %q is not a positive whole number", s, n)
		}
		d = strings.TrimSpace(d)
		if d != "" && (d[0] < '0' || d[0] > '9') {
			d = "1" + d
		}
		interval, err := time.ParseDuration(d)
		if err != nil || interval < time.Millisecond {
			return nil, fmt.Errorf("%q: %q is not a duration of at least 1ms (e.g. 1s, 1m, 1h)", s, d)
		}
		l = append(l, Rate{Tokens: tokens, Interval: interval})
	}
	return l, nil
}
