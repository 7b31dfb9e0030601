package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tickgate/tickgate/internal/redistest"
	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/memstore"
	"github.com/tickgate/tickgate/session/redisstore"
)

// ticketAnswer is the body of POST /auth/ws-ticket.
type ticketAnswer struct {
	Ticket    string `json:"ticket"`
	ExpiresAt string `json:"expires_at"`
}

func (c *client) ticket() string {
	c.g.t.Helper()
	a := c.do(http.MethodPost, "/auth/ws-ticket", "")
	if a.status != http.StatusOK {
		c.g.t.Fatalf("POST /auth/ws-ticket = %d %s", a.status, a.body)
	}
	var tk ticketAnswer
	if err := json.Unmarshal([]byte(a.body), &tk); err != nil || len(tk.Ticket) != ticketLen {
		c.g.t.Fatalf("ticket answer %s: %v", a.body, err)
	}
	exp, err := time.Parse(time.RFC3339, tk.ExpiresAt)
	if err != nil || time.Until(exp) > TicketTTL+time.Second {
		c.g.t.Fatalf("expires_at %q: %v", tk.ExpiresAt, err)
	}
	if cc := a.header.Get("Cache-Control"); cc != "no-store" {
		c.g.t.Fatalf("Cache-Control %q, want no-store", cc)
	}
	return tk.Ticket
}

// dialTicket opens /ws/demo?ticket=... as a client without cookies;
// origin "" sends no Origin header (a mobile app).
func dialTicket(ctx context.Context, t *testing.T, base, ticket, origin string) (*websocket.Conn, answer, error) {
	t.Helper()
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	u := "ws" + strings.TrimPrefix(base, "http") + "/ws/demo"
	if ticket != "" {
		u += "?ticket=" + url.QueryEscape(ticket)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}, HTTPHeader: hdr})
	var a answer
	if resp != nil {
		a.status, a.header = resp.StatusCode, resp.Header
		if err != nil && resp.Body != nil {
			b, _ := io.ReadAll(resp.Body)
			a.body = string(b)
		}
	}
	if conn != nil {
		t.Cleanup(func() { _ = conn.CloseNow() })
	}
	return conn, a, err
}

func wantRefused(t *testing.T, what string, err error, a answer, status int, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: upgraded, want %d %s", what, status, code)
	}
	if a.status != status || a.code() != code {
		t.Fatalf("%s = %d %s, want %d %s", what, a.status, a.body, status, code)
	}
}

func TestTicketIssue(t *testing.T) {
	g := startScoped(t, scopedOpts{roles: map[string][]string{"demo": nil}})
	anon := g.client("")
	if a := anon.do(http.MethodPost, "/auth/ws-ticket", ""); a.status != http.StatusUnauthorized || a.code() != "no_session" {
		t.Fatalf("without a session = %d %s, want 401 no_session", a.status, a.body)
	}
	c := g.client("")
	c.mustLoginAs("demo")
	noCSRF := &client{g: g, http: c.http}
	req, _ := http.NewRequest(http.MethodPost, g.base+"/auth/ws-ticket", nil)
	resp, err := noCSRF.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("without X-CSRF = %d, want 403", resp.StatusCode)
	}
	if a := c.do(http.MethodGet, "/auth/ws-ticket", ""); a.status != http.StatusMethodNotAllowed {
		t.Fatalf("GET = %d %s, want 405", a.status, a.body)
	}
	if a, b := c.ticket(), c.ticket(); a == b {
		t.Fatal("two tickets are equal")
	}
}

// TestTicketSingleUse: a ticket opens one socket, without cookie or Origin
// (a mobile client), and never a second.
func TestTicketSingleUse(t *testing.T) {
	g := startScoped(t, scopedOpts{roles: map[string][]string{"demo": nil}})
	c := g.client("")
	c.mustLoginAs("demo")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	tk := c.ticket()
	conn, a, err := dialTicket(ctx, t, g.base, tk, "")
	if err != nil {
		t.Fatalf("first use: %v (%d %s)", err, a.status, a.body)
	}
	wsNext(ctx, t, conn, "ready")
	wsSend(ctx, t, conn, `{"action":"subscribe","symbols":["AAPL"]}`)
	wsNext(ctx, t, conn, "subscribed")

	_, a, err = dialTicket(ctx, t, g.base, tk, "")
	wantRefused(t, "second use", err, a, http.StatusUnauthorized, codeBadTicket)

	// Concurrent redemptions of one ticket: exactly one upgrade.
	tk = c.ticket()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		upgraded int
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, _, err := dialTicket(ctx, t, g.base, tk, "")
			if err == nil {
				_ = conn.CloseNow()
				mu.Lock()
				upgraded++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if upgraded != 1 {
		t.Fatalf("%d concurrent redemptions upgraded, want 1", upgraded)
	}

	if strings.Contains(g.logs.String(), tk) {
		t.Fatal("a ticket appears in the log")
	}
	if !strings.Contains(g.logs.String(), `"msg":"ws ticket refused"`) {
		t.Fatal("refused tickets are not logged")
	}
}

// TestTicketRefusals: no cookie and no ticket is never upgraded; wrong
// and malformed tickets are 401; browsers keep the Origin rules.
func TestTicketRefusals(t *testing.T) {
	g := startScoped(t, scopedOpts{roles: map[string][]string{"demo": nil}})
	c := g.client("")
	c.mustLoginAs("demo")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, a, err := dialTicket(ctx, t, g.base, "", g.base)
	wantRefused(t, "no cookie, no ticket", err, a, http.StatusUnauthorized, "no_session")
	_, a, err = dialTicket(ctx, t, g.base, "", "")
	wantRefused(t, "no cookie, no ticket, no Origin", err, a, http.StatusUnauthorized, "no_session")

	wrong := strings.Repeat("A", ticketLen)
	_, a, err = dialTicket(ctx, t, g.base, wrong, "")
	wantRefused(t, "unknown ticket", err, a, http.StatusUnauthorized, codeBadTicket)
	for _, bad := range []string{"short", strings.Repeat("!", ticketLen), strings.Repeat("A", ticketLen+1)} {
		_, a, err = dialTicket(ctx, t, g.base, bad, "")
		wantRefused(t, "malformed ticket", err, a, http.StatusUnauthorized, codeBadTicket)
	}
	// Two ticket parameters.
	tk := c.ticket()
	_, a, err = dialTicket(ctx, t, g.base, tk+"&ticket="+tk, "")
	wantRefused(t, "two tickets", err, a, http.StatusUnauthorized, codeBadTicket)

	// A browser's ticket still needs an allowed Origin.
	tk = c.ticket()
	_, a, err = dialTicket(ctx, t, g.base, tk, "https://evil.example")
	wantRefused(t, "ticket from a foreign origin", err, a, http.StatusForbidden, "origin")
	tk = c.ticket()
	conn, a, err := dialTicket(ctx, t, g.base, tk, g.base)
	if err != nil {
		t.Fatalf("ticket from the app's origin: %v (%d %s)", err, a.status, a.body)
	}
	wsNext(ctx, t, conn, "ready")

	// A cookie without Origin is refused: only a ticket stands in for it.
	hdr := http.Header{}
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.base, "http")+"/ws/demo",
		&websocket.DialOptions{HTTPClient: c.http, HTTPHeader: hdr})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cookie without Origin: err %v, response %v, want 403", err, resp)
	}
}

// TestTicketBoundToSession: a ticket of a session that has ended is
// worthless.
func TestTicketBoundToSession(t *testing.T) {
	g := startScoped(t, scopedOpts{roles: map[string][]string{"demo": nil}})
	c := g.client("")
	c.mustLoginAs("demo")
	tk := c.ticket()
	if a := c.do(http.MethodPost, "/auth/logout", ""); a.status != http.StatusNoContent {
		t.Fatalf("logout = %d %s", a.status, a.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, a, err := dialTicket(ctx, t, g.base, tk, "")
	wantRefused(t, "ticket of a logged-out session", err, a, http.StatusUnauthorized, codeBadTicket)
}

// TestTicketExpiry: past TicketTTL (the store's clock) a ticket is refused.
func TestTicketExpiry(t *testing.T) {
	var (
		mu  sync.Mutex
		off time.Duration
	)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(off) }
	ms, err := memstore.New(memstore.Config{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	g := startScoped(t, scopedOpts{roles: map[string][]string{"demo": nil}, store: ms})
	c := g.client("")
	c.mustLoginAs("demo")
	tk := c.ticket()
	mu.Lock()
	off = TicketTTL + time.Millisecond
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, a, err := dialTicket(ctx, t, g.base, tk, "")
	wantRefused(t, "expired ticket", err, a, http.StatusUnauthorized, codeBadTicket)
	// A fresh one, at the moved clock, works.
	conn, a, err := dialTicket(ctx, t, g.base, c.ticket(), "")
	if err != nil {
		t.Fatalf("fresh ticket: %v (%d %s)", err, a.status, a.body)
	}
	wsNext(ctx, t, conn, "ready")
}

// TestTicketAcrossReplicas: with the Redis store, a ticket issued by one
// replica is redeemed by another, once.
func TestTicketAcrossReplicas(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t, "tickgate-test:ticket:")
	open := func() session.Store {
		st, err := redisstore.New(redisstore.Config{URL: url, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	a := startScoped(t, scopedOpts{roles: map[string][]string{"demo": nil}, store: open()})
	b := startScoped(t, scopedOpts{roles: map[string][]string{"demo": nil}, store: open()})
	c := a.client("")
	c.mustLoginAs("demo")
	tk := c.ticket()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, ans, err := dialTicket(ctx, t, b.base, tk, "")
	if err != nil {
		t.Fatalf("redeem on the other replica: %v (%d %s)", err, ans.status, ans.body)
	}
	wsNext(ctx, t, conn, "ready")
	_, ans, err = dialTicket(ctx, t, a.base, tk, "")
	wantRefused(t, "second use on the first replica", err, ans, http.StatusUnauthorized, codeBadTicket)
}
