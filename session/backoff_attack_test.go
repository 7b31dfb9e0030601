package session_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/tickgate/tickgate/session"
)

// TestAttackBackoffIPv6Rotation: one IPv6 host usually holds a whole /64
// (the guard limits per /64 for that reason). If the growing delay were
// kept per address, a password sprayer would take a fresh address of its
// /64 for every guess at another user name and never wait; it must be
// kept per /64, as the guard's limits are.
func TestAttackBackoffIPv6Rotation(t *testing.T) {
	t.Parallel()
	ips := &settableIP{}
	f := newFixture(t, func(c *session.Config) { c.ClientIP = ips.get })
	for i := 1; i <= 5; i++ {
		ips.set(fmt.Sprintf("2001:db8:1:2::%x", i))
		w := f.do(http.MethodPost, "/auth/login", "", loginBody(fmt.Sprintf("user%d", i), "wrong"), csrf...)
		want := http.StatusUnauthorized
		if i > session.DefaultLoginBackoffFree+1 {
			want = http.StatusTooManyRequests // the 4th failure made the /64 wait
		}
		if w.Code != want {
			t.Fatalf("guess %d from %s: %d %s, want %d", i, ips.get(nil), w.Code, w.Body, want)
		}
	}
	// Another /64 is not held back by the first one's failures.
	ips.set("2001:db8:1:3::1")
	if w := f.do(http.MethodPost, "/auth/login", "", loginBody("alice", alicePass), csrf...); w.Code != http.StatusOK {
		t.Fatalf("login from another /64: %d %s", w.Code, w.Body)
	}
}
