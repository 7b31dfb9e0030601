package frontend

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/tickgate/tickgate/apierr"
)

// This file drives the page in headless Chromium against fakeBackend, a
// small in-memory stand-in for tickgate's /auth, /api and /ws routes that
// follows the contract (DESIGN 1.4, 1.5) and records what the page sent. It
// checks the page's side of the contract without the rest of tickgate; the
// end-to-end browser tests run the real server. Skipped without a browser.

const (
	fakeUser     = "demo"
	fakePassword = "correct horse"
	fakeIdle     = 30 * time.Minute
	waitLong     = 30 * time.Second // generous: a loaded 2-core machine
)

// screenshots, when set, is a directory where TestBrowser saves PNGs of the
// page's main states, for a person to look at.
var screenshots = flag.String("frontend.screenshots", "", "directory for TestBrowser screenshots")

type fakeSession struct {
	user         string
	idleDeadline time.Time
}

type fakeBackend struct {
	mu       sync.Mutex
	sessions map[string]*fakeSession // cookie value → session
	conns    map[*websocket.Conn]string
	events   []string
	changed  chan struct{} // closed and replaced on every new event
	frozen   bool          // activity does not extend sessions
	wg       sync.WaitGroup
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		sessions: map[string]*fakeSession{},
		conns:    map[*websocket.Conn]string{},
		changed:  make(chan struct{}),
	}
}

func (f *fakeBackend) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, fmt.Sprintf(format, args...))
	close(f.changed)
	f.changed = make(chan struct{})
}

// waitFor waits until the recorded events satisfy cond, which runs with the
// lock held.
func (f *fakeBackend) waitFor(t *testing.T, what string, cond func(events []string) bool) {
	t.Helper()
	deadline := time.NewTimer(waitLong)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		done := cond(f.events)
		ch := f.changed
		events := slices.Clone(f.events)
		f.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("backend never saw %s; events:\n%s", what, strings.Join(events, "\n"))
		}
	}
}

// waitEvent waits for an event equal to want.
func (f *fakeBackend) waitEvent(t *testing.T, want string) {
	t.Helper()
	f.waitFor(t, strconv.Quote(want), func(events []string) bool { return slices.Contains(events, want) })
}

// waitMore waits until want has been recorded more than n times.
func (f *fakeBackend) waitMore(t *testing.T, want string, n int) {
	t.Helper()
	f.waitFor(t, fmt.Sprintf("more than %d × %q", n, want), func(events []string) bool { return count(events, want) > n })
}

func count(events []string, want string) int {
	n := 0
	for _, e := range events {
		if e == want {
			n++
		}
	}
	return n
}

func (f *fakeBackend) countEvents(want string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return count(f.events, want)
}

func (f *fakeBackend) setFrozen(frozen bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen = frozen
}

// setIdleLeft moves every session's idle deadline to now+d.
func (f *fakeBackend) setIdleLeft(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sessions {
		s.idleDeadline = time.Now().Add(d)
	}
}

// session returns the request's live session and its cookie value.
func (f *fakeBackend) session(r *http.Request) (*fakeSession, string) {
	c, err := r.Cookie("tickgate")
	if err != nil {
		return nil, ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sessions[c.Value]
	if s == nil || time.Now().After(s.idleDeadline) {
		return nil, ""
	}
	return s, c.Value
}

func (f *fakeBackend) touch(s *fakeSession) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.frozen {
		s.idleDeadline = time.Now().Add(fakeIdle)
	}
}

func (f *fakeBackend) sessionInfo(s *fakeSession) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return map[string]string{
		"user":            s.user,
		"idle_expires_at": s.idleDeadline.UTC().Format(time.RFC3339),
		"expires_at":      time.Now().Add(12 * time.Hour).UTC().Format(time.RFC3339),
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeBackend) handler() http.Handler { return f.handlerWith(Options{}) }

// handlerWith is handler with the page adapted by opts.
func (f *fakeBackend) handlerWith(opts Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", HandlerWith(opts))
	mux.HandleFunc("POST /auth/login", f.login)
	mux.HandleFunc("GET /auth/session", f.getSession)
	mux.HandleFunc("POST /auth/logout", f.logout)
	mux.HandleFunc("GET /api/demo/v1/quote/{sym}", f.quote)
	mux.HandleFunc("GET /ws/demo", f.feed)
	// The strictest policy the page must live with: connect-src narrowed
	// to this exact origin.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; "+
			"img-src 'self' data:; connect-src 'self' ws://"+r.Host+"; frame-ancestors 'none'; "+
			"base-uri 'none'; form-action 'self'")
		mux.ServeHTTP(w, r)
	})
}

func (f *fakeBackend) login(w http.ResponseWriter, r *http.Request) {
	var body struct{ Username, Password string }
	ctype := r.Header.Get("Content-Type")
	csrf := r.Header.Get("X-CSRF")
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		apierr.Respond(w, http.StatusBadRequest, "bad_request", "bad request")
		return
	}
	f.record("login %s csrf=%s type=%s", body.Username, csrf, ctype)
	switch {
	case csrf != "1":
		apierr.Respond(w, http.StatusForbidden, "csrf", "missing CSRF header")
	case body.Username == "flood":
		apierr.Write(w, &apierr.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
			Message: "too many login attempts", RetryAfter: 7})
	case body.Username != fakeUser || body.Password != fakePassword:
		apierr.Respond(w, http.StatusUnauthorized, "invalid_credentials", "invalid username or password")
	default:
		token := rand.Text()
		s := &fakeSession{user: body.Username, idleDeadline: time.Now().Add(fakeIdle)}
		f.mu.Lock()
		f.sessions[token] = s
		f.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "tickgate", Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		writeJSON(w, http.StatusOK, f.sessionInfo(s))
	}
}

func (f *fakeBackend) getSession(w http.ResponseWriter, r *http.Request) {
	s, _ := f.session(r)
	if s == nil {
		apierr.Respond(w, http.StatusUnauthorized, "no_session", "no session")
		return
	}
	writeJSON(w, http.StatusOK, f.sessionInfo(s))
}

func (f *fakeBackend) logout(w http.ResponseWriter, r *http.Request) {
	f.record("logout csrf=%s", r.Header.Get("X-CSRF"))
	if r.Header.Get("X-CSRF") != "1" {
		apierr.Respond(w, http.StatusForbidden, "csrf", "missing CSRF header")
		return
	}
	_, token := f.session(r)
	f.mu.Lock()
	delete(f.sessions, token)
	f.mu.Unlock()
	f.closeFeeds(websocket.StatusCode(4001), "session ended")
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeBackend) quote(w http.ResponseWriter, r *http.Request) {
	sym := r.PathValue("sym")
	f.record("quote %s", sym)
	s, _ := f.session(r)
	if s == nil {
		apierr.Respond(w, http.StatusUnauthorized, "no_session", "no session")
		return
	}
	f.touch(s)
	switch sym {
	case "NOPE":
		apierr.Respond(w, http.StatusNotFound, "not_found", "unknown symbol")
	case "BUSY":
		apierr.Write(w, &apierr.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
			Message: "too many requests", RetryAfter: 9})
	case "DOWN":
		apierr.Respond(w, http.StatusBadGateway, "bad_gateway", "upstream unavailable")
	default:
		writeJSON(w, http.StatusOK, map[string]any{
			"symbol": sym, "bid": 100.1, "ask": 100.3, "last": 100.2, "ts": int64(1733241600123),
		})
	}
}

// broadcast sends one raw text frame to every open feed socket.
func (f *fakeBackend) broadcast(t *testing.T, frame string) {
	t.Helper()
	f.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	if len(conns) == 0 {
		t.Fatal("broadcast: no open feed socket")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	for _, c := range conns {
		if err := c.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
			t.Fatalf("broadcast: %v", err)
		}
	}
}

// closeFeeds closes every open feed socket with code.
func (f *fakeBackend) closeFeeds(code websocket.StatusCode, reason string) {
	f.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	for _, c := range conns {
		_ = c.Close(code, reason)
	}
}

func (f *fakeBackend) feed(w http.ResponseWriter, r *http.Request) {
	s, token := f.session(r)
	if s == nil {
		apierr.Respond(w, http.StatusUnauthorized, "no_session", "no session")
		return
	}
	// The default options accept only a same-origin Origin header.
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	f.wg.Add(1)
	defer f.wg.Done()
	defer c.CloseNow()
	f.mu.Lock()
	f.conns[c] = token
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
	}()
	f.record("ws open")

	ctx := context.Background() // ends when closeFeeds or CloseNow ends the read
	send := func(v any) {
		b, _ := json.Marshal(v)
		_ = c.Write(ctx, websocket.MessageText, b)
	}
	send(map[string]any{"type": "ready", "feed": "demo", "limits": map[string]int{"max_symbols": 50}})
	send(map[string]any{"type": "status", "upstream": "connected"})
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		var msg struct {
			Action  string   `json:"action"`
			Symbols []string `json:"symbols"`
		}
		if err := json.Unmarshal(data, &msg); err != nil {
			send(map[string]string{"type": "error", "code": "bad_message", "message": "not JSON"})
			continue
		}
		f.record("%s", strings.TrimSpace("ws "+msg.Action+" "+strings.Join(msg.Symbols, ",")))
		f.touch(s)
		switch msg.Action {
		case "subscribe":
			if slices.Contains(msg.Symbols, "BAD") {
				send(map[string]string{"type": "error", "code": "invalid_symbol", "message": "invalid symbol"})
				continue
			}
			send(map[string]any{"type": "subscribed", "symbols": msg.Symbols})
			var first, second []map[string]any
			for _, sym := range msg.Symbols {
				first = append(first,
					map[string]any{"ev": "T", "sym": sym, "p": 100.0, "s": 100, "t": 1733241600123},
					map[string]any{"ev": "Q", "sym": sym, "bp": 99.9, "ap": 100.1, "t": 1733241600125})
				second = append(second, map[string]any{"ev": "T", "sym": sym, "p": 101.5, "s": 10, "t": 1733241601000})
			}
			send(map[string]any{"type": "data", "feed": "demo", "messages": first})
			send(map[string]any{"type": "data", "feed": "demo", "messages": second})
		case "unsubscribe":
			send(map[string]any{"type": "unsubscribed", "symbols": msg.Symbols})
		case "ping":
			send(map[string]string{"type": "pong"})
		default:
			send(map[string]string{"type": "error", "code": "bad_message", "message": "unknown action"})
		}
	}
}

// findBrowser returns a Chromium-family executable, or "".
func findBrowser() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// recorderJS runs before the page's own code in every document (DevTools
// scripts are not subject to the page's CSP) and records CSP violations.
const recorderJS = `window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber);
});`

type browser struct {
	t   *testing.T
	ctx context.Context
}

// do runs actions with a deadline so that a stuck page fails the test.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 2*waitLong)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// until waits for a JavaScript expression to become truthy.
func (b *browser) until(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 2*waitLong)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(waitLong)))
	if err != nil {
		b.t.Fatalf("waiting for %s (%s): %v\npage text: %s", what, expr, err, b.eval(`document.body.innerText`))
	}
}

// screenshot saves the page as name.png under -frontend.screenshots.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if *screenshots == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, waitLong)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(*screenshots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) eval(expr string) string {
	ctx, cancel := context.WithTimeout(b.ctx, waitLong)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(v)
}

func (b *browser) fill(id, value string) chromedp.Action[chromedp.Void] {
	return chromedp.SetValue(chromedp.ID(id), value)
}

func (b *browser) click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.CSS(sel))
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func textIncludes(id, s string) string {
	return fmt.Sprintf(`document.getElementById(%s).textContent.includes(%s)`, js(id), js(s))
}

func visible(id string) string {
	return fmt.Sprintf(`!document.getElementById(%s).hidden`, js(id))
}

func cell(sym, field string) string {
	return fmt.Sprintf(`document.querySelector('#ticker tr[data-symbol=%s] [data-field=%s]')`, js(sym), js(field))
}

func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	path := findBrowser()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI: no Chromium found; .ci/run must install the chromium package")
		}
		t.Skip("REQUIRES_CHROMIUM: no Chromium-family browser installed (apt-get install chromium)")
	}

	f := newFakeBackend()
	srv := httptest.NewServer(f.handler())
	t.Cleanup(func() {
		f.closeFeeds(websocket.StatusGoingAway, "test over")
		srv.Close()
		f.wg.Wait()
	})

	var (
		exMu       sync.Mutex
		exceptions []string
	)
	bctx, cancel := chromedp.NewContext(context.Background(),
		chromedp.WithAllocatorOptions(chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
			chromedp.WindowSize(1200, 900)),
		chromedp.WithListener(func(ev any) {
			if e, ok := ev.(*runtime.EventExceptionThrown); ok {
				exMu.Lock()
				defer exMu.Unlock()
				text := e.ExceptionDetails.Text
				if e.ExceptionDetails.Exception != nil {
					text += " " + e.ExceptionDetails.Exception.Description
				}
				exceptions = append(exceptions, text)
			}
		}))
	t.Cleanup(cancel)
	// The first Run starts the browser and must not carry a timeout.
	if err := chromedp.Do(bctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: recorderJS})
		return err
	})); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	b := &browser{t: t, ctx: bctx}

	b.do(chromedp.Navigate(srv.URL))

	// Not signed in: the page asks /auth/session, gets 401, shows the form.
	b.until("login form", visible("login-view")+` && document.getElementById('app-view').hidden`)
	if got := b.eval(`document.getElementById('sso').hidden`); got != "true" {
		t.Errorf("#sso hidden = %s without SSO configured, want true", got)
	}

	t.Run("wrong password", func(t *testing.T) {
		b.t = t
		b.do(b.fill("username", fakeUser), b.fill("password", "wrong"), b.click("#login-submit"))
		b.until("invalid credentials message", textIncludes("login-message", "Invalid username or password"))
		f.waitEvent(t, "login demo csrf=1 type=application/json")
		if got := b.eval(`document.getElementById('password').value`); got != `""` {
			t.Errorf("password field still holds %s after a failed sign-in", got)
		}
	})

	t.Run("rate limited login shows Retry-After", func(t *testing.T) {
		b.t = t
		b.do(b.fill("username", "flood"), b.fill("password", "x"), b.click("#login-submit"))
		b.until("429 message", textIncludes("login-message", "Try again in 7 s"))
		b.screenshot("login-429")
		if got := b.eval(`document.getElementById('login-submit').disabled`); got != "true" {
			t.Errorf("submit button disabled = %s during Retry-After, want true", got)
		}
		// Let the test go on without waiting 7 s.
		b.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('login-submit').disabled = false`))
	})

	signIn := func(t *testing.T) {
		t.Helper()
		b.do(b.fill("username", fakeUser), b.fill("password", fakePassword), b.click("#login-submit"))
		b.until("app view", visible("app-view")+` && document.getElementById('login-view').hidden`)
	}

	t.Run("sign in shows the app and the default ticker", func(t *testing.T) {
		b.t = t
		opens := f.countEvents("ws open")
		signIn(t)
		f.waitEvent(t, "ws subscribe AAPL,MSFT")
		if f.countEvents("ws open") != opens+1 {
			t.Errorf("ws opens = %d, want %d", f.countEvents("ws open"), opens+1)
		}
		b.until("user name", textIncludes("user", fakeUser))
		b.until("idle countdown", `/Idle timeout in (29:[0-5]\d|30:00)/.test(document.getElementById('session-expiry').textContent)`)
		b.until("connection status", `document.getElementById('connection-status').dataset.state === 'live'`)
		for _, sym := range []string{"AAPL", "MSFT"} {
			b.until(sym+" last price", cell(sym, "last")+`?.textContent === '101.50'`)
			b.until(sym+" up class", cell(sym, "last")+`.classList.contains('up')`)
			b.until(sym+" bid", cell(sym, "bid")+`.textContent === '99.90'`)
			b.until(sym+" ask", cell(sym, "ask")+`.textContent === '100.10'`)
		}
		if got := b.eval(`document.querySelectorAll('#ticker tr').length`); got != "2" {
			t.Errorf("ticker rows = %s, want 2", got)
		}
	})

	t.Run("quote", func(t *testing.T) {
		b.t = t
		b.do(b.fill("quote-symbol", " aapl "), b.click("#quote-submit"))
		f.waitEvent(t, "quote AAPL")
		b.until("quote fields", `(() => {
			const q = (f) => document.querySelector('#quote-result [data-field=' + f + ']')?.textContent;
			return q('symbol') === 'AAPL' && q('bid') === '100.10' && q('ask') === '100.30' && q('last') === '100.20' && q('time') !== '—';
		})()`)

		for _, tc := range []struct{ sym, want string }{
			{"NOPE", "unknown symbol"},
			{"BUSY", "too many requests Try again in 9 s."},
			{"DOWN", "upstream unavailable"},
		} {
			b.do(b.fill("quote-symbol", tc.sym), b.click("#quote-submit"))
			b.until(tc.sym+" error", textIncludes("quote-result", tc.want)+` && document.getElementById('quote-result').classList.contains('error')`)
		}

		// A symbol is one path segment, never a way out of the quote route.
		b.do(b.fill("quote-symbol", "a/../b?x"), b.click("#quote-submit"))
		f.waitEvent(t, "quote A/../B?X")
	})

	t.Run("subscribe and unsubscribe", func(t *testing.T) {
		b.t = t
		b.do(b.fill("subscribe-symbol", "tsla"), b.click("#subscribe-submit"))
		f.waitEvent(t, "ws subscribe TSLA")
		b.until("TSLA row", cell("TSLA", "last")+`?.textContent === '101.50'`)

		// Already there: refused locally.
		b.do(b.fill("subscribe-symbol", "TSLA"), b.click("#subscribe-submit"))
		b.until("duplicate message", textIncludes("ticker-message", "already"))

		// Refused by the relay: the error is shown and the row goes away.
		b.do(b.fill("subscribe-symbol", "BAD"), b.click("#subscribe-submit"))
		f.waitEvent(t, "ws subscribe BAD")
		b.until("invalid symbol message", textIncludes("ticker-message", "invalid symbol"))
		b.screenshot("app")
		b.until("BAD row removed", `!document.querySelector('#ticker tr[data-symbol="BAD"]')`)

		b.do(b.click(`#ticker tr[data-symbol="MSFT"] button`))
		f.waitEvent(t, "ws unsubscribe MSFT")
		b.until("MSFT row removed", `!document.querySelector('#ticker tr[data-symbol="MSFT"]')`)
		if got := b.eval(`[...document.querySelectorAll('#ticker tr')].map((r) => r.dataset.symbol).join()`); got != `"AAPL,TSLA"` {
			t.Errorf("ticker rows = %s, want AAPL,TSLA", got)
		}
	})

	t.Run("still here", func(t *testing.T) {
		b.t = t
		// The server says the session is idle and near its end; any action
		// makes the page re-read it.
		f.setFrozen(true)
		f.setIdleLeft(20 * time.Second)
		b.do(b.click(`#ticker tr[data-symbol="TSLA"] button`))
		b.until("idle notice", visible("idle-notice"))
		b.screenshot("idle-notice")
		f.setFrozen(false)
		pings := f.countEvents("ws ping")
		b.do(b.click("#still-here"))
		f.waitMore(t, "ws ping", pings)
		b.until("idle notice hidden", `document.getElementById('idle-notice').hidden`)
		b.until("countdown back up", `/Idle timeout in (29:[0-5]\d|30:00)/.test(document.getElementById('session-expiry').textContent)`)
	})

	t.Run("server pushes", func(t *testing.T) {
		b.t = t
		f.broadcast(t, `{"type":"status","upstream":"reconnecting"}`)
		b.until("upstream reconnecting", textIncludes("connection-status", "Vendor feed reconnecting"))
		f.broadcast(t, `{"type":"status","upstream":"connected"}`)
		b.until("upstream connected", `document.getElementById('connection-status').dataset.state === 'live'`)

		f.broadcast(t, `{"type":"error","code":"rate_limited","message":"slow down"}`)
		b.until("relay error", textIncludes("ticker-message", "slow down"))

		// Junk is ignored without an exception; the good tick after it lands.
		for _, frame := range []string{
			`not json`, `null`, `42`, `[]`, `{"type":"data"}`, `{"type":"data","messages":"x"}`,
			`{"type":"nonsense"}`, `{"type":"error"}`, `{"type":"subscribed","symbols":[1,null,"ZZZ"]}`,
			`{"type":"data","feed":"demo","messages":[null,1,"x",[],{"sym":5},{"sym":"AAPL","p":"NaN","bp":null},{"sym":"NOTSUBSCRIBED","p":1}]}`,
			`{"type":"data","feed":"demo","messages":[{"ev":"T","sym":"AAPL","p":99.25,"s":1,"t":1733241602000}]}`,
		} {
			f.broadcast(t, frame)
		}
		b.until("AAPL after junk", cell("AAPL", "last")+`?.textContent === '99.25' && `+cell("AAPL", "last")+`.classList.contains('down')`)
		if got := b.eval(`document.querySelectorAll('#ticker tr[data-symbol="NOTSUBSCRIBED"], #ticker tr[data-symbol="ZZZ"]').length`); got != "0" {
			t.Errorf("pushed data created %s rows for symbols never subscribed", got)
		}
	})

	t.Run("feed reconnects and resubscribes", func(t *testing.T) {
		b.t = t
		opens := f.countEvents("ws open")
		subs := f.countEvents("ws subscribe AAPL")
		f.closeFeeds(websocket.StatusInternalError, "boom")
		b.until("reconnecting status", `document.getElementById('connection-status').dataset.state !== 'live'`)
		b.screenshot("reconnecting")
		f.waitMore(t, "ws open", opens)
		f.waitMore(t, "ws subscribe AAPL", subs)
		b.until("live again", `document.getElementById('connection-status').dataset.state === 'live'`)
	})

	t.Run("close 4001 ends the session", func(t *testing.T) {
		b.t = t
		opens := f.countEvents("ws open")
		f.closeFeeds(websocket.StatusCode(4001), "session expired")
		b.until("login form after 4001", visible("login-view")+` && `+textIncludes("login-message", "session has ended"))
		if got := b.eval(`document.querySelectorAll('#ticker tr').length + document.getElementById('quote-result').childElementCount`); got != "0" {
			t.Errorf("old session's data still on screen (%s elements)", got)
		}
		// No reconnect after 4001: wait a while longer than the first
		// backoff step and check no new socket was opened.
		b.do(chromedp.Evaluate[chromedp.Void](`new Promise((r) => setTimeout(r, 1500))`, chromedp.EvalAwaitPromise))
		if got := f.countEvents("ws open"); got != opens {
			t.Errorf("ws opens after 4001 = %d, want %d (no reconnect)", got, opens)
		}
	})

	t.Run("policy and try-later closes keep the session", func(t *testing.T) {
		b.t = t
		signIn(t)
		opens := f.countEvents("ws open")
		f.waitMore(t, "ws subscribe AAPL,MSFT", 0)
		f.closeFeeds(websocket.StatusCode(4008), "policy")
		b.until("4008 message", textIncludes("connection-status", "too many messages")+
			` && /Reconnecting in ([2-5]\d|60) s/.test(document.getElementById('connection-status').textContent)`)
		b.until("still signed in", visible("app-view"))

		// Coming back online skips the wait.
		b.do(chromedp.Evaluate[chromedp.Void](`window.dispatchEvent(new Event('online'))`))
		f.waitMore(t, "ws open", opens)
		b.until("live after online", `document.getElementById('connection-status').dataset.state === 'live'`)

		f.closeFeeds(websocket.StatusTryAgainLater, "busy")
		b.until("1013 message", textIncludes("connection-status", "not available right now"))
		b.until("still signed in", visible("app-view"))
	})

	t.Run("logout", func(t *testing.T) {
		b.t = t
		b.do(b.click("#logout"))
		f.waitEvent(t, "logout csrf=1")
		b.until("login form after logout", visible("login-view")+` && `+textIncludes("login-message", "signed out"))
		b.until("account bar hidden", `document.getElementById('account').hidden`)
	})

	t.Run("idle expiry", func(t *testing.T) {
		b.t = t
		signIn(t)
		f.setFrozen(true)
		defer f.setFrozen(false)
		f.setIdleLeft(2 * time.Second)
		// An action makes the page re-read the (now short) expiry.
		b.do(b.fill("quote-symbol", "AAPL"), b.click("#quote-submit"))
		b.until("signed out after inactivity", visible("login-view")+` && `+textIncludes("login-message", "inactivity"))
	})

	t.Run("reload keeps nothing in storage", func(t *testing.T) {
		b.t = t
		if got := b.eval(`localStorage.length + sessionStorage.length`); got != "0" {
			t.Errorf("web storage holds %s items", got)
		}
		b.do(chromedp.Reload())
		b.until("login form after reload", visible("login-view"))
	})

	t.Run("sso link when configured", func(t *testing.T) {
		b.t = t
		sso := httptest.NewServer(f.handlerWith(Options{SSOLoginPath: "/auth/oidc/login"}))
		defer sso.Close()
		b.do(chromedp.Navigate(sso.URL))
		b.until("sso link", visible("login-view")+` && `+visible("sso"))
		if got := b.eval(`document.getElementById('sso-login').getAttribute('href')`); got != `"/auth/oidc/login"` {
			t.Errorf("#sso-login href = %s", got)
		}
		if got := b.eval(`document.getElementById('sso-login').textContent`); got != `"Sign in with SSO"` {
			t.Errorf("#sso-login text = %s", got)
		}
	})

	t.Run("page follows the server's feeds and quote route", func(t *testing.T) {
		b.t = t
		for _, tc := range []struct {
			opts Options
			want string // quote card hidden, ticker card hidden, feed choice hidden, options
		}{
			{Options{}, `[false,false,true,"demo"]`},
			{Options{Feeds: []string{"stocks", "fx"}, QuotePath: "/api/acme/quote/{symbol}"}, `[false,false,false,"stocks,fx"]`},
			{Options{Feeds: []string{"stocks"}}, `[true,false,true,"stocks"]`},
			{Options{Feeds: []string{}}, `[true,true,true,""]`},
		} {
			srv := httptest.NewServer(f.handlerWith(tc.opts))
			t.Cleanup(srv.Close)
			b.do(chromedp.Navigate(srv.URL))
			b.until("login form", visible("login-view"))
			got := b.eval(`[document.getElementById('quote-card').hidden, document.getElementById('ticker-card').hidden,
				document.getElementById('feed-field').hidden,
				[...document.querySelectorAll('#feed-select option')].map((o) => o.value).join()]`)
			if got != tc.want {
				t.Errorf("%+v: got %s, want %s", tc.opts, got, tc.want)
			}
		}
	})

	b.t = t
	if got := b.eval(`window.__csp`); got != "[]" {
		t.Errorf("CSP violations: %s", got)
	}
	exMu.Lock()
	defer exMu.Unlock()
	if len(exceptions) > 0 {
		t.Errorf("uncaught exceptions in the page:\n%s", strings.Join(exceptions, "\n"))
	}
}
