package guard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sethvargo/go-limiter"
	"github.com/sethvargo/go-limiter/memorystore"

	"github.com/tickgate/tickgate/apierr"
	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/metrics"
)

// Result is the outcome of one Take.
type Result struct {
	Allowed   bool
	Limit     uint64    // the window that is closest to refusing
	Remaining uint64    // tokens left in that window
	Reset     time.Time // when that window refills
}

// Limiter enforces a config.Limit: every window must allow a request.
type Limiter struct {
	stores []limiter.Store
	now    func() time.Time
}

// NewLimiter returns an in-memory limiter for l.
func NewLimiter(l config.Limit) (*Limiter, error) {
	if len(l) == 0 {
		return nil, errors.New("guard: empty limit")
	}
	lim := &Limiter{now: time.Now}
	for _, r := range l {
		s, err := memorystore.New(&memorystore.Config{
			Tokens:        r.Tokens,
			Interval:      r.Interval,
			SweepInterval: max(r.Interval, time.Minute),
			SweepMinTTL:   max(2*r.Interval, 5*time.Minute),
		})
		if err != nil {
			lim.Close()
			return nil, fmt.Errorf("guard: limiter %s: %w", r, err)
		}
		lim.stores = append(lim.stores, s)
	}
	return lim, nil
}

// Take spends one token of key in every window.
func (l *Limiter) Take(ctx context.Context, key string) (Result, error) {
	res := Result{Allowed: true, Remaining: math.MaxUint64}
	for _, s := range l.stores {
		tokens, remaining, reset, ok, err := s.Take(ctx, key)
		if err != nil {
			return Result{}, err
		}
		resetAt := time.Unix(0, int64(reset))
		switch {
		case !ok && res.Allowed:
			// The first refusing window decides the headers.
			res = Result{Allowed: false, Limit: tokens, Remaining: 0, Reset: resetAt}
		case !ok:
			if resetAt.After(res.Reset) {
				res.Reset = resetAt
			}
		case res.Allowed && remaining < res.Remaining:
			res.Limit, res.Remaining, res.Reset = tokens, remaining, resetAt
		}
	}
	return res, nil
}

// Close stops the stores' sweepers.
func (l *Limiter) Close() {
	for _, s := range l.stores {
		_ = s.Close(context.Background())
	}
}

// SetHeaders writes X-RateLimit-Limit, -Remaining, -Reset and, when
// refused, Retry-After (whole seconds, at least 1).
func (res Result) SetHeaders(h http.Header, now time.Time) {
	h.Set("X-RateLimit-Limit", strconv.FormatUint(res.Limit, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatUint(res.Remaining, 10))
	reset := res.Reset
	if !reset.After(now) {
		reset = now.Add(time.Second)
	}
	h.Set("X-RateLimit-Reset", strconv.FormatInt(int64(math.Ceil(float64(reset.UnixNano())/1e9)), 10))
	if !res.Allowed {
		h.Set("Retry-After", strconv.Itoa(res.RetryAfter(now)))
	}
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
// A store error fails open for this market-data path and is logged.
func RateLimit(l *Limiter, scope string, key KeyFunc, m *metrics.Metrics, log *slog.Logger) func(http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k := key(r)
			if k == "" {
				next.ServeHTTP(w, r)
				return
			}
			res, err := l.Take(r.Context(), scope+":"+k)
			if err != nil {
				log.Error("rate limit store failed; allowing request", "scope", scope, "err", err)
				next.ServeHTTP(w, r)
				return
			}
			now := l.now()
			res.SetHeaders(w.Header(), now)
			if !res.Allowed {
				if m != nil {
					m.RateLimitRejections.WithLabelValues(scope).Inc()
				}
				log.Warn("rate limited", "audit", true, "scope", scope, "client_ip", ClientIPFrom(r.Context()).String(), "path", r.URL.Path)
				apierr.Write(w, &apierr.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
					Message: "too many requests; retry later", RetryAfter: res.RetryAfter(now)})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// LoginLimiter throttles login attempts per client IP and per username.
type LoginLimiter struct {
	l   *Limiter
	now func() time.Time
}

// NewLoginLimiter applies l to each IP and each username separately.
func NewLoginLimiter(l config.Limit) (*LoginLimiter, error) {
	lim, err := NewLimiter(l)
	if err != nil {
		return nil, err
	}
	return &LoginLimiter{l: lim, now: time.Now}, nil
}

// AllowLogin spends one attempt for ip and one for user. It fails closed
// when the store cannot answer.
func (ll *LoginLimiter) AllowLogin(ctx context.Context, ip, user string) (bool, time.Duration) {
	var retry time.Duration
	ok := true
	// The submitted username may be a password typed into the wrong
	// field, so only its hash becomes a limiter key.
	// IPv6 clients are limited per /64, as for every other limit: one
	// host usually holds a whole /64.
	if a, err := netip.ParseAddr(ip); err == nil {
		ip = LimitKey(a)
	}
	sum := sha256.Sum256([]byte(strings.ToLower(user)))
	for _, key := range []string{"login-ip:" + ip, "login-user:" + hex.EncodeToString(sum[:16])} {
		res, err := ll.l.Take(ctx, key)
		if err != nil {
			return false, time.Second
		}
		if !res.Allowed {
			ok = false
			retry = max(retry, time.Duration(res.RetryAfter(ll.now()))*time.Second)
		}
	}
	return ok, retry
}

// Close releases the limiter.
func (ll *LoginLimiter) Close() { ll.l.Close() }
