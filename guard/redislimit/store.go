package redislimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sethvargo/go-limiter"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/guard"
	"github.com/tickgate/tickgate/internal/redisconn"
)

const (
	// DefaultPrefix starts every key when Config.Prefix is empty.
	DefaultPrefix = "tickgate:ratelimit:"
	// DefaultOpTimeout bounds each store call when Config.OpTimeout is
	// zero. A limit is checked on every request, so an unreachable Redis
	// must cost little before the limiter's failure policy decides.
	DefaultOpTimeout = 100 * time.Millisecond
)

// Config configures a Backend. Exactly one of URL and Client is required;
// every other zero value is a safe default.
type Config struct {
	// URL is the Redis server in redis.ParseURL's syntax
	// (redis://[[user]:password@]host[:port][/db], rediss:// for TLS).
	// The Backend owns the client it makes and closes it in Close.
	URL string
	// Client is an existing client, e.g. the one the session store
	// uses; Close leaves it open. It should honour context deadlines
	// (redis.Options.ContextTimeoutEnabled) for OpTimeout to cut a
	// stalled read short; New logs a warning when it can tell it does
	// not.
	Client redis.UniversalClient
	// Prefix starts every key (default DefaultPrefix). Deployments
	// sharing a Redis need distinct prefixes; replicas of one deployment
	// must use the same.
	Prefix string
	// OpTimeout bounds each call (default DefaultOpTimeout); the caller's
	// context can only shorten it.
	OpTimeout time.Duration
	// Logger receives configuration warnings (default: discarded).
	Logger *slog.Logger
}

// Backend makes go-limiter stores on one Redis. Its Store method is a
// guard.StoreFactory.
type Backend struct {
	*redisconn.Conn
	prefix  string
	timeout time.Duration
	scripts scripts
}

var _ guard.StoreFactory = (*Backend)(nil).Store

// New validates cfg and returns a Backend. It does not contact Redis: a
// server that is down shows as errors from the stores (and from Ping)
// until it comes back.
func New(cfg Config) (*Backend, error) {
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
	b := &Backend{prefix: cfg.Prefix, timeout: cfg.OpTimeout, scripts: newScripts()}
	conn, err := redisconn.New("redislimit", cfg.URL, cfg.Client, cfg.OpTimeout, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	b.Conn = conn
	return b, nil
}

// hashTagBraces keeps limiter names from forming a Redis Cluster hash tag,
// which would put every bucket of a limiter into one slot.
var hashTagBraces = strings.NewReplacer("{", "(", "}", ")")

// Store returns the store of one window of the limiter name: its keys are
// Prefix + name + ":" + rate + ":" + a hash of the bucket key, so every
// replica using the same Prefix shares the buckets of a limiter with the
// same name and rate.
func (b *Backend) Store(name string, r config.Rate) (limiter.Store, error) {
	return b.NewStore(hashTagBraces.Replace(name)+":"+r.String()+":", r.Tokens, r.Interval)
}

// NewStore returns a store whose keys start with Prefix + prefix, allowing
// tokens per interval by default.
func (b *Backend) NewStore(prefix string, tokens uint64, interval time.Duration) (*Store, error) {
	if tokens == 0 || interval <= 0 {
		return nil, fmt.Errorf("%w: a store needs tokens and a positive interval", ErrInvalidConfig)
	}
	return &Store{b: b, prefix: b.prefix + prefix, tokens: tokens, intervalMS: durationMS(interval)}, nil
}

// durationMS is d in whole milliseconds, rounded up, at least 1.
func durationMS(d time.Duration) int64 {
	return max(int64((d+time.Millisecond-1)/time.Millisecond), 1)
}

// Store is a limiter.Store on Redis: atomic (one Lua script per call),
// shared by every process that uses the same key prefix.
type Store struct {
	b          *Backend
	prefix     string
	tokens     uint64
	intervalMS int64
	stopped    atomic.Bool
}

var _ limiter.Store = (*Store)(nil)

// key is the Redis key of a bucket. Bucket keys hold client addresses,
// so only a hash of them is stored (as go-limiter's Store documentation
// advises).
func (s *Store) key(k string) string {
	sum := sha256.Sum256([]byte(k))
	var buf [32]byte
	hex.Encode(buf[:], sum[:16])
	return s.prefix + string(buf[:])
}

func (s *Store) run(ctx context.Context, sc *redis.Script, key string, args ...any) *redis.Cmd {
	ctx, cancel := context.WithTimeout(ctx, s.b.timeout)
	defer cancel()
	return sc.Run(ctx, s.b.Client, []string{s.key(key)}, args...)
}

// Take spends one token of key. reset is the Unix time in nanoseconds,
// on this process's clock, when the current window ends.
func (s *Store) Take(ctx context.Context, key string) (tokens, remaining, reset uint64, ok bool, err error) {
	if s.stopped.Load() {
		return 0, 0, 0, false, limiter.ErrStopped
	}
	v, err := s.run(ctx, s.b.scripts.take, key, s.tokens, s.intervalMS).Int64Slice()
	if err != nil {
		return 0, 0, 0, false, fail("take", err)
	}
	if len(v) != 4 || v[0] < 0 || v[1] < 0 || v[2] <= 0 {
		return 0, 0, 0, false, fmt.Errorf("redislimit: take: unexpected reply %v", v)
	}
	resetAt := time.Now().Add(time.Duration(v[2]) * time.Millisecond)
	return uint64(v[0]), uint64(v[1]), uint64(resetAt.UnixNano()), v[3] == 1, nil
}

// Get returns key's limit and remaining tokens without taking one; 0, 0
// when the bucket does not exist.
func (s *Store) Get(ctx context.Context, key string) (tokens, remaining uint64, err error) {
	if s.stopped.Load() {
		return 0, 0, limiter.ErrStopped
	}
	v, err := s.run(ctx, s.b.scripts.get, key, s.tokens, s.intervalMS).Int64Slice()
	if err != nil {
		return 0, 0, fail("get", err)
	}
	if len(v) != 2 || v[0] < 0 || v[1] < 0 {
		return 0, 0, fmt.Errorf("redislimit: get: unexpected reply %v", v)
	}
	return uint64(v[0]), uint64(v[1]), nil
}

// Set replaces key's bucket with a full one of tokens per interval.
func (s *Store) Set(ctx context.Context, key string, tokens uint64, interval time.Duration) error {
	if s.stopped.Load() {
		return limiter.ErrStopped
	}
	if tokens == 0 || interval <= 0 {
		return fmt.Errorf("redislimit: set: %w", ErrInvalidConfig)
	}
	if err := s.run(ctx, s.b.scripts.set, key, tokens, durationMS(interval)).Err(); err != nil {
		return fail("set", err)
	}
	return nil
}

// Burst adds tokens to key's current window.
func (s *Store) Burst(ctx context.Context, key string, tokens uint64) error {
	if s.stopped.Load() {
		return limiter.ErrStopped
	}
	if err := s.run(ctx, s.b.scripts.burst, key, s.tokens, s.intervalMS, tokens).Err(); err != nil {
		return fail("burst", err)
	}
	return nil
}

// Close stops the store: later calls return limiter.ErrStopped. The
// buckets stay in Redis for the other replicas. Safe twice.
func (s *Store) Close(context.Context) error {
	s.stopped.Store(true)
	return nil
}

// fail wraps a Redis error; a closed client becomes limiter.ErrStopped.
// go-redis errors carry no key and no password.
func fail(op string, err error) error {
	if errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("redislimit: %s: %w", op, limiter.ErrStopped)
	}
	return fmt.Errorf("redislimit: %s: %w", op, err)
}
