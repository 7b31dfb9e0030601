package guard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/tickgate/tickgate/config"
)

// LoginLimiter throttles login attempts per client IP (IPv6 per /64) and
// per username, so that neither one address guessing many passwords nor
// many addresses guessing one user's password get far.
type LoginLimiter struct {
	l   *Limiter
	now func() time.Time
}

// NewLoginLimiter applies l in memory to each IP and each username
// separately.
func NewLoginLimiter(l config.Limit) (*LoginLimiter, error) {
	return NewLoginLimiterWith(l, LimiterOptions{})
}

// NewLoginLimiterWith is NewLoginLimiter on the stores opts names (Redis,
// for limits that hold across replicas). Its Name defaults to "login" and
// its OnStoreError to FailClosed.
func NewLoginLimiterWith(l config.Limit, opts LimiterOptions) (*LoginLimiter, error) {
	if opts.Name == "" {
		opts.Name = "login"
	}
	if opts.OnStoreError == PolicyDefault {
		opts.OnStoreError = FailClosed
	}
	lim, err := NewLimiterWith(l, opts)
	if err != nil {
		return nil, err
	}
	return &LoginLimiter{l: lim, now: time.Now}, nil
}

// AllowLogin spends one attempt for ip and one for user. While the store
// cannot answer it refuses with a one-second retry, unless the limiter was
// made fail-open.
func (ll *LoginLimiter) AllowLogin(ctx context.Context, ip, user string) (bool, time.Duration) {
	var retry time.Duration
	ok := true
	// IPv6 clients are limited per /64, as for every other limit: one
	// host usually holds a whole /64.
	if a, err := netip.ParseAddr(ip); err == nil {
		ip = LimitKey(a)
	}
	// The submitted username may be a password typed into the wrong
	// field, so only its hash becomes a limiter key.
	sum := sha256.Sum256([]byte(strings.ToLower(user)))
	att := loginAttemptFrom(ctx)
	for _, key := range []string{"login-ip:" + ip, "login-user:" + hex.EncodeToString(sum[:16])} {
		var charged func(int, time.Time)
		if att != nil {
			charged = func(i int, reset time.Time) { att.charge(key, i, reset) }
		}
		res, err := ll.l.take(ctx, key, charged)
		if err != nil {
			if att != nil {
				att.unavailable()
			}
			return false, time.Second
		}
		if att != nil {
			att.note(res, ll.now())
		}
		if !res.Allowed {
			ok = false
			retry = max(retry, time.Duration(res.RetryAfter(ll.now()))*time.Second)
		}
	}
	return ok, retry
}

// Refund gives back the attempts AllowLogin spent for att's request: a
// successful login is not an attempt to guess a password, and a user who
// signs in and out all day must not lock themselves out. Windows that
// ended since AllowLogin are skipped (their buckets refilled). Errors are
// the store's; the caller logs them.
func (ll *LoginLimiter) Refund(ctx context.Context, att *LoginAttempt) error {
	if att == nil {
		return nil
	}
	att.mu.Lock()
	charges := att.charges
	att.charges = nil
	att.mu.Unlock()
	var errs []error
	for _, c := range charges {
		if err := ll.l.refund(ctx, c.key, c.window, c.reset); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// LoginAttempt records what AllowLogin decided for one login request, so
// the caller can refund a successful login (Refund) and describe the
// login limit in the X-RateLimit-* headers of the answer (Result). Make
// one per request with WithLoginAttempt.
type LoginAttempt struct {
	mu          sync.Mutex
	charges     []loginCharge
	res         Result
	decided     bool
	unreachable bool
}

type loginCharge struct {
	key    string
	window int
	reset  time.Time
}

type loginAttemptKey struct{}

// WithLoginAttempt returns ctx carrying a new LoginAttempt, which
// AllowLogin fills in when it is called with that context.
func WithLoginAttempt(ctx context.Context) (context.Context, *LoginAttempt) {
	att := &LoginAttempt{}
	return context.WithValue(ctx, loginAttemptKey{}, att), att
}

func loginAttemptFrom(ctx context.Context) *LoginAttempt {
	att, _ := ctx.Value(loginAttemptKey{}).(*LoginAttempt)
	return att
}

func (a *LoginAttempt) charge(key string, window int, reset time.Time) {
	a.mu.Lock()
	a.charges = append(a.charges, loginCharge{key: key, window: window, reset: reset})
	a.mu.Unlock()
}

// note keeps the result that best describes the login limit: a refusal
// over an allowance, the later retry among refusals, and the fewest
// remaining attempts among allowances. Degraded results (a fail-open
// limiter without its store) say nothing and are skipped.
func (a *LoginAttempt) note(res Result, now time.Time) {
	if res.Degraded {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case !a.decided:
	case !res.Allowed && a.res.Allowed:
	case !res.Allowed && !a.res.Allowed && res.RetryAfter(now) > a.res.RetryAfter(now):
	case res.Allowed && a.res.Allowed && res.Remaining < a.res.Remaining:
	default:
		return
	}
	a.res, a.decided = res, true
}

func (a *LoginAttempt) unavailable() {
	a.mu.Lock()
	a.unreachable = true
	a.mu.Unlock()
}

// Result returns the login limit's state for the X-RateLimit-* headers
// (see Result.SetHeaders); ok is false when AllowLogin was not called or
// its store could not answer.
func (a *LoginAttempt) Result() (res Result, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.res, a.decided && !a.unreachable
}

// Close releases the limiter. Safe twice.
func (ll *LoginLimiter) Close() { ll.l.Close() }
