package marketsim

import (
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"time"
)

// CapPolicy says what happens when a key opens more WebSocket connections
// than Options.ConnCap allows.
type CapPolicy string

// The connection cap policies of real vendors.
const (
	// RefuseNew answers the newcomer's auth with max_connections and close
	// 4003; the connections already open stay (Polygon, Alpaca).
	RefuseNew CapPolicy = "refuse_new"
	// EvictOld accepts the newcomer and sends the oldest connection of the
	// key max_connections and close 4003 (Twelve Data).
	EvictOld CapPolicy = "evict_old"
)

// Defaults of Options; a zero field means the default.
const (
	DefaultRESTRate            = 20.0
	DefaultRESTBurst           = 40
	DefaultAuthTimeout         = 5 * time.Second
	DefaultConnCap             = 1
	DefaultCapPolicy           = RefuseNew
	DefaultMaxSymbolsPerConn   = 200
	DefaultMaxClientMsgsPerSec = 10
	DefaultEventsPerSecond     = 20.0
	DefaultTickInterval        = 10 * time.Millisecond
	DefaultPingInterval        = 10 * time.Second
	DefaultPongTimeout         = 30 * time.Second
	DefaultOutQueue            = 256
	DefaultMaxFrameBytes       = 16 << 10
	DefaultWriteTimeout        = 10 * time.Second
)

// Limits on options, so that a typo cannot make the simulator eat the
// machine.
const (
	maxKeyLen         = 256
	maxSymbolLen      = 32
	maxEventsPerSec   = 1_000_000
	minTickInterval   = time.Millisecond
	minMaxFrameBytes  = 256
	maxQueryQuotes    = 200 // symbols in one /v1/quotes request
	wsReadLimit       = 64 << 10
	defaultPageSize   = 20
	maxPageSize       = 100
	maxEchoedSymbols  = 20 // unknown symbols named back in one error frame
	closeGraceTimeout = 3 * time.Second
)

// Options configure a Server. The zero value of every field is its
// documented default, except Keys, which must name at least one key.
type Options struct {
	// Keys are the valid api keys. Required. They are never logged.
	Keys []string
	// Symbols is the universe; default DefaultSymbols() (100 tickers such
	// as AAPL, MSFT, TSLA, SPY, BTCUSD, EURUSD). Symbols are 1–32 characters
	// of A–Z, a–z, 0–9, '.', '-', '_' and ':', matched exactly.
	Symbols []string
	// Seed makes prices and injected faults repeatable.
	Seed int64

	// RESTRate is the per-key REST budget in requests per second (default
	// 20); a negative value disables the budget (benchmarks).
	RESTRate float64
	// RESTBurst is the bucket size of the budget (default 40).
	RESTBurst int

	// AuthTimeout is how long a new WebSocket may take to authenticate
	// before auth_timeout and close 4002 (default 5s).
	AuthTimeout time.Duration
	// ConnCap is the number of authenticated WebSocket connections per key
	// (default 1); negative means no cap.
	ConnCap int
	// CapPolicy applies when ConnCap is reached (default RefuseNew).
	CapPolicy CapPolicy
	// MaxSymbolsPerConn caps subscriptions per connection (default 200);
	// negative means no cap.
	MaxSymbolsPerConn int
	// MaxClientMsgsPerSec is the number of client messages allowed in any
	// one-second window before close 4008 (default 10); negative means no
	// limit.
	MaxClientMsgsPerSec int
	// EventsPerSecond is the data rate per subscribed symbol (default 20).
	EventsPerSecond float64
	// TickInterval is how often data frames are produced (default 10ms,
	// at least 1ms); each connection gets at most one frame per tick unless
	// a frame would pass MaxFrameBytes.
	TickInterval time.Duration
	// PingInterval is the time between server pings (default 10s);
	// negative disables pings.
	PingInterval time.Duration
	// PongTimeout is how long a ping waits for its pong before close 4004
	// (default 30s).
	PongTimeout time.Duration
	// OutQueue is the per-connection outbound queue in frames (default
	// 256). A connection whose queue overflows gets slow_client and close
	// 4005.
	OutQueue int
	// MaxFrameBytes splits data arrays so that no frame passes this size
	// (default 16 KiB, at least 256), below coder/websocket's default read
	// limit of 32 KiB.
	MaxFrameBytes int
	// WriteTimeout bounds every socket write (default 10s); a peer that
	// does not read for that long is dropped.
	WriteTimeout time.Duration
	// MaxLifetime, when positive, closes every WebSocket connection with
	// 1001 after that long, like vendors that recycle connections daily.
	MaxLifetime time.Duration

	// ErrorsIn200 answers 4xx errors with HTTP 200 and the error in the
	// body ({"status":"error","code":401,...}), like Twelve Data.
	ErrorsIn200 bool
	// Latency delays every HTTP answer (REST and WebSocket upgrade).
	Latency time.Duration
	// FailRate is the probability (0–1) that a request gets 503.
	FailRate float64
	// ResetRate is the probability (0–1) that a request's connection is
	// reset without an answer.
	ResetRate float64

	// PublicURL is the absolute base (http://host:port) used in next_url
	// and redirect Location; default: derived from each request's Host.
	// Setting it to another host simulates a vendor that redirects across
	// hosts.
	PublicURL string
	// Now is the clock of timestamps, the REST budget and the client
	// message window; default time.Now. Timers (auth timeout, pings, ticks,
	// lifetime) always use real time.
	Now func() time.Time
	// Logger receives operational logs; default: discard. Keys are logged
	// only as a short fingerprint.
	Logger *slog.Logger
}

// withDefaults validates o and returns a copy with defaults filled in.
func (o Options) withDefaults() (Options, error) {
	keys, err := checkKeys(o.Keys)
	if err != nil {
		return o, err
	}
	o.Keys = keys
	if len(o.Symbols) == 0 {
		o.Symbols = DefaultSymbols()
	} else {
		o.Symbols = append([]string(nil), o.Symbols...)
	}
	seen := make(map[string]bool, len(o.Symbols))
	for i, s := range o.Symbols {
		if !validSymbol(s) {
			return o, fmt.Errorf("%w: symbol %d %q must be 1-%d letters, digits or .-_: characters", ErrBadSymbol, i+1, truncate(s, maxSymbolLen), maxSymbolLen)
		}
		if seen[s] {
			return o, fmt.Errorf("%w: symbol %q is listed twice", ErrBadSymbol, s)
		}
		seen[s] = true
	}

	if o.RESTRate, o.RESTBurst, err = restLimit(o.RESTRate, o.RESTBurst); err != nil {
		return o, err
	}
	if err := defaultDuration(&o.AuthTimeout, DefaultAuthTimeout, "AuthTimeout"); err != nil {
		return o, err
	}
	if o.ConnCap == 0 {
		o.ConnCap = DefaultConnCap
	}
	switch o.CapPolicy {
	case "":
		o.CapPolicy = DefaultCapPolicy
	case RefuseNew, EvictOld:
	default:
		return o, badOption("CapPolicy", fmt.Sprintf("%q is not %s or %s", string(o.CapPolicy), RefuseNew, EvictOld))
	}
	if o.MaxSymbolsPerConn == 0 {
		o.MaxSymbolsPerConn = DefaultMaxSymbolsPerConn
	}
	if o.MaxClientMsgsPerSec == 0 {
		o.MaxClientMsgsPerSec = DefaultMaxClientMsgsPerSec
	}
	if o.EventsPerSecond == 0 {
		o.EventsPerSecond = DefaultEventsPerSecond
	}
	if err := checkEventsPerSecond(o.EventsPerSecond); err != nil {
		return o, err
	}
	if err := defaultDuration(&o.TickInterval, DefaultTickInterval, "TickInterval"); err != nil {
		return o, err
	}
	if o.TickInterval < minTickInterval {
		return o, badOption("TickInterval", "must be at least 1ms")
	}
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if err := defaultDuration(&o.PongTimeout, DefaultPongTimeout, "PongTimeout"); err != nil {
		return o, err
	}
	switch {
	case o.OutQueue == 0:
		o.OutQueue = DefaultOutQueue
	case o.OutQueue < 0:
		return o, badOption("OutQueue", "must not be negative")
	}
	switch {
	case o.MaxFrameBytes == 0:
		o.MaxFrameBytes = DefaultMaxFrameBytes
	case o.MaxFrameBytes < minMaxFrameBytes:
		return o, badOption("MaxFrameBytes", fmt.Sprintf("must be at least %d", minMaxFrameBytes))
	}
	if err := defaultDuration(&o.WriteTimeout, DefaultWriteTimeout, "WriteTimeout"); err != nil {
		return o, err
	}
	if o.MaxLifetime < 0 {
		return o, badOption("MaxLifetime", "must not be negative")
	}
	if o.Latency < 0 {
		return o, badOption("Latency", "must not be negative")
	}
	if err := checkRate("FailRate", o.FailRate); err != nil {
		return o, err
	}
	if err := checkRate("ResetRate", o.ResetRate); err != nil {
		return o, err
	}
	if o.PublicURL != "" {
		u, err := url.Parse(o.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.Trim(u.Path, "/") != "" {
			return o, badOption("PublicURL", "must be an absolute http(s) URL without path or query, like http://127.0.0.1:7070")
		}
		o.PublicURL = u.Scheme + "://" + u.Host
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// restLimit applies the defaults of RESTRate and RESTBurst.
func restLimit(rate float64, burst int) (float64, int, error) {
	if rate == 0 {
		rate = DefaultRESTRate
	}
	if math.IsNaN(rate) || math.IsInf(rate, 0) {
		return 0, 0, badOption("RESTRate", "must be a finite number")
	}
	switch {
	case burst == 0:
		burst = DefaultRESTBurst
	case burst < 0:
		return 0, 0, badOption("RESTBurst", "must not be negative")
	}
	return rate, burst, nil
}

func badOption(field, why string) error {
	return fmt.Errorf("%w: %s %s", ErrBadOption, field, why)
}

func defaultDuration(d *time.Duration, def time.Duration, field string) error {
	switch {
	case *d == 0:
		*d = def
	case *d < 0:
		return badOption(field, "must not be negative")
	}
	return nil
}

func checkRate(field string, p float64) error {
	if !(p >= 0 && p <= 1) { // also rejects NaN
		return badOption(field, "must be between 0 and 1")
	}
	return nil
}

func checkEventsPerSecond(r float64) error {
	if !(r > 0 && r <= maxEventsPerSec) {
		return badOption("EventsPerSecond", fmt.Sprintf("must be above 0 and at most %d", maxEventsPerSec))
	}
	return nil
}

// checkKeys validates keys and returns a copy. Errors name the position of
// a key, never its value.
func checkKeys(keys []string) ([]string, error) {
	if len(keys) == 0 {
		return nil, ErrNoKeys
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		if k == "" || len(k) > maxKeyLen {
			return nil, fmt.Errorf("%w: key %d must be 1-%d bytes", ErrBadKey, i+1, maxKeyLen)
		}
		for _, r := range k {
			if r <= ' ' || r == ',' || r == 0x7f {
				return nil, fmt.Errorf("%w: key %d contains a space, comma or control character", ErrBadKey, i+1)
			}
		}
		out[i] = k
	}
	return out, nil
}

func validSymbol(s string) bool {
	if s == "" || len(s) > maxSymbolLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '.', c == '-', c == '_', c == ':':
		default:
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
