// Package redisbudget keeps proxy budgets (a vendor plan's request budget
// per key) in Redis, so that every tickgate replica sharing a vendor key
// spends one budget: N replicas cannot send N times the plan.
//
// # Buckets
//
// A budget is one Redis hash per vendor account (the upstream's first
// secret name, never its value), under Prefix + name. One Lua script
// refills and takes from every window of the budget at once, so a take is
// atomic however many replicas race for the last token, and touches one
// key (Redis Cluster works). The buckets refill continuously like
// proxy.MemoryBudget's, timed by the Redis server's clock (TIME), so
// replicas with skewed clocks agree; the durations handed back are added
// to the local clock. Replicas whose YAML gives the same account
// different budgets (during a rolling change) share the tokens, each
// capping them at its own sizes. A hash expires once every window would
// be full again.
//
// # Failures
//
// Every call is bounded by Config.OpTimeout (250ms by default) and
// returns the Redis error; the proxy then lets the call through and logs
// it (the vendor's 429 and the cool-down after it still protect the key).
//
// # Example
//
//	b, err := redisbudget.Open(ctx, redisbudget.Config{URL: settings.RedisURL, Prefix: settings.RedisPrefix + "budget:"})
//	if err != nil { ... }
//	defer b.Close()
//	p, err := proxy.New(proxy.Config{..., Budgets: b.Budget})
package redisbudget

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/internal/redisconn"
	"github.com/tickgate/tickgate/proxy"
)

const (
	// DefaultPrefix starts every key when Config.Prefix is empty.
	DefaultPrefix = "tickgate:budget:"
	// DefaultOpTimeout bounds each call when Config.OpTimeout is zero.
	DefaultOpTimeout = 250 * time.Millisecond
)

// ErrInvalidConfig is wrapped by every error New and Budget return for a
// configuration they cannot use. Its messages never contain the URL (it
// may hold a password).
var ErrInvalidConfig = errors.New("redisbudget: invalid configuration")

// Config configures a Backend. Exactly one of URL and Client is required.
type Config struct {
	// URL is the Redis server (redis://[[user]:password@]host[:port][/db],
	// rediss:// for TLS). The Backend owns the client it makes.
	URL string
	// Client is an existing client; Close leaves it open. It should have
	// ContextTimeoutEnabled so that OpTimeout can cut a stalled read.
	Client redis.UniversalClient
	// Prefix starts every key (default DefaultPrefix). Replicas of one
	// deployment must use the same; deployments sharing a Redis, distinct
	// ones.
	Prefix string
	// OpTimeout bounds each call (default DefaultOpTimeout).
	OpTimeout time.Duration
}

// Backend makes proxy budgets on one Redis. Its Budget method is a
// proxy.Config.Budgets.
type Backend struct {
	*redisconn.Conn
	prefix  string
	timeout time.Duration
	script  *redis.Script
}

var _ = proxy.Config{Budgets: (*Backend)(nil).Budget}

// New validates cfg and returns a Backend. It does not contact Redis;
// call Ping at start-up.
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
	b := &Backend{prefix: cfg.Prefix, timeout: cfg.OpTimeout, script: redis.NewScript(takeSrc)}
	conn, err := redisconn.New("redisbudget", cfg.URL, cfg.Client, cfg.OpTimeout, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	b.Conn = conn
	return b, nil
}

// Open is New followed by Ping: for start-up, where a Redis that does not
// answer must stop tickgate with one line (the error never holds the URL).
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := b.Ping(ctx); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("upstream budget store (TICKGATE_LIMIT_STORE=redis) not answering: %w", err)
	}
	return b, nil
}

// Budget returns the budget of spec, for proxy.Config.Budgets.
func (b *Backend) Budget(spec config.Budget) (proxy.Budget, error) {
	if len(spec.Rate) == 0 {
		return nil, fmt.Errorf("%w: a budget needs a rate (N/duration)", ErrInvalidConfig)
	}
	args := []any{len(spec.Rate)}
	for i, r := range spec.Rate {
		if r.Tokens == 0 || r.Interval <= 0 {
			return nil, fmt.Errorf("%w: budget rate %s is not positive", ErrInvalidConfig, r)
		}
		size := r.Tokens
		if i == 0 {
			size = spec.BurstSize()
		}
		perUS := float64(r.Tokens) / (float64(r.Interval) / float64(time.Microsecond))
		args = append(args, size, strconv.FormatFloat(perUS, 'g', -1, 64))
	}
	return &budget{b: b, args: args}, nil
}

// hashTagBraces keeps account names from forming a Redis Cluster hash tag.
var hashTagBraces = strings.NewReplacer("{", "(", "}", ")")

type budget struct {
	b    *Backend
	args []any // window count, then size and tokens per µs of each window
}

// Take implements proxy.Budget. key is the account's secret name.
func (bu *budget) Take(ctx context.Context, key string) (proxy.BudgetDecision, error) {
	ctx, cancel := context.WithTimeout(ctx, bu.b.timeout)
	defer cancel()
	v, err := bu.b.script.Run(ctx, bu.b.Client, []string{bu.b.prefix + hashTagBraces.Replace(key)}, bu.args...).Int64Slice()
	if err != nil {
		return proxy.BudgetDecision{}, fmt.Errorf("redisbudget: take: %w", err)
	}
	if len(v) != 5 || v[1] < 0 || v[2] < 0 || v[3] < 0 || v[4] < 0 {
		return proxy.BudgetDecision{}, fmt.Errorf("redisbudget: take: unexpected reply %v", v)
	}
	now := time.Now()
	return proxy.BudgetDecision{
		OK:         v[0] == 1,
		Limit:      uint64(v[1]),
		Remaining:  uint64(v[2]),
		Reset:      now.Add(time.Duration(v[3]) * time.Microsecond),
		RetryAfter: time.Duration(v[4]) * time.Microsecond,
	}, nil
}

// takeSrc refills every window of KEYS[1] up to now (Redis TIME, µs) and
// takes one token from each when all have one. ARGV: the window count n,
// then size and tokens per µs of each window. The hash holds l (last
// update, µs) and t1..tn (tokens, fractional). Returns {1 if taken, size
// and whole tokens left of the window closest to refusing (on refusal:
// the first refusing one), µs until that window is full, µs until every
// window has a token (0 when taken)}.
const takeSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local fields = {'l'}
for i = 1, n do fields[i + 1] = 't' .. i end
local cur = redis.call('HMGET', KEYS[1], unpack(fields))
local last = tonumber(cur[1])
local size, rate, tok = {}, {}, {}
local ok = 1
for i = 1, n do
  size[i] = tonumber(ARGV[2 * i])
  rate[i] = tonumber(ARGV[2 * i + 1])
  local v = tonumber(cur[i + 1])
  if last == nil or v == nil then
    v = size[i]
  elseif now > last then
    v = v + (now - last) * rate[i]
  end
  if v > size[i] then v = size[i] end
  tok[i] = v
  if v < 1 then ok = 0 end
end
local limit, remaining, reset, retry = 0, -1, 0, 0
for i = 1, n do
  if ok == 1 then
    tok[i] = tok[i] - 1
    local rem = math.floor(tok[i])
    if remaining < 0 or rem < remaining then
      limit, remaining, reset = size[i], rem, math.ceil((size[i] - tok[i]) / rate[i])
    end
  elseif tok[i] < 1 then
    if limit == 0 then
      limit, remaining, reset = size[i], 0, math.ceil((size[i] - tok[i]) / rate[i])
    end
    local wait = math.ceil((1 - tok[i]) / rate[i])
    if wait > retry then retry = wait end
  end
end
local args = {'l', string.format('%.0f', now)}
local full = 0
for i = 1, n do
  args[#args + 1] = 't' .. i
  args[#args + 1] = string.format('%.17g', tok[i])
  local f = (size[i] - tok[i]) / rate[i]
  if f > full then full = f end
end
redis.call('HSET', KEYS[1], unpack(args))
redis.call('PEXPIRE', KEYS[1], math.ceil(full / 1000) + 1000)
return {ok, limit, remaining, reset, retry}
`
