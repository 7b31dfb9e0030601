package session_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickgate/tickgate/session"
)

// settableIP is a Config.ClientIP whose answer the test changes.
type settableIP struct {
	mu sync.Mutex
	ip string
}

func (s *settableIP) set(ip string) { s.mu.Lock(); s.ip = ip; s.mu.Unlock() }
func (s *settableIP) get(*http.Request) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ip
}

// TestLoginBackoff checks the growing delay after failed logins: free
// attempts, then a doubling wait per IP and per user name (429
// too_many_attempts with Retry-After, before any password work), capped,
// cleared for the user by a success, forgotten after a quiet period, and
// the same for unknown names as for real users.
func TestLoginBackoff(t *testing.T) {
	t.Parallel()
	ips := &settableIP{ip: "198.51.100.1"}
	f := newFixture(t, func(c *session.Config) {
		c.ClientIP = ips.get
		c.LoginBackoffMax = 8 * time.Second
	})
	attempt := func(user, pw string) (int, string) {
		t.Helper()
		w := f.do(http.MethodPost, "/auth/login", "", loginBody(user, pw), csrf...)
		return w.Code, w.Header().Get("Retry-After")
	}
	wantWait := func(user, pw string, secs int) {
		t.Helper()
		code, retry := attempt(user, pw)
		if code != http.StatusTooManyRequests || retry != strconv.Itoa(secs) {
			t.Fatalf("%s from %s: %d Retry-After %q, want 429 with %d", user, ips.get(nil), code, retry, secs)
		}
	}
	wantStatus := func(user, pw string, status int) {
		t.Helper()
		if code, _ := attempt(user, pw); code != status {
			t.Fatalf("%s from %s: %d, want %d", user, ips.get(nil), code, status)
		}
	}

	// Three free failures, then 1s, 2s, 4s, and the 8s cap.
	for range 3 {
		wantStatus("alice", "wrong", http.StatusUnauthorized)
	}
	wantStatus("alice", "wrong", http.StatusUnauthorized) // 4th: the next waits 1s
	wantWait("alice", alicePass, 1)                       // even the right password waits
	f.clock.Add(time.Second)
	wantStatus("alice", "wrong", http.StatusUnauthorized)
	wantWait("alice", "wrong", 2)
	f.clock.Add(2 * time.Second)
	wantStatus("alice", "wrong", http.StatusUnauthorized)
	wantWait("alice", "wrong", 4)
	f.clock.Add(4 * time.Second)
	wantStatus("alice", "wrong", http.StatusUnauthorized)
	wantWait("alice", "wrong", 8)
	f.clock.Add(8 * time.Second)
	wantStatus("alice", "wrong", http.StatusUnauthorized)
	wantWait("alice", "wrong", 8) // capped

	// Per user name: another address is held back for alice, not for bob.
	ips.set("198.51.100.2")
	wantWait("alice", alicePass, 8)
	wantStatus("bob", "wrong", http.StatusUnauthorized)

	// A success clears the user's delay, not the first address's.
	f.clock.Add(8 * time.Second)
	wantStatus("alice", alicePass, http.StatusOK)
	wantStatus("alice", "wrong", http.StatusUnauthorized) // alice starts again: free
	ips.set("198.51.100.1")
	wantStatus("bob", "wrong", http.StatusUnauthorized) // the address's count goes on…
	wantWait("bob", "wrong", 8)                         // …so its next try waits

	// Unknown names are treated alike (and never logged).
	ips.set("198.51.100.3")
	for range 4 {
		wantStatus("mallory", "guess", http.StatusUnauthorized)
		ips.set(ips.get(nil) + "0") // a new address each time: only the name counts
	}
	wantWait("mallory", "guess", 1)
	if strings.Contains(f.logs.String(), "mallory") {
		t.Error("an unknown user name was logged")
	}
	found := false
	for _, l := range f.logs.audit(t, "login failed") {
		if l["reason"] == "backoff" && l["result"] == "limited" {
			found = true
		}
	}
	if !found {
		t.Error("no audit line with reason backoff")
	}

	// Quiet for longer than the cap past the wait: forgotten.
	f.clock.Add(time.Minute)
	ips.set("198.51.100.1")
	for range 3 {
		wantStatus("bob", "wrong", http.StatusUnauthorized)
	}
}

func TestLoginBackoffDisabled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *session.Config) { c.LoginBackoff = -1 })
	for i := range 10 {
		w := f.do(http.MethodPost, "/auth/login", "", loginBody("alice", "wrong"), csrf...)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401 (no backoff)", i, w.Code)
		}
	}
}

// countingLimiter is a LoginLimiter that allows everything and counts
// the attempts it was asked to spend.
type countingLimiter struct {
	mu    sync.Mutex
	spent int
}

func (l *countingLimiter) AllowLogin(context.Context, string, string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.spent++
	return true, 0
}

// TestBackoffRefusalSpendsNoLimiterAttempt: a retry refused by the
// growing delay is answered before the login limiter, so hurrying does
// not use up the window and lock the user out for its whole length.
func TestBackoffRefusalSpendsNoLimiterAttempt(t *testing.T) {
	t.Parallel()
	lim := &countingLimiter{}
	f := newFixture(t, func(c *session.Config) { c.LoginLimiter = lim })
	for range 4 {
		if w := f.do(http.MethodPost, "/auth/login", "", loginBody("alice", "wrong"), csrf...); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure: %d", w.Code)
		}
	}
	for range 5 {
		if w := f.do(http.MethodPost, "/auth/login", "", loginBody("alice", alicePass), csrf...); w.Code != http.StatusTooManyRequests {
			t.Fatalf("retry within the delay: %d", w.Code)
		}
	}
	if lim.spent != 4 {
		t.Fatalf("limiter spent %d attempts, want the 4 real ones", lim.spent)
	}
	f.clock.Add(time.Second)
	if w := f.do(http.MethodPost, "/auth/login", "", loginBody("alice", alicePass), csrf...); w.Code != http.StatusOK {
		t.Fatalf("after the delay: %d", w.Code)
	}
}
