package marketsim

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	k := []string{"K"}
	tests := []struct {
		name string
		opts Options
		want error
	}{
		{"no keys", Options{}, ErrNoKeys},
		{"empty key", Options{Keys: []string{"K", ""}}, ErrBadKey},
		{"key with space", Options{Keys: []string{"secret value"}}, ErrBadKey},
		{"key with comma", Options{Keys: []string{"secret,value"}}, ErrBadKey},
		{"key too long", Options{Keys: []string{strings.Repeat("s", maxKeyLen+1)}}, ErrBadKey},
		{"bad symbol", Options{Keys: k, Symbols: []string{"AAPL", "EUR/USD"}}, ErrBadSymbol},
		{"empty symbol", Options{Keys: k, Symbols: []string{""}}, ErrBadSymbol},
		{"long symbol", Options{Keys: k, Symbols: []string{strings.Repeat("A", 33)}}, ErrBadSymbol},
		{"repeated symbol", Options{Keys: k, Symbols: []string{"AAPL", "AAPL"}}, ErrBadSymbol},
		{"NaN rate", Options{Keys: k, RESTRate: math.NaN()}, ErrBadOption},
		{"negative burst", Options{Keys: k, RESTBurst: -1}, ErrBadOption},
		{"negative auth timeout", Options{Keys: k, AuthTimeout: -time.Second}, ErrBadOption},
		{"unknown policy", Options{Keys: k, CapPolicy: "lottery"}, ErrBadOption},
		{"negative events", Options{Keys: k, EventsPerSecond: -1}, ErrBadOption},
		{"huge events", Options{Keys: k, EventsPerSecond: 2e6}, ErrBadOption},
		{"tiny tick", Options{Keys: k, TickInterval: time.Microsecond}, ErrBadOption},
		{"negative pong timeout", Options{Keys: k, PongTimeout: -1}, ErrBadOption},
		{"negative queue", Options{Keys: k, OutQueue: -1}, ErrBadOption},
		{"tiny frames", Options{Keys: k, MaxFrameBytes: 10}, ErrBadOption},
		{"negative write timeout", Options{Keys: k, WriteTimeout: -1}, ErrBadOption},
		{"negative lifetime", Options{Keys: k, MaxLifetime: -1}, ErrBadOption},
		{"negative latency", Options{Keys: k, Latency: -1}, ErrBadOption},
		{"fail rate above 1", Options{Keys: k, FailRate: 1.5}, ErrBadOption},
		{"NaN reset rate", Options{Keys: k, ResetRate: math.NaN()}, ErrBadOption},
		{"public URL with path", Options{Keys: k, PublicURL: "http://h/x"}, ErrBadOption},
		{"public URL with query", Options{Keys: k, PublicURL: "http://h?apikey=1"}, ErrBadOption},
		{"public URL not http", Options{Keys: k, PublicURL: "ftp://h"}, ErrBadOption},
		{"public URL relative", Options{Keys: k, PublicURL: "/v1"}, ErrBadOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.opts)
			if !errors.Is(err, tt.want) {
				if s != nil {
					_ = s.Close()
				}
				t.Fatalf("New = %v, want %v", err, tt.want)
			}
			for _, key := range tt.opts.Keys {
				if key != "" && key != "K" && strings.Contains(err.Error(), key) {
					t.Errorf("error %q reveals a key", err)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	o, err := Options{Keys: []string{"K"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"RESTRate", o.RESTRate, 20.0},
		{"RESTBurst", o.RESTBurst, 40},
		{"AuthTimeout", o.AuthTimeout, 5 * time.Second},
		{"ConnCap", o.ConnCap, 1},
		{"CapPolicy", o.CapPolicy, RefuseNew},
		{"MaxSymbolsPerConn", o.MaxSymbolsPerConn, 200},
		{"MaxClientMsgsPerSec", o.MaxClientMsgsPerSec, 10},
		{"EventsPerSecond", o.EventsPerSecond, 20.0},
		{"PingInterval", o.PingInterval, 10 * time.Second},
		{"PongTimeout", o.PongTimeout, 30 * time.Second},
		{"symbols", len(o.Symbols), 100},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestRuntimeKnobsValidate(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{})
	for name, err := range map[string]error{
		"SetLatency":         s.SetLatency(-time.Second),
		"SetFailRate":        s.SetFailRate(2),
		"SetResetRate":       s.SetResetRate(-0.1),
		"SetEventsPerSecond": s.SetEventsPerSecond(0),
		"SetRESTLimit":       s.SetRESTLimit(math.Inf(1), 1),
		"SetRESTLimit burst": s.SetRESTLimit(1, -1),
	} {
		if !errors.Is(err, ErrBadOption) {
			t.Errorf("%s = %v, want ErrBadOption", name, err)
		}
	}
	if err := s.SetEventsPerSecond(1000); err != nil {
		t.Errorf("SetEventsPerSecond(1000) = %v", err)
	}
}
