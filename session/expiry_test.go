package session_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/session"
)

func TestIdleExpiryBoundary(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	cookie := f.login(t, "alice", alicePass, "")
	f.clock.Add(30*time.Minute - time.Nanosecond)
	if w := f.do(http.MethodGet, "/auth/session", cookie, nil); w.Code != http.StatusOK {
		t.Fatalf("1ns before the idle deadline: %d", w.Code)
	}
	f.clock.Add(time.Nanosecond)
	wantError(t, f.do(http.MethodGet, "/auth/session", cookie, nil), http.StatusUnauthorized, "no_session")
	if _, err := f.store.Store.Get(context.Background(), key(t, cookie)); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("expired record not deleted: %v", err)
	}
	lines := f.logs.audit(t, "session expired")
	if len(lines) != 1 || lines[0]["reason"] != "idle" || lines[0]["user"] != "alice" {
		t.Fatalf("expiry audit lines: %v", lines)
	}
}

func TestActivityExtendsIdleDeadline(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	cookie := f.login(t, "alice", alicePass, "")
	f.clock.Add(20 * time.Minute)
	if w := f.do(http.MethodGet, "/api/quote", cookie, nil); w.Code != http.StatusOK {
		t.Fatalf("api: %d", w.Code)
	}
	f.clock.Add(29 * time.Minute)
	w := f.do(http.MethodGet, "/auth/session", cookie, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("session ended 29m after activity: %d", w.Code)
	}
	if got, want := decodeInfo(t, w).IdleExpiresAt, "2030-06-01T12:50:00Z"; got != want {
		t.Fatalf("idle_expires_at = %s, want %s", got, want)
	}
	f.clock.Add(time.Minute)
	wantError(t, f.do(http.MethodGet, "/api/quote", cookie, nil), http.StatusUnauthorized, "no_session")
}

func TestAbsoluteExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *session.Config) { c.Max = time.Hour })
	cookie := f.login(t, "alice", alicePass, "")
	for range 2 {
		f.clock.Add(20 * time.Minute)
		if w := f.do(http.MethodGet, "/api/quote", cookie, nil); w.Code != http.StatusOK {
			t.Fatalf("api: %d", w.Code)
		}
	}
	f.clock.Add(20*time.Minute - time.Nanosecond)
	w := f.do(http.MethodGet, "/auth/session", cookie, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("1ns before the absolute deadline: %d", w.Code)
	}
	// The idle deadline is capped by the absolute one.
	if got := decodeInfo(t, w); got.IdleExpiresAt != "2030-06-01T13:00:00Z" || got.ExpiresAt != "2030-06-01T13:00:00Z" {
		t.Fatalf("info = %+v, want both deadlines 13:00", got)
	}
	f.clock.Add(time.Nanosecond)
	wantError(t, f.do(http.MethodGet, "/api/quote", cookie, nil), http.StatusUnauthorized, "no_session")
	if lines := f.logs.audit(t, "session expired"); len(lines) != 1 || lines[0]["reason"] != "absolute" {
		t.Fatalf("expiry audit lines: %v", lines)
	}
}

func TestInfoIsNotActivity(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	cookie := f.login(t, "alice", alicePass, "")
	for range 20 {
		f.clock.Add(time.Minute)
		if w := f.do(http.MethodGet, "/auth/session", cookie, nil); w.Code != http.StatusOK {
			t.Fatalf("info: %d", w.Code)
		}
	}
	if n := f.store.touches.Load(); n != 0 {
		t.Fatalf("%d store touches from polling the session info, want 0", n)
	}
	f.clock.Add(10 * time.Minute)
	wantError(t, f.do(http.MethodGet, "/auth/session", cookie, nil), http.StatusUnauthorized, "no_session")
}

func TestTouchThrottled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *session.Config) { c.TouchEvery = time.Minute })
	cookie := f.login(t, "alice", alicePass, "")
	hit := func() {
		t.Helper()
		if w := f.do(http.MethodGet, "/api/quote", cookie, nil); w.Code != http.StatusOK {
			t.Fatalf("api: %d", w.Code)
		}
	}
	steps := []struct {
		advance  time.Duration
		requests int
		touches  int64
	}{
		{0, 50, 0},
		{59 * time.Second, 10, 0},
		{time.Second, 50, 1},
		{30 * time.Second, 50, 1},
		{30 * time.Second, 1, 2},
	}
	for i, s := range steps {
		f.clock.Add(s.advance)
		for range s.requests {
			hit()
		}
		if got := f.store.touches.Load(); got != s.touches {
			t.Fatalf("step %d: %d store touches, want %d", i, got, s.touches)
		}
	}
}

func TestDefaultTouchEvery(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil) // Idle 30m → TouchEvery 30s
	cookie := f.login(t, "alice", alicePass, "")
	f.clock.Add(29 * time.Second)
	f.do(http.MethodGet, "/api/quote", cookie, nil)
	if got := f.store.touches.Load(); got != 0 {
		t.Fatalf("touched after 29s: %d", got)
	}
	f.clock.Add(time.Second)
	f.do(http.MethodGet, "/api/quote", cookie, nil)
	if got := f.store.touches.Load(); got != 1 {
		t.Fatalf("not touched after 30s: %d", got)
	}
}

func TestTouchFailureKeepsRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	cookie := f.login(t, "alice", alicePass, "")
	f.store.failTouch.Store(true)
	f.clock.Add(10 * time.Minute)
	if w := f.do(http.MethodGet, "/api/quote", cookie, nil); w.Code != http.StatusOK {
		t.Fatalf("a failed activity write refused the request: %d", w.Code)
	}
	if !strings.Contains(f.logs.String(), "record activity") {
		t.Error("failed activity write not logged")
	}
}

func TestConcurrentRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *session.Config) { c.TouchEvery = time.Second })
	cookie := f.login(t, "alice", alicePass, "")
	k := key(t, cookie)
	done := make(chan struct{})
	errs := make(chan string, 64)
	go func() {
		defer close(done)
		for range 200 {
			f.clock.Add(100 * time.Millisecond)
		}
	}()
	var stops []func()
	for range 8 {
		_, stop := f.m.Watch(k)
		stops = append(stops, stop)
	}
	finished := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { finished <- struct{}{} }()
			for range 50 {
				var w interface{ Result() *http.Response }
				if g%2 == 0 {
					w = f.do(http.MethodGet, "/api/quote", cookie, nil)
				} else {
					if err := f.m.Touch(context.Background(), k); err != nil {
						errs <- err.Error()
					}
					continue
				}
				if code := w.Result().StatusCode; code != http.StatusOK {
					errs <- http.StatusText(code)
				}
			}
		}()
	}
	for range 4 {
		<-finished
	}
	<-done
	for _, s := range stops {
		s()
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestCustomPassive(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *session.Config) {
		c.Passive = func(r *http.Request) bool { return r.URL.Path == "/api/poll" }
	})
	cookie := f.login(t, "alice", alicePass, "")
	f.clock.Add(10 * time.Minute)
	f.do(http.MethodGet, "/api/poll", cookie, nil)
	if n := f.store.touches.Load(); n != 0 {
		t.Fatalf("passive request touched the session %d times", n)
	}
	f.do(http.MethodGet, "/auth/session", cookie, nil) // no longer passive
	if n := f.store.touches.Load(); n != 1 {
		t.Fatalf("%d touches, want 1", n)
	}
}
