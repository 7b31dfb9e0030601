package app

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Attacks on the WebSocket admission of guard.ws and on the feed rules
// of guard.feeds: a handshake the relay upgrades must never skip them.

// headerRewriter sends every request with its headers changed by edit.
type headerRewriter struct {
	base http.RoundTripper
	edit func(http.Header)
}

func (h headerRewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	h.edit(r.Header)
	return h.base.RoundTrip(r)
}

// dialWSVia opens path (a raw request target, escapes kept) with the
// client's cookies, its headers changed by edit.
func (c *client) dialWSVia(ctx context.Context, path string, edit func(http.Header)) (*websocket.Conn, answer, error) {
	hc := *c.http
	if edit != nil {
		hc.Transport = headerRewriter{base: c.http.Transport, edit: edit}
	}
	hdr := http.Header{"Origin": {c.g.base}}
	if c.xff != "" {
		hdr.Set("X-Forwarded-For", c.xff)
	}
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.g.base, "http")+path,
		&websocket.DialOptions{HTTPClient: &hc, HTTPHeader: hdr})
	var a answer
	if resp != nil {
		a.status, a.header = resp.StatusCode, resp.Header
	}
	if conn != nil {
		c.g.t.Cleanup(func() { _ = conn.CloseNow() })
	}
	return conn, a, err
}

// servedFeed reports whether conn got as far as the relay's ready
// message (the socket was admitted and is serving the feed).
func servedFeed(ctx context.Context, conn *websocket.Conn) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return false
		}
		if strings.Contains(string(b), `"type":"ready"`) {
			return true
		}
	}
}

// TestAttackWSAdmissionVariants: with one socket allowed per address and
// that one open, no spelling of the handshake gets a second socket that
// serves the feed: Connection split over two header lines (the relay's
// WebSocket library reads every line), a percent-encoded feed name, or
// an encoded slash before it.
func TestAttackWSAdmissionVariants(t *testing.T) {
	t.Parallel()
	g := startGuarded(t, map[string]string{"TICKGATE_TRUSTED_PROXIES": "127.0.0.1/32"}, `
guard:
  ws: {connects_per_ip: 100/1h, conns_per_ip: 1}
`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := g.client("192.0.2.7")
	c.mustLogin()
	first, a, err := c.dialWS(ctx)
	if err != nil {
		t.Fatalf("first socket: %v (%d %s)", err, a.status, a.body)
	}
	wsReady(ctx, t, first)

	for _, tc := range []struct {
		name, path string
		edit       func(http.Header)
	}{
		{"Connection on two lines", "/ws/demo", func(h http.Header) { h["Connection"] = []string{"keep-alive", "Upgrade"} }},
		{"Connection with upgrade not first", "/ws/demo", func(h http.Header) { h["Connection"] = []string{"keep-alive, Upgrade"} }},
		{"encoded feed name", "/ws/de%6Do", nil},
		{"encoded slash before the feed", "/ws/x%2Fdemo", nil},
		{"encoded slash only", "/ws/%2Fdemo", nil},
	} {
		conn, a, err := c.dialWSVia(ctx, tc.path, tc.edit)
		if err != nil {
			// Not upgraded: fine, as long as it is a clear answer.
			if a.status == 0 || a.status == http.StatusSwitchingProtocols {
				t.Errorf("%s: handshake failed without an answer: %v", tc.name, err)
			}
			continue
		}
		if servedFeed(ctx, conn) {
			t.Errorf("%s: a second socket from the address serves the feed (conns_per_ip 1 bypassed)", tc.name)
		}
		_ = conn.CloseNow()
	}
	if n := g.app.guard.WS().Open(netip.MustParseAddr("192.0.2.7")); n > 1 {
		t.Errorf("guard counts %d open sockets for the address, want at most 1", n)
	}
}

// TestAttackFeedRulesEncodedPath: guard.feeds rules hold for every
// spelling of /ws/{feed} that reaches the relay.
func TestAttackFeedRulesEncodedPath(t *testing.T) {
	t.Parallel()
	g := startGuarded(t, map[string]string{"TICKGATE_TRUSTED_PROXIES": "127.0.0.1/32"}, `
guard:
  feeds:
    demo: {deny: [198.51.100.0/24]}
`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := g.client("198.51.100.9")
	// Login is not under the feed's rules.
	c.mustLogin()
	for _, path := range []string{"/ws/demo", "/ws/de%6Do", "/ws/x%2Fdemo", "/ws/%2Fdemo", "/ws/x%2F..%2Fdemo"} {
		conn, a, err := c.dialWSVia(ctx, path, nil)
		if err != nil {
			if a.status != http.StatusForbidden && a.status != http.StatusNotFound {
				t.Errorf("%s from a denied network: %v (%d), want 403 or 404", path, err, a.status)
			}
			continue
		}
		if servedFeed(ctx, conn) {
			t.Errorf("%s from a denied network serves the feed (guard.feeds.demo.deny bypassed)", path)
		}
		_ = conn.CloseNow()
	}
}

// TestAttackRouteLimitSpellings: once a route limit is used up, no other
// spelling of the path (case, escapes, doubled or trailing slashes,
// another method) reaches the vendor: each is either limited or not
// served at all.
func TestAttackRouteLimitSpellings(t *testing.T) {
	t.Parallel()
	g := startGuarded(t, map[string]string{"TICKGATE_TRUSTED_PROXIES": "127.0.0.1/32"}, `
guard:
  routes:
    "/api/demo/*": {limit: 1/1h}
`)
	c := g.client("192.0.2.8")
	c.mustLogin()
	if a := c.do(http.MethodGet, "/api/demo/v1/quote/AAPL", ""); a.status != http.StatusOK {
		t.Fatalf("first call = %d %s", a.status, a.body)
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/api/demo/v1/quote/AAPL"},
		{http.MethodHead, "/api/demo/v1/quote/AAPL"},
		{http.MethodGet, "/api/demo/v1/quote/AAPL/"},
		{http.MethodGet, "/api/dem%6F/v1/quote/AAPL"},
		{http.MethodGet, "/api/demo%2Fv1/quote/AAPL"},
		{http.MethodGet, "/%61pi/demo/v1/quote/AAPL"},
		{http.MethodGet, "/API/demo/v1/quote/AAPL"},
		{http.MethodGet, "/api//demo/v1/quote/AAPL"},
		{http.MethodGet, "/api/./demo/v1/quote/AAPL"},
		{http.MethodGet, "/api/demo"},
		{http.MethodGet, "/api/demo/"},
	} {
		req, err := http.NewRequest(tc.method, g.base+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", g.base)
		req.Header.Set("X-CSRF", "1")
		req.Header.Set("X-Forwarded-For", c.xff)
		req.Header.Set("X-HTTP-Method-Override", http.MethodGet)
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 300 {
			t.Errorf("%s %s = %d %.100s after the route limit was used up; want it limited or not served",
				tc.method, tc.path, resp.StatusCode, b)
		}
	}
}

// TestAttackExemptPathSpellings: the health checks are exempt from the
// network rules, but only under their own names: a path that merely
// decodes to /healthz ("/health%7A") is routed elsewhere and must be
// refused like any other.
func TestAttackExemptPathSpellings(t *testing.T) {
	t.Parallel()
	g := startGuarded(t, map[string]string{"TICKGATE_TRUSTED_PROXIES": "127.0.0.1/32"}, `
guard:
  deny: [198.51.100.0/24]
`)
	c := g.client("198.51.100.5")
	if a := c.do(http.MethodGet, "/healthz", ""); a.status != http.StatusOK {
		t.Errorf("/healthz from a denied network = %d, want 200 (load balancers)", a.status)
	}
	for _, path := range []string{"/", "/health%7A", "/ready%7A", "/%68ealthz"} {
		wantDenied(t, path+" from a denied network", c.do(http.MethodGet, path, ""), "forbidden_network")
	}
}
