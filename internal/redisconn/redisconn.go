// Package redisconn makes the go-redis clients of tickgate's Redis-backed
// stores (sessions, rate limits, vendor budgets) the same way: from a
// redis:// or rediss:// URL whose errors never repeat the URL (it may
// hold a password), honouring context deadlines so a per-call timeout can
// cut a stalled server short, and with dials bounded so Close stays quick
// during a network partition.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Dial timeout bounds of a client made from a URL: long enough for a TLS
// handshake across a region, short enough for Close to be quick while
// packets are dropped.
const (
	minDialTimeout = time.Second
	maxDialTimeout = 5 * time.Second
)

// ErrURL marks a URL that is not a usable Redis URL.
var ErrURL = errors.New("URL")

// Client owns a client for the URL raw or uses given, exactly one of
// which must be set; owned reports whether the caller must close it.
// opTimeout is the stores' per-call timeout: it also bounds dials unless
// the URL sets dial_timeout. warn is called when given ignores context
// deadlines.
func Client(raw string, given redis.UniversalClient, opTimeout time.Duration, warn func(string)) (c redis.UniversalClient, owned bool, err error) {
	switch {
	case raw != "" && given != nil:
		return nil, false, errors.New("set URL or Client, not both")
	case raw == "" && given == nil:
		return nil, false, errors.New("URL or Client is required")
	case given != nil:
		if !HonoursDeadlines(given) && warn != nil {
			warn("the Redis client ignores context deadlines, so OpTimeout cannot cut a stalled read short; set ContextTimeoutEnabled on it")
		}
		return given, false, nil
	}
	opts, err := Options(raw)
	if err != nil {
		return nil, false, err
	}
	// Calls bound their own dials with opTimeout and retry them
	// (MaxRetries), but go-redis also dials in the background (pool
	// refills, pub/sub reconnects) with only DialTimeout to stop it;
	// during a partition that drops packets those dials would hold up
	// Close for DialerRetries × DialTimeout (25s by default).
	if opts.DialTimeout == 0 {
		opts.DialTimeout = min(max(opTimeout, minDialTimeout), maxDialTimeout)
	}
	opts.DialerRetries = 1
	return redis.NewClient(opts), true, nil
}

// Options parses a redis:// or rediss:// URL into client options with
// context deadlines honoured (without it go-redis ignores them on socket
// reads). Its errors wrap ErrURL and never contain the URL.
func Options(raw string) (*redis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL itself
		}
		return nil, fmt.Errorf("%w: %w", ErrURL, err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("%w scheme must be redis or rediss", ErrURL)
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		// ParseURL's own messages name a path, database or query option,
		// never the user information.
		return nil, fmt.Errorf("%w: %w", ErrURL, err)
	}
	opts.ContextTimeoutEnabled = true
	return opts, nil
}

// HonoursDeadlines reports whether c applies context deadlines to socket
// I/O, when its type says; unknown types get the benefit of the doubt.
func HonoursDeadlines(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

// Conn is a store's client with the Ping and Close every store has.
type Conn struct {
	// Client is the client made from the URL or the one given.
	Client redis.UniversalClient

	name      string // the store, for errors: "redislimit"
	owned     bool
	timeout   time.Duration
	closeOnce sync.Once
	closeErr  error
}

// New is Client wrapped in a Conn; name starts its errors and warnings.
func New(name, raw string, given redis.UniversalClient, opTimeout time.Duration, log *slog.Logger) (*Conn, error) {
	warn := func(msg string) {
		if log != nil {
			log.Warn(name + ": " + msg)
		}
	}
	c, owned, err := Client(raw, given, opTimeout, warn)
	if err != nil {
		return nil, err
	}
	return &Conn{Client: c, name: name, owned: owned, timeout: opTimeout}, nil
}

// Ping checks that Redis answers, for start-up and readiness, within the
// per-call timeout (at least a second).
func (c *Conn) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(c.timeout, time.Second))
	defer cancel()
	if err := c.Client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%s: ping: %w", c.name, err)
	}
	return nil
}

// Close closes the client made from a URL (a client given stays open).
// Safe twice.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		if c.owned {
			c.closeErr = c.Client.Close()
		}
	})
	return c.closeErr
}
