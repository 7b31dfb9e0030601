package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-limiter"
	"github.com/sethvargo/go-limiter/memorystore"

	"github.com/tickgate/tickgate/apierr"
	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/metrics"
)

// StoreFactory makes the go-limiter store of one window of a limiter.
// name identifies the limiter ("ip", "session", "login", "route:/api/*");
// a shared store such as Redis puts it and the rate into its keys, so two
// limiters, or the two windows of one, never share a bucket, while the
// same limiter on every replica does.
type StoreFactory func(name string, r config.Rate) (limiter.Store, error)

// MemoryStore is the default StoreFactory: go-limiter's in-process
// memorystore. Its buckets belong to one replica. Rates with more tokens
// than memorystore can refill in a window (see memorystoreRefills: above
// about 31,622 per second) get an in-memory window store with the same
// semantics instead.
func MemoryStore(_ string, r config.Rate) (limiter.Store, error) {
	if !memorystoreRefills(r) {
		return newWindowStore(r, nil), nil
	}
	return memorystore.New(&memorystore.Config{
		Tokens:        r.Tokens,
		Interval:      r.Interval,
		SweepInterval: max(r.Interval, time.Minute),
		SweepMinTTL:   max(2*r.Interval, 5*time.Minute),
	})
}

// FailurePolicy is what a Limiter does while its store cannot answer.
type FailurePolicy uint8

const (
	// PolicyDefault is FailOpen for request limits and FailClosed for
	// the login limiter.
	PolicyDefault FailurePolicy = iota
	// FailOpen keeps traffic flowing: the limit is enforced on this
	// replica alone, in memory, until the store answers again (a flood
	// that slows the store down must not switch the limit off).
	FailOpen
	// FailClosed refuses requests (no password guessing while logins
	// cannot be counted).
	FailClosed
)

func (p FailurePolicy) String() string {
	switch p {
	case FailOpen:
		return "open"
	case FailClosed:
		return "closed"
	}
	return "default"
}

// ParseFailurePolicy reads the YAML spelling: "open", "closed", or ""
// for PolicyDefault.
func ParseFailurePolicy(s string) (FailurePolicy, error) {
	switch s {
	case "":
		return PolicyDefault, nil
	case "open":
		return FailOpen, nil
	case "closed":
		return FailClosed, nil
	}
	return PolicyDefault, fmt.Errorf("%w: failure policy %q is not open or closed", ErrInvalidConfig, s)
}

// CounterVec is the part of a *prometheus.CounterVec that guard uses.
type CounterVec interface {
	WithLabelValues(lvs ...string) prometheus.Counter
}

// counterOrNil turns a typed nil *prometheus.CounterVec into a nil
// interface, so a caller passing an unset field counts nothing rather
// than panicking.
func counterOrNil(c CounterVec) CounterVec {
	if v, ok := c.(*prometheus.CounterVec); ok && v == nil {
		return nil
	}
	return c
}

// DefaultRetryStoreAfter is how long a Limiter whose store failed applies
// its FailurePolicy without asking the store again, so that an outage
// costs one timeout per interval rather than one per request.
const DefaultRetryStoreAfter = time.Second

// LimiterOptions configure NewLimiterWith. Every zero value is a safe
// default.
type LimiterOptions struct {
	// Name identifies the limiter in store keys, logs and metric labels
	// ("ip", "session", "route:/api/*"); default "limit". Limiters with
	// the same Name and rate on a shared store share buckets: that is how
	// replicas agree, so give distinct limiters distinct names.
	Name string
	// Stores makes one store per window; nil means MemoryStore.
	Stores StoreFactory
	// OnStoreError is the policy while a store cannot answer;
	// PolicyDefault means FailOpen here (FailClosed for the login
	// limiter).
	OnStoreError FailurePolicy
	// RetryStoreAfter is how long the policy applies after a store error
	// before the store is asked again (default DefaultRetryStoreAfter).
	RetryStoreAfter time.Duration
	// Logger receives the store's outage and recovery (default:
	// discarded).
	Logger *slog.Logger
	// StoreErrors counts requests decided by the policy because the
	// store failed; labels: limiter (Name), policy (open or closed).
	// Nil counts nothing.
	StoreErrors CounterVec
}

// Result is the outcome of one Take.
type Result struct {
	Allowed   bool
	Limit     uint64    // the window that is closest to refusing
	Remaining uint64    // tokens left in that window
	Reset     time.Time // when that window refills
	// Degraded is set when the store failed and a fail-open policy
	// decided on this replica's in-memory fallback instead; Allowed says
	// what the fallback decided (the other fields are zero when it
	// allowed).
	Degraded bool
}

// Limiter enforces a config.Limit: every window must allow a request.
type Limiter struct {
	name       string
	stores     []limiter.Store
	now        func() time.Time
	policy     FailurePolicy // FailOpen or FailClosed
	retryAfter time.Duration
	log        *slog.Logger
	storeErrs  CounterVec

	downUntil atomic.Int64 // UnixNano before which the store is not asked; 0 when healthy
	failing   atomic.Bool  // an outage has been logged and not its end
	closeOnce sync.Once

	rates    config.Limit // for the fallback
	fbMu     sync.Mutex   // guards fallback and closed
	fallback []limiter.Store
	closed   bool
}

// NewLimiter returns an in-memory, fail-open limiter for l.
func NewLimiter(l config.Limit) (*Limiter, error) { return NewLimiterWith(l, LimiterOptions{}) }

// NewLimiterWith returns a limiter for l on the stores opts names.
func NewLimiterWith(l config.Limit, opts LimiterOptions) (*Limiter, error) {
	if len(l) == 0 {
		return nil, fmt.Errorf("%w: empty limit", ErrInvalidConfig)
	}
	if opts.Name == "" {
		opts.Name = "limit"
	}
	if opts.Stores == nil {
		opts.Stores = MemoryStore
	}
	switch opts.OnStoreError {
	case PolicyDefault:
		opts.OnStoreError = FailOpen
	case FailOpen, FailClosed:
	default:
		return nil, fmt.Errorf("%w: unknown failure policy %d", ErrInvalidConfig, opts.OnStoreError)
	}
	if opts.RetryStoreAfter < 0 {
		return nil, fmt.Errorf("%w: RetryStoreAfter must not be negative", ErrInvalidConfig)
	}
	if opts.RetryStoreAfter == 0 {
		opts.RetryStoreAfter = DefaultRetryStoreAfter
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	lim := &Limiter{
		name:       opts.Name,
		now:        time.Now,
		policy:     opts.OnStoreError,
		retryAfter: opts.RetryStoreAfter,
		log:        opts.Logger,
		storeErrs:  counterOrNil(opts.StoreErrors),
		rates:      append(config.Limit(nil), l...),
	}
	for _, r := range l {
		if r.Tokens == 0 || r.Interval <= 0 {
			lim.Close()
			return nil, fmt.Errorf("%w: limiter %s: window %s must have tokens and a positive interval", ErrInvalidConfig, opts.Name, r)
		}
		s, err := opts.Stores(opts.Name, r)
		if err != nil {
			lim.Close()
			return nil, fmt.Errorf("guard: limiter %s %s: %w", opts.Name, r, err)
		}
		lim.stores = append(lim.stores, s)
	}
	return lim, nil
}

// Name is the limiter's name.
func (l *Limiter) Name() string { return l.name }

// Policy is the limiter's FailOpen or FailClosed policy.
func (l *Limiter) Policy() FailurePolicy { return l.policy }

// Take spends one token of key in each window, in order, until one
// refuses; the request is allowed when none does. While the store cannot
// answer, a fail-open limiter decides on its in-memory fallback (a
// Degraded Result) and a fail-closed one returns an error wrapping
// ErrStoreUnavailable. An error that is
// not ErrStoreUnavailable means ctx ended first.
func (l *Limiter) Take(ctx context.Context, key string) (Result, error) {
	return l.take(ctx, key, nil)
}

// take is Take; charged, when not nil, is told the index and reset time
// of every window that spent a token.
func (l *Limiter) take(ctx context.Context, key string, charged func(window int, reset time.Time)) (Result, error) {
	if until := l.downUntil.Load(); until != 0 && l.now().UnixNano() < until {
		return l.degraded(ctx, key, nil)
	}
	res := Result{Allowed: true, Remaining: math.MaxUint64}
	for i, s := range l.stores {
		tokens, remaining, reset, ok, err := s.Take(ctx, key)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				// The caller gave up (the client went away); the
				// store is not at fault.
				return Result{}, fmt.Errorf("guard: %s limiter: %w", l.name, cerr)
			}
			l.trip(err)
			return l.degraded(ctx, key, err)
		}
		resetAt := time.Unix(0, int64(reset))
		if !ok {
			// The first refusing window decides, and the later ones
			// are not charged: a refused request must not use up the
			// sustained budget of requests actually served.
			res = Result{Allowed: false, Limit: tokens, Remaining: 0, Reset: resetAt}
			break
		}
		if charged != nil {
			charged(i, resetAt)
		}
		if remaining < res.Remaining {
			res.Limit, res.Remaining, res.Reset = tokens, remaining, resetAt
		}
	}
	if l.failing.Load() {
		l.recovered()
	}
	return res, nil
}

// refund gives back one token of key in window i, unless that window has
// ended since the token was taken (the bucket refilled then, and a refund
// would lift it over its limit).
func (l *Limiter) refund(ctx context.Context, key string, i int, reset time.Time) error {
	if i < 0 || i >= len(l.stores) || !l.now().Before(reset) {
		return nil
	}
	if until := l.downUntil.Load(); until != 0 && l.now().UnixNano() < until {
		return fmt.Errorf("guard: %s limiter: refund: %w", l.name, ErrStoreUnavailable)
	}
	if err := l.stores[i].Burst(ctx, key, 1); err != nil {
		return fmt.Errorf("guard: %s limiter: refund: %w", l.name, err)
	}
	return nil
}

// trip records a store failure: the policy applies without asking the
// store until RetryStoreAfter has passed. The start of an outage is
// logged once, not per request.
func (l *Limiter) trip(err error) {
	l.downUntil.Store(l.now().Add(l.retryAfter).UnixNano())
	if l.failing.CompareAndSwap(false, true) {
		l.log.Error("rate-limit store unavailable", "limiter", l.name, "policy", l.policy.String(), "err", err)
	}
}

func (l *Limiter) recovered() {
	if l.failing.CompareAndSwap(true, false) {
		l.downUntil.Store(0)
		l.log.Info("rate-limit store answering again", "limiter", l.name)
	}
}

func (l *Limiter) degraded(ctx context.Context, key string, cause error) (Result, error) {
	if l.storeErrs != nil {
		l.storeErrs.WithLabelValues(l.name, l.policy.String()).Inc()
	}
	if l.policy == FailOpen {
		return l.takeFallback(ctx, key), nil
	}
	if cause == nil {
		return Result{}, fmt.Errorf("guard: %s limiter: %w", l.name, ErrStoreUnavailable)
	}
	return Result{}, fmt.Errorf("guard: %s limiter: %w: %w", l.name, ErrStoreUnavailable, cause)
}

// takeFallback decides for a fail-open limiter whose store cannot
// answer: the same windows, in memory on this replica (made at the first
// outage). A client then gets the limit once per replica rather than once
// in all, which lets traffic flow without switching the limit off.
func (l *Limiter) takeFallback(ctx context.Context, key string) Result {
	l.fbMu.Lock()
	if l.fallback == nil && !l.closed {
		for _, r := range l.rates {
			s, err := MemoryStore(l.name, r)
			if err != nil {
				// Cannot happen for a valid rate; allow, as before.
				break
			}
			l.fallback = append(l.fallback, s)
		}
	}
	stores := l.fallback
	l.fbMu.Unlock()
	if len(stores) != len(l.rates) {
		return Result{Allowed: true, Degraded: true}
	}
	for _, s := range stores {
		tokens, _, reset, ok, err := s.Take(ctx, key)
		if err != nil {
			// Closed meanwhile.
			return Result{Allowed: true, Degraded: true}
		}
		if !ok {
			return Result{Degraded: true, Limit: tokens, Reset: time.Unix(0, int64(reset))}
		}
	}
	// An allowed fallback decision carries no figures (and so no
	// X-RateLimit-* headers): they would be this replica's, not the
	// shared limit's.
	return Result{Allowed: true, Degraded: true}
}

// Close closes the limiter's stores (stopping a memorystore's sweeper)
// and its in-memory fallback. Safe twice.
func (l *Limiter) Close() {
	l.closeOnce.Do(func() {
		for _, s := range l.stores {
			_ = s.Close(context.Background())
		}
		l.fbMu.Lock()
		l.closed = true
		fb := l.fallback
		l.fallback = nil
		l.fbMu.Unlock()
		for _, s := range fb {
			_ = s.Close(context.Background())
		}
	})
}

// SetHeaders writes X-RateLimit-Limit, -Remaining, -Reset (Unix seconds,
// always after now) and, when refused, Retry-After (whole seconds, at
// least 1).
func (res Result) SetHeaders(h http.Header, now time.Time) {
	h.Set("X-RateLimit-Limit", strconv.FormatUint(res.Limit, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatUint(res.Remaining, 10))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(res.ResetUnix(now), 10))
	if !res.Allowed {
		h.Set("Retry-After", strconv.Itoa(res.RetryAfter(now)))
	}
}

// ResetUnix is Reset in Unix seconds rounded up, at least now's second
// plus one: a client that waits until then finds the window refilled.
func (res Result) ResetUnix(now time.Time) int64 {
	reset := int64(math.Ceil(float64(res.Reset.UnixNano()) / 1e9))
	return max(reset, now.Unix()+1)
}

// RetryAfter returns the whole seconds until the refusing window refills,
// at least 1.
func (res Result) RetryAfter(now time.Time) int {
	s := int(math.Ceil(res.Reset.Sub(now).Seconds()))
	return max(s, 1)
}

// KeyFunc names the bucket of a request; "" skips limiting.
type KeyFunc func(r *http.Request) string

// RateLimit is middleware that takes one token per request from l under
// key(r); scope names the limit in metrics and logs ("ip", "session").
// See Enforce for the answers.
func RateLimit(l *Limiter, scope string, key KeyFunc, m *metrics.Metrics, log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if k := key(r); k == "" || Enforce(w, r, l, scope, k, m, log) {
				next.ServeHTTP(w, r)
			}
		})
	}
}

// Enforce takes one token from l for the bucket scope+":"+key and reports
// whether the request may proceed; when it may not, Enforce has answered
// it: 429 rate_limited with Retry-After, or, while the store cannot
// answer, 503 rate_limit_unavailable from a fail-closed limiter (a
// fail-open one decides on its per-replica fallback: allowed requests
// pass without headers, refused ones get the 429). Allowed and
// refused requests get X-RateLimit-Limit, -Remaining and -Reset; when
// several limits apply to a request, the headers describe the one closest
// to refusing. Refusals are logged (audit) and counted under scope; m and
// log may be nil. A client that went away gets no answer.
func Enforce(w http.ResponseWriter, r *http.Request, l *Limiter, scope, key string, m *metrics.Metrics, log *slog.Logger) bool {
	res, err := l.Take(r.Context(), scope+":"+key)
	switch {
	case errors.Is(err, ErrStoreUnavailable):
		if log != nil {
			log.Debug("rate limit cannot be checked; refusing request", "scope", scope, "client_ip", ClientIPFrom(r.Context()).String(), "path", logText(r.URL.Path, maxLoggedPath))
		}
		apierr.Write(w, &apierr.Error{Status: http.StatusServiceUnavailable, Code: "rate_limit_unavailable",
			Message: "request limits cannot be checked right now; retry later", RetryAfter: 1, Err: err})
		return false
	case err != nil:
		return false // the client went away
	case res.Degraded && res.Allowed:
		return true
	}
	now := l.now()
	if !res.Allowed || Tighter(w.Header(), res.Remaining) {
		res.SetHeaders(w.Header(), now)
	}
	if res.Allowed {
		return true
	}
	if m != nil {
		m.RateLimitRejections.WithLabelValues(scope).Inc()
	}
	if log != nil {
		log.Warn("rate limited", "audit", true, "scope", scope, "client_ip", ClientIPFrom(r.Context()).String(), "path", logText(r.URL.Path, maxLoggedPath))
	}
	apierr.Write(w, &apierr.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Message: "too many requests; retry later", RetryAfter: res.RetryAfter(now)})
	return false
}

// Tighter reports whether a limit with remaining requests left is closer
// to refusing than the one whose X-RateLimit-* headers h already holds
// (or h holds none), so that the headers describe the tightest limit.
func Tighter(h http.Header, remaining uint64) bool {
	prev := h.Get("X-RateLimit-Remaining")
	if prev == "" {
		return true
	}
	p, err := strconv.ParseUint(prev, 10, 64)
	return err != nil || remaining <= p
}
