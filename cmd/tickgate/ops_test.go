package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tickgate/tickgate/marketsim"
)

// TestSlowHeadersCutOffSocketsStay: a client that never finishes its
// request headers is cut off at the header timeout (10s), while a
// WebSocket established before keeps streaming well past it.
func TestSlowHeadersCutOffSocketsStay(t *testing.T) {
	t.Parallel()
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := newBrowser(t, inst.url, &recorder{})
	login(t, b)
	ws, _, err := b.dialWS(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.conn.CloseNow()
	ws.until(ctx, "ready", nil)
	ws.send(ctx, map[string]any{"action": "subscribe", "symbols": []string{"AAPL"}})
	ws.until(ctx, "data", hasDataFor("AAPL"))

	conn, err := net.Dial("tcp", strings.TrimPrefix(inst.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	began := time.Now()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	waited := time.Since(began)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a client sending headers slowly was still connected after %v", waited)
	}
	if err == nil && !strings.HasPrefix(line, "HTTP/1.1 408") {
		t.Fatalf("slow headers answered %q", line)
	}
	if waited < 9*time.Second {
		t.Fatalf("slow headers cut after %v, before the header timeout", waited)
	}

	// Past the header timeout (and with no read deadline on hijacked
	// connections) the socket still delivers.
	ws.until(ctx, "data", hasDataFor("AAPL"))
	resp, body := b.do("GET", "/auth/session", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("session after the wait: %d %s", resp.StatusCode, body)
	}
}

// TestGracefulShutdown: on shutdown a REST request in flight is finished,
// browsers' sockets close with 1001, new connections are refused, and
// the server returns without error (exit 0).
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	sim, err := marketsim.New(marketsim.Options{Keys: []string{testKey}, RESTRate: -1, Latency: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword,
		"TICKGATE_DEMO_VENDOR_URL": sim.URL()})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := newBrowser(t, inst.url, &recorder{})
	login(t, b)
	ws, _, err := b.dialWS(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.conn.CloseNow()
	ws.until(ctx, "ready", nil)
	ws.send(ctx, map[string]any{"action": "subscribe", "symbols": []string{"MSFT"}})
	ws.until(ctx, "data", hasDataFor("MSFT"))

	type answer struct {
		status int
		body   string
	}
	inFlight := make(chan answer, 1)
	go func() {
		resp, body := b.do("GET", "/api/demo/v1/quote/IBM", "", nil)
		inFlight <- answer{resp.StatusCode, body}
	}()
	time.Sleep(500 * time.Millisecond) // the request is waiting on the vendor

	stopped := make(chan error, 1)
	go func() { stopped <- inst.stop() }()

	if code := ws.closeCode(ctx); code != websocket.StatusGoingAway {
		t.Errorf("socket closed with %d, want 1001", code)
	}
	select {
	case a := <-inFlight:
		if a.status != http.StatusOK || !strings.Contains(a.body, `"IBM"`) {
			t.Errorf("request in flight at shutdown: %d %s", a.status, a.body)
		}
	case <-ctx.Done():
		t.Fatal("the request in flight never finished")
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("shutdown did not finish")
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(inst.url, "http://"), 2*time.Second); err == nil {
		t.Error("still accepting connections after shutdown")
	}
	if out := inst.stderr.String(); !strings.Contains(out, "shutting down") || !strings.Contains(out, "stopped") {
		t.Errorf("shutdown not logged: %s", out)
	}
}

// TestInsecureHTTP: plain HTTP on a non-loopback address is refused at
// start-up unless TLS, a trusted proxy or TICKGATE_INSECURE_HTTP=1 makes
// it acceptable; the last is warned about.
func TestInsecureHTTP(t *testing.T) {
	t.Parallel()
	base := map[string]string{"TICKGATE_ADDR": "0.0.0.0:8080", "TICKGATE_ADMIN_ADDR": "", "TICKGATE_DEMO_PUBLIC": "1", "TICKGATE_PUBLIC_ORIGIN": "https://app.example.com"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for bk, bv := range base {
			m[bk] = bv
		}
		return m
	}
	_, stderr, err := runWith(t, []string{"check-config"}, with("TICKGATE_LOG_LEVEL", "info"), "")
	if err == nil || !strings.Contains(stderr, "TICKGATE_ADDR: plain HTTP on a non-loopback address") {
		t.Fatalf("plain HTTP on 0.0.0.0: err=%v stderr=%q", err, stderr)
	}
	out, stderr, err := runWith(t, []string{"check-config"}, with("TICKGATE_TRUSTED_PROXIES", "10.0.0.0/8"), "")
	if err != nil || !strings.HasPrefix(out, "ok:") || strings.Contains(stderr, "INSECURE") {
		t.Fatalf("behind a trusted proxy: err=%v out=%q stderr=%q", err, out, stderr)
	}
	out, stderr, err = runWith(t, []string{"check-config"}, with("TICKGATE_INSECURE_HTTP", "1"), "")
	if err != nil || !strings.HasPrefix(out, "ok:") || !strings.Contains(stderr, "warning: TICKGATE_INSECURE_HTTP=1") {
		t.Fatalf("insecure HTTP: err=%v out=%q stderr=%q", err, out, stderr)
	}
	_, stderr, err = runWith(t, []string{"check-config"}, with("TICKGATE_INSECURE_HTTP", "yes"), "")
	if err == nil || !strings.Contains(stderr, `TICKGATE_INSECURE_HTTP: "yes" is not 0 or 1`) {
		t.Fatalf("bad value: err=%v stderr=%q", err, stderr)
	}
}

// TestDemoStaysOnLoopback: demo mode refuses every non-loopback listener
// unless TICKGATE_DEMO_PUBLIC=1, and its random password is new on each
// start.
func TestDemoStaysOnLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"TICKGATE_ADDR": "0.0.0.0:8080", "TICKGATE_TRUSTED_PROXIES": "10.0.0.0/8", "TICKGATE_ADMIN_ADDR": "", "TICKGATE_PUBLIC_ORIGIN": "https://app.example.com"}, "TICKGATE_ADDR: demo mode listens only on loopback addresses"},
		{map[string]string{"TICKGATE_ADDR": "[::]:8080", "TICKGATE_TRUSTED_PROXIES": "10.0.0.0/8", "TICKGATE_ADMIN_ADDR": "", "TICKGATE_PUBLIC_ORIGIN": "https://app.example.com"}, "TICKGATE_ADDR: demo mode"},
		{map[string]string{"TICKGATE_ADDR": ":8080", "TICKGATE_TRUSTED_PROXIES": "10.0.0.0/8", "TICKGATE_ADMIN_ADDR": "", "TICKGATE_PUBLIC_ORIGIN": "https://app.example.com"}, "TICKGATE_ADDR: demo mode"},
		{map[string]string{"TICKGATE_ADMIN_ADDR": "0.0.0.0:9090"}, "TICKGATE_ADMIN_ADDR: demo mode"},
		{map[string]string{"TICKGATE_ADDR": "0.0.0.0:8080", "TICKGATE_TRUSTED_PROXIES": "10.0.0.0/8"}, "TICKGATE_PUBLIC_ORIGIN: required when TICKGATE_ADDR"},
		{map[string]string{"TICKGATE_DEMO_PUBLIC": "maybe"}, `TICKGATE_DEMO_PUBLIC: "maybe" is not 0 or 1`},
	} {
		_, stderr, err := runWith(t, []string{"check-config"}, tc.env, "")
		if err == nil || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: err=%v stderr=%q, want %q", tc.env, err, stderr, tc.want)
		}
	}
	public := map[string]string{"TICKGATE_ADDR": "0.0.0.0:8080", "TICKGATE_TRUSTED_PROXIES": "10.0.0.0/8", "TICKGATE_ADMIN_ADDR": "", "TICKGATE_DEMO_PUBLIC": "1", "TICKGATE_PUBLIC_ORIGIN": "https://app.example.com"}
	if out, stderr, err := runWith(t, []string{"check-config"}, public, ""); err != nil || !strings.HasPrefix(out, "ok: demo mode") {
		t.Fatalf("TICKGATE_DEMO_PUBLIC=1: err=%v out=%q stderr=%q", err, out, stderr)
	}

	passwordRE := regexp.MustCompile(`demo password \(random, this run only\): (\S+)`)
	var seen []string
	for range 2 {
		inst := start(t, map[string]string{})
		m := passwordRE.FindStringSubmatch(inst.stderr.String())
		if m == nil {
			t.Fatalf("no demo password printed: %s", inst.stderr.String())
		}
		seen = append(seen, m[1])
		if err := inst.stop(); err != nil {
			t.Fatal(err)
		}
	}
	if seen[0] == seen[1] || len(seen[0]) < 20 {
		t.Fatalf("demo passwords of two starts: %d and %d characters, equal=%v", len(seen[0]), len(seen[1]), seen[0] == seen[1])
	}
}

// TestCheckConfigOpensWhatServeOpens: an ok from check-config means serve
// gets as far as listening: the certificate files and the session store
// are opened too.
func TestCheckConfigOpensWhatServeOpens(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"TICKGATE_TLS_CERT": dir + "/missing.pem", "TICKGATE_TLS_KEY": dir + "/missing-key.pem"}, "TICKGATE_TLS_CERT / TICKGATE_TLS_KEY: open " + dir + "/missing.pem"},
		{map[string]string{"TICKGATE_SESSION_STORE": "redis", "TICKGATE_REDIS_URL": "redis://127.0.0.1:1/0"}, "TICKGATE_REDIS_URL: session store not answering"},
		{map[string]string{"TICKGATE_DEMO_VENDOR_URL": "http://127.0.0.1:7070"}, "secret TICKGATE_DEMO_KEY"},
		{map[string]string{"TICKGATE_DEMO_PASSWORD": "short"}, "TICKGATE_DEMO_PASSWORD: shorter than 8 characters"},
	} {
		tc.env["TICKGATE_ADMIN_ADDR"] = ""
		_, stderr, err := runWith(t, []string{"check-config"}, tc.env, "")
		if err == nil || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: err=%v stderr=%q, want one line with %q", tc.env, err, stderr, tc.want)
		}
	}
}
