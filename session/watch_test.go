package session_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickgate/tickgate/session"
)

func TestManagerTouch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *session.Config) { c.TouchEvery = time.Minute })
	cookie := f.login(t, "alice", alicePass, "")
	k := key(t, cookie)
	ctx := context.Background()
	ended, stop := f.m.Watch(k)
	defer stop()

	f.clock.Add(25 * time.Minute)
	if err := f.m.Touch(ctx, k); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	touches := f.store.touches.Load()
	reads := f.store.gets.Load()
	for range 100 { // control messages within TouchEvery: no store traffic
		if err := f.m.Touch(ctx, k); err != nil {
			t.Fatalf("Touch: %v", err)
		}
	}
	if f.store.touches.Load() != touches || f.store.gets.Load() != reads {
		t.Fatalf("throttled Touch hit the store: %d touches, %d reads",
			f.store.touches.Load()-touches, f.store.gets.Load()-reads)
	}
	f.clock.Add(25 * time.Minute) // 50m after login, 25m after the touch
	w := f.do(http.MethodGet, "/auth/session", cookie, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("WebSocket activity did not keep the session: %d", w.Code)
	}
	if got, want := decodeInfo(t, w).IdleExpiresAt, "2030-06-01T12:55:00Z"; got != want {
		t.Fatalf("idle_expires_at = %s, want %s", got, want)
	}
	if isClosed(ended) {
		t.Fatal("watch fired for a live session")
	}
	f.clock.Add(5 * time.Minute)
	if err := f.m.Touch(ctx, k); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Touch after idle expiry = %v, want ErrNotFound", err)
	}
	waitClosed(t, ended, "Touch found the session expired")
	if err := f.m.Touch(ctx, sessionKeyNeverIssued); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Touch of an unknown key = %v, want ErrNotFound", err)
	}
	f.store.failGet.Store(true)
	if err := f.m.Touch(ctx, sessionKeyNeverIssued); err == nil || errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Touch with a failing store = %v, want a store error", err)
	}
}

const sessionKeyNeverIssued = "0000000000000000000000000000000000000000000000000000000000000000"

func TestWatchFiresOnLogout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *session.Config) { c.CheckInterval = time.Hour })
	cookie := f.login(t, "alice", alicePass, "")
	other := f.login(t, "bob", bobPass, "")
	a1, stop1 := f.m.Watch(key(t, cookie))
	defer stop1()
	a2, stop2 := f.m.Watch(key(t, cookie))
	defer stop2()
	b, stopB := f.m.Watch(key(t, other))
	defer stopB()
	if w := f.do(http.MethodPost, "/auth/logout", cookie, nil, csrf...); w.Code != http.StatusNoContent {
		t.Fatalf("logout: %d", w.Code)
	}
	// Logout fires at once, without waiting for a periodic check.
	if !isClosed(a1) || !isClosed(a2) {
		t.Fatal("logout did not fire the session's watchers")
	}
	if isClosed(b) {
		t.Fatal("logout fired another session's watcher")
	}
	if got := f.m.WatchedKeys(); got != 1 {
		t.Fatalf("%d watched sessions, want 1", got)
	}
}

func TestWatchFiresOnIdleExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	cookie := f.login(t, "alice", alicePass, "")
	other := f.login(t, "bob", bobPass, "")
	ended, stop := f.m.Watch(key(t, cookie))
	defer stop()
	f.clock.Add(20 * time.Minute)
	if w := f.do(http.MethodGet, "/api/x", other, nil); w.Code != http.StatusOK {
		t.Fatal(w.Code)
	}
	otherEnded, stopOther := f.m.Watch(key(t, other))
	defer stopOther()
	f.clock.Add(10 * time.Minute) // alice idle 30m, bob 10m
	waitClosed(t, ended, "idle expiry")
	if isClosed(otherEnded) {
		t.Fatal("watch fired for an active session")
	}
	if _, err := f.store.Store.Get(context.Background(), key(t, cookie)); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("expired record not deleted by the check: %v", err)
	}
	if lines := f.logs.audit(t, "session expired"); len(lines) != 1 || lines[0]["user"] != "alice" {
		t.Fatalf("expiry audit lines: %v", lines)
	}
}

func TestWatchFiresOnAbsoluteExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *session.Config) { c.Max = time.Hour; c.Idle = 2 * time.Hour })
	cookie := f.login(t, "alice", alicePass, "")
	ended, stop := f.m.Watch(key(t, cookie))
	defer stop()
	f.clock.Add(time.Hour)
	waitClosed(t, ended, "absolute expiry")
}

func TestWatchFiresWhenDeletedElsewhere(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	cookie := f.login(t, "alice", alicePass, "")
	ended, stop := f.m.Watch(key(t, cookie))
	defer stop()
	// Another replica's logout: gone from the shared store.
	if err := f.store.Store.Delete(context.Background(), key(t, cookie)); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ended, "deletion by another replica")
}

func TestWatchDuringStoreOutageUsesKnownDeadlines(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	cookie := f.login(t, "alice", alicePass, "")
	ended, stop := f.m.Watch(key(t, cookie))
	defer stop()
	// Touch reads the record (as a check would), then the store breaks.
	if err := f.m.Touch(context.Background(), key(t, cookie)); err != nil {
		t.Fatal(err)
	}
	f.store.failGet.Store(true)
	if isClosed(ended) {
		t.Fatal("watch fired because the store failed")
	}
	f.clock.Add(30 * time.Minute)
	waitClosed(t, ended, "idle expiry during a store outage")
}

func TestWatchStop(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	cookie := f.login(t, "alice", alicePass, "")
	ended, stop := f.m.Watch(key(t, cookie))
	stop()
	stop() // safe twice
	if got := f.m.WatchedKeys(); got != 0 {
		t.Fatalf("%d watched sessions after stop, want 0", got)
	}
	f.do(http.MethodPost, "/auth/logout", cookie, nil, csrf...)
	if isClosed(ended) {
		t.Fatal("a stopped watch fired")
	}
}

func TestWatchAfterClose(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.m.Close()
	ended, stop := f.m.Watch(sessionKeyNeverIssued)
	defer stop()
	if !isClosed(ended) {
		t.Fatal("Watch after Close returned an open channel")
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	cookie := f.login(t, "alice", alicePass, "")
	ended, stop := f.m.Watch(key(t, cookie))
	defer stop()
	if err := f.m.Revoke(context.Background(), key(t, cookie)); err != nil {
		t.Fatal(err)
	}
	if !isClosed(ended) {
		t.Fatal("Revoke did not fire the watch")
	}
	wantError(t, f.do(http.MethodGet, "/auth/session", cookie, nil), http.StatusUnauthorized, "no_session")
}

// multiStore adds GetMany to countingStore, counting batch reads.
type multiStore struct {
	*countingStore
	batches atomic.Int64
}

func (s *multiStore) GetMany(ctx context.Context, keys []string) (map[string]session.Record, error) {
	s.batches.Add(1)
	if s.failGet.Load() {
		return nil, errStoreDown
	}
	return s.Store.(session.MultiGetter).GetMany(ctx, keys)
}

func TestWatchUsesMultiGetter(t *testing.T) {
	t.Parallel()
	var ms *multiStore
	f := newFixture(t, func(c *session.Config) {
		ms = &multiStore{countingStore: c.Store.(*countingStore)}
		c.Store = ms
	})
	a := f.login(t, "alice", alicePass, "")
	b := f.login(t, "bob", bobPass, "")
	endedA, stopA := f.m.Watch(key(t, a))
	defer stopA()
	endedB, stopB := f.m.Watch(key(t, b))
	defer stopB()

	// A failing batch read ends nothing.
	f.store.failGet.Store(true)
	deadline := time.Now().Add(15 * time.Second)
	for n := ms.batches.Load(); ms.batches.Load() < n+2; {
		if time.Now().After(deadline) {
			t.Fatal("no batch reads")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if isClosed(endedA) || isClosed(endedB) {
		t.Fatal("a store failure ended a session")
	}
	f.store.failGet.Store(false)

	gets := f.store.gets.Load()
	if err := f.store.Store.Delete(context.Background(), key(t, a)); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, endedA, "deletion seen by a batch read")
	if isClosed(endedB) {
		t.Fatal("the other session's watch fired")
	}
	if got := f.store.gets.Load(); got != gets {
		t.Fatalf("%d single reads although the store reads in batches", got-gets)
	}
}
