package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/metrics"
)

// ConnCounter counts open connections per key against a maximum. It is
// per process: each replica enforces the maximum on the connections it
// holds.
type ConnCounter struct {
	max int
	mu  sync.Mutex // guards n
	n   map[string]int
}

// NewConnCounter allows max open connections per key; max < 1 means no
// limit (counting still works).
func NewConnCounter(max int) *ConnCounter { return &ConnCounter{max: max, n: map[string]int{}} }

// Acquire counts one more connection for key unless key is at the
// maximum.
func (c *ConnCounter) Acquire(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max > 0 && c.n[key] >= c.max {
		return false
	}
	c.n[key]++
	return true
}

// Release counts one connection of key less; never below zero.
func (c *ConnCounter) Release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch n := c.n[key]; {
	case n <= 1:
		delete(c.n, key)
	default:
		c.n[key] = n - 1
	}
}

// Count returns key's open connections.
func (c *ConnCounter) Count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// WSGuard limits WebSocket connections per client address (IPv6 per
// /64): new connections per window, on a Limiter (shared by replicas on a
// Redis store), and connections open at once, on a ConnCounter (per
// replica). The relay calls Admit before serving a socket; per-session
// limits (connections, symbols, control messages) are the relay's own.
type WSGuard struct {
	connects *Limiter
	conns    *ConnCounter
	m        *metrics.Metrics
	log      *slog.Logger
}

// NewWSGuard limits new connections per address to connects (empty: no
// limit) and open connections per address to connsPerIP (< 1: no limit).
// opts configures the connects limiter (Name defaults to "ws_connect").
func NewWSGuard(connects config.Limit, connsPerIP int, opts LimiterOptions, m *metrics.Metrics) (*WSGuard, error) {
	if opts.Name == "" {
		opts.Name = "ws_connect"
	}
	w := &WSGuard{conns: NewConnCounter(connsPerIP), m: m, log: opts.Logger}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if len(connects) > 0 {
		var err error
		if w.connects, err = NewLimiterWith(connects, opts); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Admit decides whether addr may open one more WebSocket. On success the
// caller must call release exactly once when the socket closes (extra
// calls do nothing). Errors: ErrTooManyConnects or ErrTooManyConns (close
// 4008, policy violation), ErrStoreUnavailable when a fail-closed
// connects limiter cannot reach its store (close 1013, try again later),
// or ctx's error. Refusals are logged (audit) and counted in
// tickgate_ratelimit_rejections_total under scope ws_connect or
// ws_conns_ip.
func (w *WSGuard) Admit(ctx context.Context, addr netip.Addr) (release func(), err error) {
	key := LimitKey(addr)
	if w.connects != nil {
		res, err := w.connects.Take(ctx, "ws-connect:"+key)
		switch {
		case errors.Is(err, ErrStoreUnavailable):
			return nil, err
		case err != nil:
			return nil, fmt.Errorf("guard: ws admit: %w", err)
		case !res.Allowed:
			w.refused("ws_connect", addr)
			return nil, ErrTooManyConnects
		}
	}
	if !w.conns.Acquire(key) {
		w.refused("ws_conns_ip", addr)
		return nil, ErrTooManyConns
	}
	var once sync.Once
	return func() { once.Do(func() { w.conns.Release(key) }) }, nil
}

func (w *WSGuard) refused(scope string, addr netip.Addr) {
	if w.m != nil {
		w.m.RateLimitRejections.WithLabelValues(scope).Inc()
	}
	w.log.Warn("websocket refused", "audit", true, "scope", scope, "client_ip", addr.String())
}

// Open returns how many WebSockets addr's bucket holds open.
func (w *WSGuard) Open(addr netip.Addr) int { return w.conns.Count(LimitKey(addr)) }

// Close releases the connects limiter. Safe twice.
func (w *WSGuard) Close() {
	if w.connects != nil {
		w.connects.Close()
	}
}
