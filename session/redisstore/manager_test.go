package redisstore_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/redisstore"
)

// These tests run session.Managers on Redis stores, as replicas do: the
// store carries the records and, as session.Events, the announcements.

var (
	_ session.Events    = (*redisstore.Store)(nil)
	_ session.UserIndex = (*redisstore.Store)(nil)
)

const managerOrigin = "https://app.example.com"

// newManager returns a Manager on st that knows alice and bob (password
// "pw-" + name), closed when t ends.
func newManager(t testing.TB, st *redisstore.Store, checkInterval time.Duration) *session.Manager {
	t.Helper()
	users, err := session.NewUsers(nil)
	if err != nil {
		t.Fatal(err)
	}
	cheap := session.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	for _, name := range []string{"alice", "bob"} {
		h, err := session.HashPasswordWith("pw-"+name, cheap)
		if err != nil {
			t.Fatal(err)
		}
		if err := users.Add(name, h); err != nil {
			t.Fatal(err)
		}
	}
	m, err := session.NewManager(session.Config{
		Store:          st,
		Events:         st,
		Users:          users,
		AllowedOrigins: []string{managerOrigin},
		CheckInterval:  checkInterval,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close) // registered after the store's Close: runs first
	return m
}

// loginCookie logs user in through m and returns the session cookie.
func loginCookie(t testing.TB, m *session.Manager, user string) *http.Cookie {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/auth/login", strings.NewReader(`{"username":"`+user+`","password":"pw-`+user+`"}`))
	r.Header.Set("X-CSRF", "1")
	r.Header.Set("Origin", managerOrigin)
	w := httptest.NewRecorder()
	m.Login(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == session.CookieName {
			return c
		}
	}
	t.Fatal("login set no session cookie")
	return nil
}

// loginKey logs user in through m and returns the session's store key:
// what the middleware puts in the request context.
func loginKey(t *testing.T, m *session.Manager, user string) string {
	t.Helper()
	var key string
	h := m.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		if s, ok := session.FromContext(r.Context()); ok {
			key = s.Key
		}
	}))
	r := httptest.NewRequest(http.MethodGet, "/auth/session", nil)
	r.AddCookie(loginCookie(t, m, user))
	h.ServeHTTP(httptest.NewRecorder(), r)
	if key == "" {
		t.Fatal("the login's cookie names no session")
	}
	return key
}

// waitEnded waits for a watch to fire and returns how long it took.
func waitEnded(t *testing.T, ended <-chan struct{}, since time.Time, what string) time.Duration {
	t.Helper()
	select {
	case <-ended:
		return time.Since(since)
	case <-time.After(patience):
		t.Fatalf("%s: the watch did not fire within %v", what, patience)
		return 0
	}
}

// TestManagersShareRevocations: a revocation on replica B reaches replica
// A through Redis pub/sub. A checks its watches only hourly here, so
// nothing but the announcement can fire them.
func TestManagersShareRevocations(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	a := newManager(t, newStore(t, redisstore.Config{Prefix: prefix}), time.Hour)
	b := newManager(t, newStore(t, redisstore.Config{Prefix: prefix}), time.Hour)
	ctx := ctxFor(t)

	k := loginKey(t, a, "alice")
	ended, stop := a.Watch(k)
	defer stop()
	start := time.Now()
	if err := b.Revoke(ctx, k); err != nil {
		t.Fatal(err)
	}
	took := waitEnded(t, ended, start, "Revoke on the other replica")
	t.Logf("Revoke on B fired A's watch after %v", took)

	// RevokeUser on A: watches on both replicas fire; bob's do not.
	k1, k2, kb := loginKey(t, a, "alice"), loginKey(t, b, "alice"), loginKey(t, b, "bob")
	endedA, stopA := a.Watch(k2)
	defer stopA()
	endedB, stopB := b.Watch(k1)
	defer stopB()
	endedBob, stopBob := b.Watch(kb)
	defer stopBob()
	start = time.Now()
	n, err := a.RevokeUser(ctx, "alice")
	if err != nil || n != 2 {
		t.Fatalf("RevokeUser = %d, %v; want 2, nil", n, err)
	}
	waitEnded(t, endedA, start, "RevokeUser, same replica")
	took = waitEnded(t, endedB, start, "RevokeUser, other replica")
	t.Logf("RevokeUser on A fired B's watch after %v", took)
	select {
	case <-endedBob:
		t.Fatal("RevokeUser(alice) fired bob's watch")
	default:
	}
}

// TestManagerBackstopWhenPubSubDrops: while A's connection to Redis is cut,
// B logs a session out and A misses the announcement; once Redis is back,
// A's periodic check reads the store, finds the session gone and fires the
// watch. While the store cannot answer, the check ends nothing.
func TestManagerBackstopWhenPubSubDrops(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	p := startProxy(t)
	const check = 50 * time.Millisecond
	aStore := newStore(t, redisstore.Config{URL: urlWithHost(t, p.addr()), Prefix: prefix, OpTimeout: opTimeout})
	a := newManager(t, aStore, check)
	b := newManager(t, newStore(t, redisstore.Config{Prefix: prefix}), time.Hour)
	ctx := ctxFor(t)

	k := loginKey(t, b, "alice")
	ended, stop := a.Watch(k)
	defer stop()
	p.cut()
	if err := b.Revoke(ctx, k); err != nil { // the announcement cannot reach A
		t.Fatal(err)
	}
	// Several checks fail meanwhile; none may end the session.
	select {
	case <-ended:
		t.Fatal("A's watch fired while A could not reach Redis")
	case <-time.After(20 * check):
	}
	p.restore()
	waitEnded(t, ended, time.Now(), "A's periodic check after Redis came back")
}

// BenchmarkMiddleware is the per-request session lookup on Redis: cookie
// parse, id check, SHA-256, one HMGET on loopback, expiry check, context.
// (session.BenchmarkMiddleware is the same on memstore.) Activity writes
// are throttled to one per TouchEvery, so they do not show here.
func BenchmarkMiddleware(b *testing.B) {
	m := newManager(b, benchStore(b), time.Hour)
	cookie := loginCookie(b, m, "alice")
	var found bool
	h := m.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, found = session.FromContext(r.Context())
	}))
	r := httptest.NewRequest(http.MethodGet, "/api/quote", nil)
	r.AddCookie(cookie)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
	if !found || w.Code != http.StatusOK {
		b.Fatalf("no session found (status %d)", w.Code)
	}
}

// BenchmarkMiddlewareParallel is BenchmarkMiddleware from every core.
func BenchmarkMiddlewareParallel(b *testing.B) {
	m := newManager(b, benchStore(b), time.Hour)
	cookie := loginCookie(b, m, "alice")
	h := m.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		if _, ok := session.FromContext(r.Context()); !ok {
			b.Error("no session")
		}
	}))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest(http.MethodGet, "/api/quote", nil)
		r.AddCookie(cookie)
		w := httptest.NewRecorder()
		for pb.Next() {
			h.ServeHTTP(w, r)
		}
	})
}
