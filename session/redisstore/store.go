package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickgate/tickgate/internal/redisconn"
	"github.com/tickgate/tickgate/session"
)

const (
	// DefaultPrefix starts every key and channel name when Config.Prefix
	// is empty.
	DefaultPrefix = "tickgate:session:"
	// DefaultOpTimeout bounds each store call when Config.OpTimeout is
	// zero: long enough for a healthy Redis across a data centre, short
	// enough that a request needing a session gets its 503 quickly while
	// Redis is unreachable.
	DefaultOpTimeout = 500 * time.Millisecond
)

// Config configures a Store. Exactly one of URL and Client is required;
// every other zero value is a safe default.
type Config struct {
	// URL is the Redis server in redis.ParseURL's syntax:
	// redis://[[user]:password@]host[:port][/db][?option=value...] or
	// rediss://... for TLS. The Store owns the client it makes from it and
	// closes it in Close. It honours context deadlines; unless the URL
	// sets dial_timeout, a connection attempt gives up after OpTimeout
	// (but at least 1s and at most 5s), so Close stays quick during a
	// network partition. Errors about the URL never repeat it (it may hold a
	// password).
	URL string
	// Client is an existing client to use instead of URL, for instance
	// one shared with the Redis rate limiter. Close leaves it open. For
	// OpTimeout to cut a stalled read short, the client must honour
	// context deadlines (redis.Options.ContextTimeoutEnabled); New logs a
	// warning when it can tell that it does not.
	Client redis.UniversalClient
	// Prefix starts every Redis key the Store uses and the name of its
	// revocation channel (default DefaultPrefix). Deployments sharing a
	// Redis server need distinct prefixes even in distinct databases:
	// pub/sub channels ignore the database number.
	Prefix string
	// OpTimeout bounds each call to the Store (default
	// DefaultOpTimeout); GetMany, UserKeys and DeleteUser apply it to each
	// batch of keys. The caller's context can only shorten it.
	OpTimeout time.Duration
	// Logger receives warnings the Store cannot return as errors, such as
	// a failed best-effort index cleanup (default: discarded). Log lines
	// never carry a session key.
	Logger *slog.Logger
}

// Store is a session.Store on Redis, shared by every replica that uses
// the same server and Prefix. Create it with New.
type Store struct {
	client  redis.UniversalClient
	owned   bool
	prefix  string
	channel string
	timeout time.Duration
	log     *slog.Logger
	scripts scripts

	closed    atomic.Bool
	closeOnce sync.Once

	mu   sync.Mutex // guards subs
	subs map[*subscription]struct{}
}

var (
	_ session.Store       = (*Store)(nil)
	_ session.MultiGetter = (*Store)(nil)
	_ session.UserIndex   = (*Store)(nil)
	_ session.Events      = (*Store)(nil)
)

// New validates cfg and returns a Store. It does not contact Redis: a
// server that is down at start-up shows as errors from the Store's methods
// (and from Ping, for readiness checks) until it comes back.
func New(cfg Config) (*Store, error) {
	if cfg.OpTimeout < 0 {
		return nil, fmt.Errorf("%w: OpTimeout must not be negative", ErrInvalidConfig)
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		client:  cfg.Client,
		prefix:  cfg.Prefix,
		channel: cfg.Prefix + "revoked",
		timeout: cfg.OpTimeout,
		log:     cfg.Logger,
		scripts: newScripts(),
		subs:    map[*subscription]struct{}{},
	}
	client, owned, err := redisconn.Client(cfg.URL, cfg.Client, cfg.OpTimeout, func(msg string) { s.log.Warn("redisstore: " + msg) })
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	s.client, s.owned = client, owned
	return s, nil
}

// recordKey is the Redis key of the record stored under key.
func (s *Store) recordKey(key string) string { return s.prefix + key }

// userKey is the Redis key of user's session index.
func (s *Store) userKey(user string) string { return s.prefix + "user:" + user }

// validKey reports whether key can name a record. Colons are refused so
// that no record key can collide with the store's own sub-namespaces
// (prefix + "user:…"); the Manager's keys are hex.
func validKey(key string) bool {
	return key != "" && !strings.Contains(key, ":")
}

// opCtx bounds one store call by the configured OpTimeout.
func (s *Store) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// fail wraps a Redis error for op. A closed client becomes
// session.ErrClosed. Neither op nor go-redis errors carry a key.
func fail(op string, err error) error {
	if errors.Is(err, redis.ErrClosed) {
		err = session.ErrClosed
	}
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// errClosed is the error of every call after Close.
func errClosed(op string) error { return fmt.Errorf("redisstore: %s: %w", op, session.ErrClosed) }

// invalid is the error for an empty or unusable key or a ttl <= 0.
func invalid(op string) error {
	return fmt.Errorf("redisstore: %s: %w", op, session.ErrInvalidArgument)
}

// Ping implements session.Store: it reports whether Redis answers within
// OpTimeout, and ErrClosed after Close.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed("ping")
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fail("ping", err)
	}
	return nil
}

// Close ends every subscription, waiting for their goroutines, and
// closes the Redis client if New made it from Config.URL. Every later call
// returns session.ErrClosed. It is safe to call twice; the second call
// returns nil.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.stopSubscriptions()
		if s.owned {
			err = s.client.Close()
		}
	})
	return err
}
