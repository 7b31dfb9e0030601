package session

import (
	"crypto/sha256"
	"net/netip"
	"sync"
	"time"
)

// Defaults of the growing login delay (Config.LoginBackoff*).
const (
	DefaultLoginBackoffFree = 3
	DefaultLoginBackoff     = time.Second
	DefaultLoginBackoffMax  = 5 * time.Minute
)

// maxBackoffEntries bounds each of the two failure tables, so that
// failures from a great many addresses or names cannot exhaust memory.
// A new key past it is not tracked (the LoginLimiter still counts it).
const maxBackoffEntries = 100_000

// backoff is the growing delay between failed logins, per client IP and
// per submitted user name, on top of the LoginLimiter's fixed window:
// after Free failures in a row each further failure doubles the time the
// next attempt must wait (Base, 2×Base, 4×Base…, at most Max). The wait
// ends at once for the user on a successful login; a key is forgotten
// once it has been quiet for Max past its wait. The window limit caps
// attempts per minute; the delay makes a long guessing campaign slow
// without locking anyone out for long (the cap bounds how long an
// attacker can keep a victim's name waiting).
//
// It lives in this process: with replicas it applies per replica, while
// the LoginLimiter (Redis store) holds across them.
type backoff struct {
	free      int
	base, max time.Duration

	mu    sync.Mutex
	ips   map[string]*failures
	users map[[sha256.Size]byte]*failures // hashed: a "name" may be a password typed in the wrong field
}

type failures struct {
	count int
	until time.Time // no attempt before this
}

func newBackoff(free int, base, maxDelay time.Duration) *backoff {
	return &backoff{
		free: free, base: base, max: maxDelay,
		ips:   map[string]*failures{},
		users: map[[sha256.Size]byte]*failures{},
	}
}

// ipKey is the failure-table key of a client address: an IPv6 address
// counts for its whole /64, which one host usually holds (as in the
// guard's limits), so that rotating addresses within it does not escape
// the delay; IPv4 and IPv4-mapped addresses count alone.
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

func userKey(user string) [sha256.Size]byte {
	return sha256.Sum256([]byte("tickgate login backoff\x00" + user))
}

// wait returns how long ip or user must still wait before an attempt,
// or 0.
func (b *backoff) wait(ip, user string, now time.Time) time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var d time.Duration
	if f := b.ips[ipKey(ip)]; f != nil {
		d = max(d, f.until.Sub(now))
	}
	if f := b.users[userKey(user)]; f != nil {
		d = max(d, f.until.Sub(now))
	}
	return max(d, 0)
}

// fail records a failed attempt.
func (b *backoff) fail(ip, user string, now time.Time) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bumpFailure(b, b.ips, ipKey(ip), now)
	bumpFailure(b, b.users, userKey(user), now)
}

// succeed clears the user's failures; the IP's stay (one valid account
// must not reset an address's delay between guesses at others).
func (b *backoff) succeed(user string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.users, userKey(user))
}

// bumpFailure counts a failure under key, sweeping forgotten keys when the table
// is full.
func bumpFailure[K comparable](b *backoff, m map[K]*failures, key K, now time.Time) {
	f := m[key]
	if f != nil && now.Sub(f.until) > b.max {
		f = nil // quiet long enough: start again
	}
	if f == nil {
		if len(m) >= maxBackoffEntries {
			for k, v := range m {
				if now.Sub(v.until) > b.max {
					delete(m, k)
				}
			}
			if len(m) >= maxBackoffEntries {
				return
			}
		}
		f = &failures{}
		m[key] = f
	}
	f.count++
	if f.count <= b.free {
		f.until = now
		return
	}
	d := b.max
	if shift := f.count - b.free - 1; shift < 30 {
		d = min(b.base<<shift, b.max)
	}
	f.until = now.Add(d)
}
