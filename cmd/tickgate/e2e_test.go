package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const (
	testKey      = "demo-vendor-key-7f3a9c"
	testPassword = "correct horse battery staple"
)

// wsMsg is any tickgate → browser message.
type wsMsg struct {
	Type     string            `json:"type"`
	Feed     string            `json:"feed"`
	Symbols  []string          `json:"symbols"`
	Messages []json.RawMessage `json:"messages"`
	Code     string            `json:"code"`
	Upstream string            `json:"upstream"`
	Limits   map[string]int    `json:"limits"`
}

type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	rec  *recorder
}

func (b *browser) dialWS(ctx context.Context, feed string) (*wsClient, *http.Response, error) {
	url := "ws" + strings.TrimPrefix(b.base, "http") + "/ws/" + feed
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient: b.client,
		HTTPHeader: http.Header{"Origin": {b.base}},
	})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(1 << 20)
	return &wsClient{t: b.t, conn: c, rec: b.rec}, resp, nil
}

func (c *wsClient) send(ctx context.Context, v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("ws write: %v", err)
	}
}

// read returns the next message, or the close error.
func (c *wsClient) read(ctx context.Context) (wsMsg, error) {
	_, b, err := c.conn.Read(ctx)
	if err != nil {
		return wsMsg{}, err
	}
	c.rec.add(string(b))
	var m wsMsg
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("ws message is not JSON: %q", b)
	}
	return m, nil
}

// until reads until a message of type typ satisfying ok arrives.
func (c *wsClient) until(ctx context.Context, typ string, ok func(wsMsg) bool) wsMsg {
	c.t.Helper()
	for {
		m, err := c.read(ctx)
		if err != nil {
			c.t.Fatalf("waiting for %q: %v", typ, err)
		}
		if m.Type == typ && (ok == nil || ok(m)) {
			return m
		}
	}
}

// closeCode reads until the connection closes and returns its status.
func (c *wsClient) closeCode(ctx context.Context) websocket.StatusCode {
	for {
		if _, err := c.read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

func hasDataFor(sym string) func(wsMsg) bool {
	return func(m wsMsg) bool {
		for _, raw := range m.Messages {
			var v struct{ Sym string }
			if json.Unmarshal(raw, &v) == nil && v.Sym == sym {
				return true
			}
		}
		return false
	}
}

func errorCode(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not a contract error body: %q", body)
	}
	return e.Error.Code
}

func login(t *testing.T, b *browser) {
	t.Helper()
	resp, body := b.do("POST", "/auth/login", `{"username":"demo","password":"`+testPassword+`"}`, map[string]string{"X-CSRF": "1"})
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
}

// TestDemoEndToEnd walks the whole product as a browser would and checks
// that the vendor key reaches neither the browser nor the log.
func TestDemoEndToEnd(t *testing.T) {
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword})
	rec := &recorder{}
	b := newBrowser(t, inst.url, rec)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	step := func(name string, method, path, body string, hdr map[string]string, wantStatus int, wantCode string) string {
		t.Helper()
		resp, out := b.do(method, path, body, hdr)
		if resp.StatusCode != wantStatus {
			t.Fatalf("%s: %s %s = %d %s, want %d", name, method, path, resp.StatusCode, out, wantStatus)
		}
		if wantCode != "" {
			if got := errorCode(t, out); got != wantCode {
				t.Fatalf("%s: code %q, want %q", name, got, wantCode)
			}
		}
		if resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: missing X-Request-Id or security headers: %v", name, resp.Header)
		}
		return out
	}

	if out := step("health", "GET", "/healthz", "", nil, 200, ""); strings.TrimSpace(out) != `{"status":"ok"}` {
		t.Fatalf("healthz body %q", out)
	}
	step("ready", "GET", "/readyz", "", nil, 200, "")
	step("no session", "GET", "/auth/session", "", nil, 401, "no_session")
	step("api without session", "GET", "/api/demo/v1/quote/AAPL", "", nil, 401, "no_session")
	if _, resp, err := b.dialWS(ctx, "demo"); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("ws without session: err=%v resp=%v", err, resp)
	}
	step("login without csrf", "POST", "/auth/login", `{"username":"demo","password":"`+testPassword+`"}`, nil, 403, "csrf")
	wrong := step("wrong password", "POST", "/auth/login", `{"username":"demo","password":"nope"}`, map[string]string{"X-CSRF": "1"}, 401, "invalid_credentials")
	unknown := step("unknown user", "POST", "/auth/login", `{"username":"mallory","password":"nope"}`, map[string]string{"X-CSRF": "1"}, 401, "invalid_credentials")
	if wrong != unknown {
		t.Fatalf("unknown user and wrong password answer differently: %q vs %q", unknown, wrong)
	}
	login(t, b)

	var info struct {
		User          string    `json:"user"`
		IdleExpiresAt time.Time `json:"idle_expires_at"`
		ExpiresAt     time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(step("session info", "GET", "/auth/session", "", nil, 200, "")), &info); err != nil {
		t.Fatal(err)
	}
	if info.User != "demo" || !info.IdleExpiresAt.After(time.Now()) || info.ExpiresAt.Before(info.IdleExpiresAt) {
		t.Fatalf("session info wrong: %+v", info)
	}

	var quote struct {
		Symbol string  `json:"symbol"`
		Last   float64 `json:"last"`
	}
	if err := json.Unmarshal([]byte(step("quote", "GET", "/api/demo/v1/quote/AAPL", "", nil, 200, "")), &quote); err != nil || quote.Symbol != "AAPL" || quote.Last <= 0 {
		t.Fatalf("quote: %+v %v", quote, err)
	}
	step("path escape", "GET", "/api/demo/v1/quote/..%2f..%2fadmin", "", nil, 404, "")
	step("post needs csrf", "POST", "/api/demo/v1/quote/AAPL", "{}", nil, 403, "csrf")
	// Traps that echo or carry the key must come back clean.
	b.do("GET", "/api/demo/v1/symbols", "", nil)
	b.do("GET", "/api/demo/v1/last/AAPL", "", nil)
	b.do("GET", "/api/demo/v1/quote/NOPE", "", nil)

	ws, _, err := b.dialWS(ctx, "demo")
	if err != nil {
		t.Fatalf("ws dial: %v", err)
	}
	ready := ws.until(ctx, "ready", nil)
	if ready.Feed != "demo" || ready.Limits["max_symbols"] != 50 {
		t.Fatalf("ready = %+v", ready)
	}
	ws.send(ctx, map[string]any{"action": "subscribe", "symbols": []string{"AAPL"}})
	ws.until(ctx, "subscribed", func(m wsMsg) bool { return len(m.Symbols) == 1 && m.Symbols[0] == "AAPL" })
	ws.until(ctx, "data", hasDataFor("AAPL"))
	ws.send(ctx, map[string]any{"action": "subscribe", "symbols": []string{"not a symbol!"}})
	ws.until(ctx, "error", func(m wsMsg) bool { return m.Code == "invalid_symbol" })
	ws.send(ctx, map[string]any{"action": "ping"})
	ws.until(ctx, "pong", nil)

	step("logout", "POST", "/auth/logout", "", map[string]string{"X-CSRF": "1"}, 204, "")
	closeCtx, cancelClose := context.WithTimeout(ctx, 10*time.Second)
	if code := ws.closeCode(closeCtx); code != 4001 {
		t.Fatalf("ws after logout closed with %d, want 4001", code)
	}
	cancelClose()
	step("after logout", "GET", "/auth/session", "", nil, 401, "no_session")
	step("api after logout", "GET", "/api/demo/v1/quote/AAPL", "", nil, 401, "no_session")

	metricsBody := func() string {
		resp, err := http.Get(inst.admin + "/metrics")
		if err != nil {
			t.Fatalf("metrics: %v", err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			sb.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return sb.String()
	}()
	for _, name := range []string{"tickgate_http_requests_total", "tickgate_ws_clients", "tickgate_upstream_ws_connections", "tickgate_ratelimit_rejections_total", "tickgate_secret_refresh_total"} {
		if !strings.Contains(metricsBody, name) {
			t.Errorf("metrics lack %s", name)
		}
	}

	if err := inst.stop(); err != nil {
		t.Fatal(err)
	}
	for what, s := range map[string]string{"bytes received": rec.String(), "log output": inst.stderr.String(), "metrics": metricsBody} {
		for _, secret := range []string{testKey, testPassword} {
			if strings.Contains(s, secret) {
				t.Errorf("%s contain a secret (%d bytes scanned)", what, len(s))
			}
		}
	}
	if !strings.Contains(inst.stderr.String(), `"route":"/api/:upstream/*"`) {
		t.Errorf("access log lacks the route pattern")
	}
}

// TestFiftyBrowsersShareOneUpstream proves multiplexing: the demo vendor
// refuses a second connection per key, and yet 50 browser sockets (ten
// sessions with five sockets each) all get data.
func TestFiftyBrowsersShareOneUpstream(t *testing.T) {
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword,
		"TICKGATE_LIMIT_IP": "1000/1s", "TICKGATE_LIMIT_SESSION": "1000/1s", "TICKGATE_LIMIT_LOGIN": "100/1m"})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const sessions, perSession = 10, 5
	symbols := []string{"AAPL", "MSFT", "TSLA", "SPY", "BTCUSD"}
	var wg sync.WaitGroup
	errs := make(chan error, sessions*perSession)
	for range sessions {
		b := newBrowser(t, inst.url, &recorder{})
		b.client.Timeout = 90 * time.Second // logins queue behind argon2id on a loaded machine
		login(t, b)
		for j := range perSession {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ws, _, err := b.dialWS(ctx, "demo")
				if err != nil {
					errs <- err
					return
				}
				defer ws.conn.CloseNow()
				sym := symbols[j]
				if _, err := ws.read(ctx); err != nil { // ready
					errs <- err
					return
				}
				ws.send(ctx, map[string]any{"action": "subscribe", "symbols": []string{sym}})
				for {
					m, err := ws.read(ctx)
					if err != nil {
						errs <- err
						return
					}
					if m.Type == "data" && hasDataFor(sym)(m) {
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestIdleExpiryClosesSocket: with a short idle timeout, an open socket
// that only receives data (not activity) is closed with 4001 and the
// cookie no longer works.
func TestIdleExpiryClosesSocket(t *testing.T) {
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword, "TICKGATE_SESSION_IDLE": "3s"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := newBrowser(t, inst.url, &recorder{})
	login(t, b)
	ws, _, err := b.dialWS(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	ws.until(ctx, "ready", nil)
	ws.send(ctx, map[string]any{"action": "subscribe", "symbols": []string{"MSFT"}})
	ws.until(ctx, "data", hasDataFor("MSFT"))
	start := time.Now()
	if code := ws.closeCode(ctx); code != 4001 {
		t.Fatalf("closed with %d, want 4001", code)
	}
	if waited := time.Since(start); waited > 20*time.Second {
		t.Fatalf("idle close took %v", waited)
	}
	resp, body := b.do("GET", "/auth/session", "", nil)
	if resp.StatusCode != 401 {
		t.Fatalf("after idle expiry: %d %s", resp.StatusCode, body)
	}
}
