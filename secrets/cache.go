package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// CacheConfig tunes a Cache. Zero values are safe defaults.
type CacheConfig struct {
	// Refresh is how often every loaded secret is re-read. Default 5m;
	// negative disables periodic refresh.
	Refresh time.Duration
	// MinReread is the shortest time between two re-reads of one secret
	// caused by Invalidate, so a key the vendor keeps refusing cannot turn
	// into a loop of provider calls. The first Invalidate after a load or
	// refresh always re-reads. Default 2s.
	MinReread time.Duration
	// Timeout bounds one provider call. Default 10s.
	Timeout time.Duration
	// Logger receives refresh failures and rotations (names only). Default: discard.
	Logger *slog.Logger
	// OnRefresh, if set, is called after every provider read with the
	// result: "ok", "rotated" or "error". It feeds the
	// tickgate_secret_refresh_total metric.
	OnRefresh func(result string)
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// auditAttr marks audit lines, as logging.Audit does (secrets does not
// import logging, which registers secret values with its redactor).
var auditAttr = slog.Bool("audit", true)

type entry struct {
	value Value
	// invalidatedAt is when Invalidate last re-read this secret.
	invalidatedAt time.Time
}

// Cache keeps secrets read from a Provider. It is safe for concurrent use.
type Cache struct {
	p   Provider
	cfg CacheConfig

	mu      sync.RWMutex
	entries map[string]entry

	group singleflight.Group

	closeOnce sync.Once
	started   atomic.Bool
	stop      chan struct{}
	done      chan struct{}
}

// NewCache returns a cache in front of p. Call Load to read the secrets
// the configuration references, then Start for periodic refresh.
func NewCache(p Provider, cfg CacheConfig) *Cache {
	if cfg.Refresh == 0 {
		cfg.Refresh = 5 * time.Minute
	}
	if cfg.MinReread <= 0 {
		cfg.MinReread = 2 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{p: p, cfg: cfg, entries: make(map[string]entry), stop: make(chan struct{}), done: make(chan struct{})}
}

// Load reads every named secret. It returns all failures joined, one per
// secret, each naming the secret and never its value.
func (c *Cache) Load(ctx context.Context, names ...string) error {
	var errs []error
	for _, n := range names {
		if _, err := c.read(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Get returns the cached value of name, reading it on first use.
func (c *Cache) Get(ctx context.Context, name string) (Value, error) {
	c.mu.RLock()
	e, ok := c.entries[name]
	c.mu.RUnlock()
	if ok {
		return e.value, nil
	}
	return c.read(ctx, name)
}

// Invalidate is called when a vendor rejected the value stale. If the
// cache already holds a different value (another caller re-read it), that
// value is returned at once. Otherwise the secret is re-read, with
// concurrent callers sharing one provider call, and at most once per
// MinReread. A failed re-read keeps the old value and returns the error.
func (c *Cache) Invalidate(ctx context.Context, name string, stale Value) (Value, error) {
	fresh := func(e entry, ok bool) bool {
		return ok && (!e.value.Equal(stale) || c.cfg.Now().Sub(e.invalidatedAt) < c.cfg.MinReread)
	}
	c.mu.RLock()
	e, ok := c.entries[name]
	c.mu.RUnlock()
	if fresh(e, ok) {
		return e.value, nil
	}
	// A flight that ended between the check above and joining the next
	// one has already replaced the value: fresh is checked again inside.
	return c.readUnless(ctx, name, fresh)
}

// Loaded reports whether every named secret has a value.
func (c *Cache) Loaded(names ...string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, n := range names {
		if _, ok := c.entries[n]; !ok {
			return false
		}
	}
	return true
}

// Values returns every secret value held, for a log scrubber.
func (c *Cache) Values() []Value {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Value, 0, len(c.entries))
	for _, e := range c.entries {
		out = append(out, e.value)
	}
	return out
}

func (c *Cache) read(ctx context.Context, name string) (Value, error) {
	return c.readUnless(ctx, name, nil)
}

// readUnless reads name from the provider, single-flighted, unless skip
// reports (inside the flight) that the cached entry is good enough.
func (c *Cache) readUnless(ctx context.Context, name string, skip func(entry, bool) bool) (Value, error) {
	ch := c.group.DoChan(name, func() (any, error) {
		if skip != nil {
			c.mu.RLock()
			e, ok := c.entries[name]
			c.mu.RUnlock()
			if skip(e, ok) {
				return e.value, nil
			}
		}
		invalidation := skip != nil
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Timeout)
		defer cancel()
		v, err := c.p.Get(ctx, name)
		if err == nil && v.IsZero() {
			err = fmt.Errorf("secret %s: %w", name, ErrEmpty)
		}
		c.mu.Lock()
		old, had := c.entries[name]
		next := old
		if err == nil {
			next.value = v
		}
		if invalidation {
			next.invalidatedAt = c.cfg.Now() // a failed re-read counts too
		}
		if err == nil || had {
			c.entries[name] = next
		}
		c.mu.Unlock()
		switch {
		case err != nil:
			c.report("error")
			if had {
				c.cfg.Logger.Warn("secret refresh failed; keeping last good value", auditAttr, "secret", name, "err", err)
				return old.value, err
			}
			return Value{}, err
		case had && !old.value.Equal(v):
			c.report("rotated")
			c.cfg.Logger.Info("secret rotated", auditAttr, "secret", name)
		default:
			c.report("ok")
		}
		return v, nil
	})
	select {
	case r := <-ch:
		v, _ := r.Val.(Value)
		return v, r.Err
	case <-ctx.Done():
		return Value{}, ctx.Err()
	}
}

func (c *Cache) report(result string) {
	if c.cfg.OnRefresh != nil {
		c.cfg.OnRefresh(result)
	}
}

// Start refreshes every loaded secret each Refresh interval until Close.
func (c *Cache) Start() {
	if c.cfg.Refresh < 0 || !c.started.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer close(c.done)
		t := time.NewTicker(c.cfg.Refresh)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				c.RefreshAll(context.Background())
			}
		}
	}()
}

// RefreshAll re-reads every loaded secret once; failures keep old values.
func (c *Cache) RefreshAll(ctx context.Context) {
	c.mu.RLock()
	names := make([]string, 0, len(c.entries))
	for n := range c.entries {
		names = append(names, n)
	}
	c.mu.RUnlock()
	for _, n := range names {
		_, _ = c.read(ctx, n)
	}
}

// Close stops the refresher started by Start and waits for it. Safe to
// call twice, and without Start.
func (c *Cache) Close() {
	c.closeOnce.Do(func() {
		close(c.stop)
		if c.started.Load() {
			<-c.done
		}
	})
}
