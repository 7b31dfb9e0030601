package session_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickgate/tickgate/session"
)

// bus is an in-memory session.Events shared by several Managers, like
// Redis pub/sub: every endpoint's subscribers get every published key,
// their own included, on a goroutine of the subscription.
type bus struct {
	mu        sync.Mutex
	subs      map[*busSub]struct{}
	published []string
	// failPublish makes every Publish fail.
	failPublish atomic.Bool
}

type busSub struct {
	ep   *busEndpoint
	ch   chan string
	done chan struct{}
	once sync.Once
}

// busEndpoint is one replica's connection to the bus.
type busEndpoint struct {
	b *bus
	// cut drops the events meant for this endpoint, as while its
	// connection to Redis is down.
	cut     atomic.Bool
	dropped atomic.Int64
}

func newBus() *bus { return &bus{subs: map[*busSub]struct{}{}} }

func (b *bus) endpoint() *busEndpoint { return &busEndpoint{b: b} }

func (b *bus) keys() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.published)
}

// send delivers key to every subscription.
func (b *bus) send(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published = append(b.published, key)
	for sub := range b.subs {
		if sub.ep.cut.Load() {
			sub.ep.dropped.Add(1)
			continue
		}
		sub.ch <- key // buffered generously; tests publish little
	}
}

func (e *busEndpoint) Publish(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.b.failPublish.Load() {
		return errStoreDown
	}
	e.b.send(key)
	return nil
}

func (e *busEndpoint) Subscribe(ctx context.Context, fn func(key string)) (stop func()) {
	sub := &busSub{ep: e, ch: make(chan string, 1000), done: make(chan struct{})}
	e.b.mu.Lock()
	e.b.subs[sub] = struct{}{}
	e.b.mu.Unlock()
	go func() {
		defer close(sub.done)
		for {
			select {
			case k := <-sub.ch:
				fn(k)
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		sub.once.Do(func() {
			e.b.mu.Lock()
			delete(e.b.subs, sub)
			e.b.mu.Unlock()
		})
		<-sub.done // ctx is the Manager's, cancelled by Close first
	}
}

// subscriptions counts the live subscriptions of e.
func (e *busEndpoint) subscriptions() int {
	e.b.mu.Lock()
	defer e.b.mu.Unlock()
	n := 0
	for sub := range e.b.subs {
		if sub.ep == e {
			n++
		}
	}
	return n
}

// replica is one Manager of a group sharing a store, a clock and a bus.
type replica struct {
	*fixture
	ep *busEndpoint
}

// newReplicas returns n Managers sharing one store, clock and bus; edit
// adjusts each one's config (i is its index).
func newReplicas(t *testing.T, n int, edit func(i int, c *session.Config)) ([]replica, *bus) {
	t.Helper()
	b := newBus()
	var first *fixture
	out := make([]replica, n)
	for i := range n {
		ep := b.endpoint()
		f := newFixture(t, func(c *session.Config) {
			if first != nil {
				c.Store = first.store
				c.Now = first.clock.Now
			}
			c.Events = ep
			if edit != nil {
				edit(i, c)
			}
		})
		if first == nil {
			first = f
		} else {
			f.store, f.clock = first.store, first.clock
		}
		out[i] = replica{fixture: f, ep: ep}
	}
	return out, b
}

// TestEventsEndWatchesOnEveryReplica: whichever way a session ends on
// replica B, B announces it and replica A closes its watches at once. A
// checks its watches only hourly here, so only the event can fire them.
func TestEventsEndWatchesOnEveryReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		// bCheck is B's CheckInterval (default an hour).
		bCheck time.Duration
		end    func(t *testing.T, b replica, cookie string)
	}{
		{"logout", 0, func(t *testing.T, b replica, cookie string) {
			if w := b.do(http.MethodPost, "/auth/logout", cookie, nil, csrf...); w.Code != http.StatusNoContent {
				t.Fatalf("logout on B: %d", w.Code)
			}
		}},
		{"revoke", 0, func(t *testing.T, b replica, cookie string) {
			if err := b.m.Revoke(ctx, key(t, cookie)); err != nil {
				t.Fatal(err)
			}
		}},
		{"revoke user", 0, func(t *testing.T, b replica, cookie string) {
			if n, err := b.m.RevokeUser(ctx, "alice"); err != nil || n != 1 {
				t.Fatalf("RevokeUser = %d, %v; want 1", n, err)
			}
		}},
		{"login over it (fixation)", 0, func(t *testing.T, b replica, cookie string) {
			b.login(t, "bob", bobPass, cookie)
		}},
		{"idle expiry seen by a request", 0, func(t *testing.T, b replica, cookie string) {
			b.clock.Add(30 * time.Minute)
			wantError(t, b.do(http.MethodGet, "/api/quote", cookie, nil), http.StatusUnauthorized, "no_session")
		}},
		{"absolute expiry seen by Touch", 0, func(t *testing.T, b replica, cookie string) {
			for range 28 { // active for 11h40m
				b.clock.Add(25 * time.Minute)
				if err := b.m.Touch(ctx, key(t, cookie)); err != nil {
					t.Fatalf("Touch while active: %v", err)
				}
			}
			b.clock.Add(20 * time.Minute) // 12h: the absolute deadline
			if err := b.m.Touch(ctx, key(t, cookie)); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("Touch after the absolute deadline = %v, want ErrNotFound", err)
			}
		}},
		{"idle expiry seen by the periodic check", 5 * time.Millisecond, func(t *testing.T, b replica, cookie string) {
			ended, stop := b.m.Watch(key(t, cookie))
			defer stop()
			b.clock.Add(30 * time.Minute)
			waitClosed(t, ended, "B's own check")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rs, bus := newReplicas(t, 2, func(i int, c *session.Config) {
				c.CheckInterval = time.Hour
				if i == 1 && tt.bCheck != 0 {
					c.CheckInterval = tt.bCheck
				}
			})
			a, b := rs[0], rs[1]
			cookie := a.login(t, "alice", alicePass, "")
			other := a.login(t, "bob", bobPass, "")
			ended, stop := a.m.Watch(key(t, cookie))
			defer stop()
			otherEnded, stopOther := a.m.Watch(key(t, other))
			defer stopOther()

			tt.end(t, b, cookie)
			waitClosed(t, ended, "A's watch after the session ended on B")
			if isClosed(otherEnded) {
				t.Fatal("another session's watch fired on A")
			}
			if !slices.Contains(bus.keys(), key(t, cookie)) {
				t.Fatal("B did not announce the session's key")
			}
			wantError(t, a.do(http.MethodGet, "/auth/session", cookie, nil), http.StatusUnauthorized, "no_session")
		})
	}
}

// TestEventDoesNotDelete: an announcement only fires local watchers; the
// record is the announcer's business. (A forged event on the bus can thus
// close sockets, which reconnect, but never log anyone out.)
func TestEventDoesNotDelete(t *testing.T) {
	t.Parallel()
	rs, bus := newReplicas(t, 1, func(_ int, c *session.Config) { c.CheckInterval = time.Hour })
	a := rs[0]
	cookie := a.login(t, "alice", alicePass, "")
	ended, stop := a.m.Watch(key(t, cookie))
	defer stop()
	deletes := a.store.deletes.Load()
	bus.send(key(t, cookie))
	waitClosed(t, ended, "an announcement")
	if got := a.store.deletes.Load(); got != deletes {
		t.Fatalf("the announcement caused %d store deletes", got-deletes)
	}
	if w := a.do(http.MethodGet, "/auth/session", cookie, nil); w.Code != http.StatusOK {
		t.Fatalf("session after an announcement: %d", w.Code)
	}
	bus.send("not a key at all") // junk on the bus is ignored
	bus.send("")
	if w := a.do(http.MethodGet, "/auth/session", cookie, nil); w.Code != http.StatusOK {
		t.Fatalf("session after junk announcements: %d", w.Code)
	}
}

// TestLostEventsPeriodicCheckIsTheBackstop: A misses B's announcement (its
// bus connection is down); its periodic check, which reads the store,
// still closes the watch.
func TestLostEventsPeriodicCheckIsTheBackstop(t *testing.T) {
	t.Parallel()
	rs, _ := newReplicas(t, 2, func(i int, c *session.Config) {
		c.CheckInterval = time.Hour
		if i == 0 {
			c.CheckInterval = 20 * time.Millisecond
		}
	})
	a, b := rs[0], rs[1]
	cookie := a.login(t, "alice", alicePass, "")
	ended, stop := a.m.Watch(key(t, cookie))
	defer stop()
	a.ep.cut.Store(true)
	if w := b.do(http.MethodPost, "/auth/logout", cookie, nil, csrf...); w.Code != http.StatusNoContent {
		t.Fatalf("logout on B: %d", w.Code)
	}
	if a.ep.dropped.Load() == 0 {
		t.Fatal("the announcement reached A; the test proves nothing")
	}
	waitClosed(t, ended, "A's periodic check")
}

// TestAnnounceFailure: when the bus fails, logout still succeeds (the
// record is gone, which is what counts), the failure is logged, and other
// replicas notice at their next check.
func TestAnnounceFailure(t *testing.T) {
	t.Parallel()
	rs, bus := newReplicas(t, 2, func(i int, c *session.Config) {
		c.CheckInterval = time.Hour
		if i == 0 {
			c.CheckInterval = 20 * time.Millisecond
		}
	})
	a, b := rs[0], rs[1]
	cookie := a.login(t, "alice", alicePass, "")
	ended, stop := a.m.Watch(key(t, cookie))
	defer stop()
	bus.failPublish.Store(true)
	if w := b.do(http.MethodPost, "/auth/logout", cookie, nil, csrf...); w.Code != http.StatusNoContent {
		t.Fatalf("logout with a failing bus: %d", w.Code)
	}
	if _, err := b.store.Store.Get(context.Background(), key(t, cookie)); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("record after logout: %v", err)
	}
	if !strings.Contains(b.logs.String(), "could not tell other replicas") {
		t.Fatal("the failed announcement was not logged")
	}
	waitClosed(t, ended, "A's periodic check")
}

// TestNoAnnouncementFromCachedExpiry: while the store fails, the periodic
// check ends sessions whose cached deadlines pass, without announcing
// them (every replica holds the same deadlines).
func TestNoAnnouncementFromCachedExpiry(t *testing.T) {
	t.Parallel()
	rs, bus := newReplicas(t, 1, nil)
	a := rs[0]
	cookie := a.login(t, "alice", alicePass, "")
	ended, stop := a.m.Watch(key(t, cookie))
	defer stop()
	if err := a.m.Touch(context.Background(), key(t, cookie)); err != nil { // caches the record
		t.Fatal(err)
	}
	a.store.failGet.Store(true)
	a.clock.Add(30 * time.Minute)
	waitClosed(t, ended, "idle expiry during a store outage")
	if got := bus.keys(); len(got) != 0 {
		t.Fatalf("%d announcements during a store outage, want none", len(got))
	}
}

func TestCloseUnsubscribes(t *testing.T) {
	t.Parallel()
	rs, _ := newReplicas(t, 1, nil)
	if got := rs[0].ep.subscriptions(); got != 1 {
		t.Fatalf("%d subscriptions after NewManager, want 1", got)
	}
	rs[0].m.Close()
	if got := rs[0].ep.subscriptions(); got != 0 {
		t.Fatalf("%d subscriptions after Close, want 0", got)
	}
	rs[0].m.Close() // safe twice
}

func TestRevokeUser(t *testing.T) {
	t.Parallel()
	rs, bus := newReplicas(t, 1, func(_ int, c *session.Config) { c.CheckInterval = time.Hour })
	f := rs[0]
	ctx := context.Background()
	alice := []string{f.login(t, "alice", alicePass, ""), f.login(t, "alice", alicePass, ""), f.login(t, "alice", alicePass, "")}
	bob := f.login(t, "bob", bobPass, "")
	var watches []<-chan struct{}
	for _, c := range alice[:2] {
		ended, stop := f.m.Watch(key(t, c))
		defer stop()
		watches = append(watches, ended)
	}
	bobEnded, stopBob := f.m.Watch(key(t, bob))
	defer stopBob()

	n, err := f.m.RevokeUser(ctx, "alice")
	if err != nil || n != 3 {
		t.Fatalf("RevokeUser = %d, %v; want 3, nil", n, err)
	}
	for _, ended := range watches {
		if !isClosed(ended) {
			t.Fatal("RevokeUser did not fire a watch at once")
		}
	}
	if isClosed(bobEnded) {
		t.Fatal("RevokeUser fired another user's watch")
	}
	for _, c := range alice {
		wantError(t, f.do(http.MethodGet, "/auth/session", c, nil), http.StatusUnauthorized, "no_session")
	}
	if w := f.do(http.MethodGet, "/auth/session", bob, nil); w.Code != http.StatusOK {
		t.Fatalf("bob after RevokeUser(alice): %d", w.Code)
	}
	want := []string{key(t, alice[0]), key(t, alice[1]), key(t, alice[2])}
	slices.Sort(want)
	got := bus.keys()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("announced %d keys, want alice's 3", len(got))
	}
	lines := f.logs.audit(t, "sessions revoked")
	if len(lines) != 1 || lines[0]["user"] != "alice" || lines[0]["sessions"] != float64(3) || lines[0]["result"] != "success" {
		t.Fatalf("audit lines: %v", lines)
	}
	for _, c := range alice {
		if strings.Contains(f.logs.String(), c) || strings.Contains(f.logs.String(), key(t, c)) {
			t.Fatal("a session id or key was logged")
		}
	}

	if n, err := f.m.RevokeUser(ctx, "alice"); err != nil || n != 0 {
		t.Fatalf("RevokeUser again = %d, %v; want 0, nil", n, err)
	}
	if n, err := f.m.RevokeUser(ctx, "nobody"); err != nil || n != 0 {
		t.Fatalf("RevokeUser(nobody) = %d, %v; want 0, nil", n, err)
	}
	if _, err := f.m.RevokeUser(ctx, ""); !errors.Is(err, session.ErrInvalidArgument) {
		t.Fatalf("RevokeUser(\"\") = %v, want ErrInvalidArgument", err)
	}
}

// TestRevokeUserStoreFailure: the sessions deleted before the store failed
// are still ended and counted, and the error is returned.
func TestRevokeUserStoreFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *session.Config) { c.CheckInterval = time.Hour })
	cookie := f.login(t, "alice", alicePass, "")
	ended, stop := f.m.Watch(key(t, cookie))
	defer stop()
	f.store.partialDeleteUser.Store(true)
	n, err := f.m.RevokeUser(context.Background(), "alice")
	if !errors.Is(err, errStoreDown) || n != 1 {
		t.Fatalf("RevokeUser = %d, %v; want 1 and the store error", n, err)
	}
	if !isClosed(ended) {
		t.Fatal("the deleted session's watch did not fire")
	}
	if lines := f.logs.audit(t, "sessions revoked"); len(lines) != 1 || lines[0]["result"] != "error" {
		t.Fatalf("audit lines: %v", lines)
	}
}

// indexlessStore hides the wrapped store's UserIndex.
type indexlessStore struct{ session.Store }

func TestRevokeUserWithoutIndex(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *session.Config) { c.Store = indexlessStore{c.Store} })
	_, err := f.m.RevokeUser(context.Background(), "alice")
	if !errors.Is(err, session.ErrNoUserIndex) || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("RevokeUser without an index = %v, want ErrNoUserIndex", err)
	}
}
