//go:build unix

package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/tickgate/tickgate/internal/redistest"
	"github.com/tickgate/tickgate/marketsim"
	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/redisstore"
)

// These tests run tickgate as several replicas (or on a Redis that fails)
// with TICKGATE_SESSION_STORE=redis. Shared Redis comes from
// TICKGATE_TEST_REDIS_URL; the outage test starts its own redis-server.

// revocationDeadline is how soon a session's end must close its
// WebSockets on every replica (issue 4).
const revocationDeadline = 2 * time.Second

func testRedisURL(t *testing.T) string { return redistest.URL(t) }

// testRedisPrefix returns a fresh TICKGATE_REDIS_PREFIX, its keys deleted
// when t ends.
func testRedisPrefix(t *testing.T, _ string) string { return redistest.Prefix(t, "tickgate-test:") }

// startReplicas starts n tickgate instances in demo mode sharing one Redis
// (under a fresh prefix) and one marketsim, and returns them with their
// common environment.
func startReplicas(t *testing.T, n int) ([]*instance, map[string]string) {
	t.Helper()
	redisURL := testRedisURL(t)
	// With the Redis session store the replicas share one upstream
	// connection per feed (cluster_test.go proves it with a cap of 1);
	// no cap here keeps these session tests independent of that.
	sim, err := marketsim.New(marketsim.Options{Keys: []string{testKey}, ConnCap: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"TICKGATE_DEMO_KEY":        testKey,
		"TICKGATE_DEMO_PASSWORD":   testPassword,
		"TICKGATE_DEMO_VENDOR_URL": sim.URL(),
		"TICKGATE_SESSION_STORE":   "redis",
		"TICKGATE_REDIS_URL":       redisURL,
		"TICKGATE_REDIS_PREFIX":    testRedisPrefix(t, redisURL),
	}
	insts := make([]*instance, n)
	for i := range insts {
		insts[i] = start(t, env)
	}
	return insts, env
}

// sessionCookieOf returns the session cookie b holds (plain HTTP name).
func sessionCookieOf(t *testing.T, b *browser) *http.Cookie {
	t.Helper()
	u, err := url.Parse(b.base)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == session.CookieName {
			return c
		}
	}
	return nil
}

// browserWithCookie is a browser on base holding the session cookie of
// from: the same user moving to another replica (the two listen on
// different ports, so their jars differ).
func browserWithCookie(t *testing.T, base string, from *browser) *browser {
	t.Helper()
	c := sessionCookieOf(t, from)
	if c == nil {
		t.Fatal("no session cookie to copy")
	}
	b := newBrowser(t, base, &recorder{})
	u, _ := url.Parse(base)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: c.Value, Path: "/"}})
	return b
}

// openFeed opens a WebSocket on b, subscribes and waits for data.
func openFeed(ctx context.Context, t *testing.T, b *browser, sym string) *wsClient {
	t.Helper()
	ws, _, err := b.dialWS(ctx, "demo")
	if err != nil {
		t.Fatalf("ws dial %s: %v", b.base, err)
	}
	t.Cleanup(func() { _ = ws.conn.CloseNow() })
	ws.until(ctx, "ready", nil)
	ws.send(ctx, map[string]any{"action": "subscribe", "symbols": []string{sym}})
	ws.until(ctx, "data", hasDataFor(sym))
	return ws
}

// closed is how and when a WebSocket closed.
type closed struct {
	code websocket.StatusCode
	at   time.Time
}

// watchClose reads ws in the background until it closes.
func watchClose(ctx context.Context, ws *wsClient) <-chan closed {
	ch := make(chan closed, 1)
	go func() {
		for {
			if _, _, err := ws.conn.Read(ctx); err != nil {
				ch <- closed{websocket.CloseStatus(err), time.Now()}
				return
			}
		}
	}()
	return ch
}

// wantClosed4001 waits for a close and checks its code and how long after
// since it came.
func wantClosed4001(t *testing.T, what string, ch <-chan closed, since time.Time) {
	t.Helper()
	select {
	case c := <-ch:
		took := c.at.Sub(since)
		t.Logf("%s: closed %d after %v", what, c.code, took.Round(time.Millisecond))
		if c.code != 4001 {
			t.Errorf("%s: closed with %d, want 4001", what, c.code)
		}
		if took > revocationDeadline {
			t.Errorf("%s: closed after %v, want within %v", what, took, revocationDeadline)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: still open 30s after the session ended", what)
	}
}

func wantStatus(t *testing.T, what string, b *browser, method, path string, want int) string {
	t.Helper()
	var hdr map[string]string
	if method != http.MethodGet {
		hdr = map[string]string{"X-CSRF": "1"}
	}
	resp, body := b.do(method, path, "", hdr)
	if resp.StatusCode != want {
		t.Fatalf("%s: %s %s on %s = %d %s, want %d", what, method, path, b.base, resp.StatusCode, body, want)
	}
	return body
}

// TestReplicasShareSessions: two tickgate instances on one Redis. A login
// on A works on B; a logout on B closes the session's WebSocket on A with
// 4001 within 2s, and the cookie then fails on both.
func TestReplicasShareSessions(t *testing.T) {
	insts, _ := startReplicas(t, 2)
	a, b := insts[0], insts[1]
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	onA := newBrowser(t, a.url, &recorder{})
	login(t, onA)
	onB := browserWithCookie(t, b.url, onA)
	if body := wantStatus(t, "cookie from A on B", onB, http.MethodGet, "/auth/session", http.StatusOK); !strings.Contains(body, `"user":"demo"`) {
		t.Fatalf("session info on B: %s", body)
	}
	wantStatus(t, "API on B", onB, http.MethodGet, "/api/demo/v1/quote/AAPL", http.StatusOK)

	wsA := openFeed(ctx, t, onA, "AAPL")
	wsB := openFeed(ctx, t, onB, "MSFT") // the same session on B
	closedA, closedB := watchClose(ctx, wsA), watchClose(ctx, wsB)

	start := time.Now()
	wantStatus(t, "logout on B", onB, http.MethodPost, "/auth/logout", http.StatusNoContent)
	wantClosed4001(t, "WebSocket on A after logout on B", closedA, start)
	wantClosed4001(t, "WebSocket on B after logout on B", closedB, start)

	again := browserWithCookie(t, a.url, onA) // the logged-out cookie
	wantStatus(t, "cookie on A after logout", again, http.MethodGet, "/auth/session", http.StatusUnauthorized)
	again = browserWithCookie(t, b.url, onA)
	wantStatus(t, "cookie on B after logout", again, http.MethodGet, "/api/demo/v1/quote/AAPL", http.StatusUnauthorized)
}

// TestReplicasRevokeUser: Manager.RevokeUser, run by a third party on the
// same Redis (an admin tool, say), ends every session of the user: their
// WebSockets close with 4001 on both replicas within 2s.
func TestReplicasRevokeUser(t *testing.T) {
	insts, env := startReplicas(t, 2)
	a, b := insts[0], insts[1]
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	first := newBrowser(t, a.url, &recorder{})
	login(t, first)
	second := newBrowser(t, b.url, &recorder{})
	login(t, second)
	firstOnB := browserWithCookie(t, b.url, first)
	var waits []<-chan closed
	for _, br := range []*browser{first, second, firstOnB} {
		waits = append(waits, watchClose(ctx, openFeed(ctx, t, br, "SPY")))
	}

	st, err := redisstore.New(redisstore.Config{URL: env["TICKGATE_REDIS_URL"], Prefix: env["TICKGATE_REDIS_PREFIX"] + "session:"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	users, err := session.NewUsers(nil)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := session.NewManager(session.Config{Store: st, Events: st, Users: users, AllowedOrigins: []string{a.url}})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	start := time.Now()
	n, err := admin.RevokeUser(ctx, "demo")
	if err != nil || n != 2 {
		t.Fatalf("RevokeUser(demo) = %d, %v; want 2 sessions", n, err)
	}
	for i, what := range []string{"first session on A", "second session on B", "first session on B"} {
		wantClosed4001(t, what, waits[i], start)
	}
	wantStatus(t, "first session after RevokeUser", first, http.MethodGet, "/auth/session", http.StatusUnauthorized)
	wantStatus(t, "second session after RevokeUser", second, http.MethodGet, "/auth/session", http.StatusUnauthorized)
}

// redisServer is a redis-server child process on a fixed port, so that it
// can be killed and started again where clients expect it.
type redisServer struct {
	t    *testing.T
	port int
	dir  string

	out syncBuffer // written by exec's copying goroutine

	mu  sync.Mutex
	cmd *exec.Cmd
}

// startRedisServer starts redis-server on a free loopback port. Writes
// are appended and fsynced to a file under a temporary directory before
// Redis answers them (appendfsync always), so a killed server restarts
// with every session it had. The server is killed when t ends.
func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server must be installed in CI")
		}
		t.Skip("REQUIRES_REDIS: redis-server is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	s := &redisServer{t: t, port: port, dir: t.TempDir()}
	t.Cleanup(s.kill)
	s.start()
	return s
}

func (s *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

// start runs redis-server and waits until it answers PING.
func (s *redisServer) start() {
	s.t.Helper()
	s.mu.Lock()
	s.cmd = exec.Command("redis-server",
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--dir", s.dir, "--daemonize", "no")
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	err := s.cmd.Start()
	s.mu.Unlock()
	if err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on port %d does not answer: %v\n%s", s.port, err, s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *redisServer) signal(sig os.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redis-server: signal %v: %v", sig, err)
	}
}

// kill stops the server at once (SIGKILL: no shutdown, no save) and waits
// for it; safe to call when it is not running.
func (s *redisServer) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// TestSessionStoreOutage is the store failure policy end to end: while
// Redis is stalled (SIGSTOP) or gone (SIGKILL), requests that need a
// session get a quick 503 session_store_unavailable with Retry-After, the
// cookie is kept, and an open WebSocket stays open (nobody is logged out
// by an outage); when Redis answers again, the same cookie works again
// without restarting tickgate. This Redis keeps its data across the kill
// (append-only file); a Redis without persistence would come back empty,
// its users would get 401 no_session and log in again, which works as
// soon as it answers.
func TestSessionStoreOutage(t *testing.T) {
	rs := startRedisServer(t)
	inst := start(t, map[string]string{
		"TICKGATE_DEMO_KEY":      testKey,
		"TICKGATE_DEMO_PASSWORD": testPassword,
		"TICKGATE_SESSION_STORE": "redis",
		"TICKGATE_REDIS_URL":     rs.url(),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	b := newBrowser(t, inst.url, &recorder{})
	login(t, b)
	cookie := sessionCookieOf(t, b)
	ws := openFeed(ctx, t, b, "AAPL")

	// duringOutage checks the answers while Redis cannot answer.
	duringOutage := func(phase string) {
		t.Helper()
		for _, req := range []struct{ method, path string }{
			{http.MethodGet, "/auth/session"},
			{http.MethodGet, "/api/demo/v1/quote/AAPL"},
			{http.MethodPost, "/api/demo/v1/quote/AAPL"},
			{http.MethodPost, "/auth/logout"},
		} {
			hdr := map[string]string{"X-CSRF": "1"}
			began := time.Now()
			resp, body := b.do(req.method, req.path, "", hdr)
			took := time.Since(began)
			t.Logf("%s: %s %s = %d after %v", phase, req.method, req.path, resp.StatusCode, took.Round(time.Millisecond))
			if resp.StatusCode != http.StatusServiceUnavailable || errorCode(t, body) != "session_store_unavailable" {
				t.Fatalf("%s: %s %s = %d %s, want 503 session_store_unavailable", phase, req.method, req.path, resp.StatusCode, body)
			}
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s: %s %s: 503 without Retry-After", phase, req.method, req.path)
			}
			if sc := resp.Header.Values("Set-Cookie"); len(sc) > 0 {
				t.Errorf("%s: %s %s set cookies during the outage: %d", phase, req.method, req.path, len(sc))
			}
			if took > 10*time.Second { // the store's bound is 500ms; this is slack for a loaded machine
				t.Errorf("%s: %s %s took %v; store failures must answer quickly", phase, req.method, req.path, took)
			}
		}
		resp, body := b.do(http.MethodPost, "/auth/login", `{"username":"demo","password":"`+testPassword+`"}`, map[string]string{"X-CSRF": "1"})
		if resp.StatusCode != http.StatusServiceUnavailable || errorCode(t, body) != "session_store_unavailable" {
			t.Fatalf("%s: login = %d %s, want 503 session_store_unavailable", phase, resp.StatusCode, body)
		}
		wantStatus(t, phase+": readiness", b, http.MethodGet, "/readyz", http.StatusServiceUnavailable)
		if c := sessionCookieOf(t, b); c == nil || c.Value != cookie.Value {
			t.Fatalf("%s: the browser lost its session cookie", phase)
		}
		ws.until(ctx, "data", hasDataFor("AAPL")) // still open, still fed
	}
	// recovered waits until the same cookie works again.
	recovered := func(phase string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			resp, body := b.do(http.MethodGet, "/auth/session", "", nil)
			if resp.StatusCode == http.StatusOK {
				break
			}
			if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
				t.Fatalf("%s: GET /auth/session = %d %s, want 200 once Redis is back", phase, resp.StatusCode, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
		wantStatus(t, phase+": API", b, http.MethodGet, "/api/demo/v1/quote/AAPL", http.StatusOK)
		wantStatus(t, phase+": readiness", b, http.MethodGet, "/readyz", http.StatusOK)
		ws.until(ctx, "data", hasDataFor("AAPL"))
	}

	rs.signal(syscall.SIGSTOP) // stalled: connections open, no answers
	duringOutage("Redis stalled")
	rs.signal(syscall.SIGCONT)
	recovered("after SIGCONT")

	rs.kill() // gone: connections refused
	duringOutage("Redis killed")
	rs.start()
	recovered("after restart")

	fresh := newBrowser(t, inst.url, &recorder{})
	login(t, fresh)
	wantStatus(t, "new login after restart", fresh, http.MethodGet, "/auth/session", http.StatusOK)
}
