package guard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
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

// Close releases the limiter. Safe twice.
func (ll *LoginLimiter) Close() { ll.l.Close() }
