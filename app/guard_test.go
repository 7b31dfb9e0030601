package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/marketsim"
	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/memstore"
)

// These tests serve the whole App on a loopback listener and talk to it
// as browsers do (cookies, Origin, X-CSRF), with a marketsim behind it.
// Clients other than 127.0.0.1 are simulated the way production sees
// them: TICKGATE_TRUSTED_PROXIES names the loopback peer as a proxy, and
// X-Forwarded-For names the client.

const (
	guardTestKey      = "guard-test-vendor-key-0123"
	guardTestPassword = "guard test password 42"
)

// lockedBuffer is a log sink safe for the server and the test at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// guarded is one App serving on loopback.
type guarded struct {
	t    *testing.T
	app  *App
	base string // http://127.0.0.1:port
	logs *lockedBuffer
}

// feedStub lets config.Parse accept a guard section naming the feed demo.
const feedStub = "feeds:\n  demo: {url: ws://127.0.0.1:1/v1/stream, key: {secret: K}, adapter: {preset: marketsim}}\n"

// startGuarded serves an App in demo configuration against a fresh
// marketsim, with settings env and the guard section guardYAML.
func startGuarded(t *testing.T, env map[string]string, guardYAML string) *guarded {
	t.Helper()
	sim, err := marketsim.New(marketsim.Options{Keys: []string{guardTestKey}, RESTRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s = s.WithListenAddr(ln.Addr().String())
	file := config.Demo(sim.URL())
	if guardYAML != "" {
		parsed, err := config.Parse([]byte(feedStub+guardYAML), func(string) string { return "" })
		if err != nil {
			t.Fatalf("guard section: %v", err)
		}
		file.Guard = parsed.Guard
	}
	cache := secrets.NewCache(secrets.NewEnv(func(string) string { return guardTestKey }), secrets.CacheConfig{})
	if err := cache.Load(context.Background(), config.DemoKeySecret); err != nil {
		t.Fatal(err)
	}
	users, _ := session.NewUsers(nil)
	hash, err := session.HashPasswordWith(guardTestPassword, session.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	if err := users.Add("demo", hash); err != nil {
		t.Fatal(err)
	}
	store, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	a, err := New(Config{
		Settings: s, File: file, Secrets: cache, Users: users, Store: store,
		Logger:    slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		GeoReload: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(a.Handler())
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() { srv.Close(); a.Close(); _ = store.Close(); cache.Close() })
	return &guarded{t: t, app: a, base: srv.URL, logs: logs}
}

// client is one browser, at the address X-Forwarded-For names ("": the
// loopback peer itself).
type client struct {
	g    *guarded
	xff  string
	http *http.Client
}

func (g *guarded) client(xff string) *client {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	g.t.Cleanup(tr.CloseIdleConnections)
	return &client{g: g, xff: xff, http: &http.Client{Jar: jar, Transport: tr, Timeout: 20 * time.Second}}
}

type answer struct {
	status int
	header http.Header
	body   string
}

// code is the error code of a JSON error body, or "".
func (a answer) code() string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal([]byte(a.body), &e)
	return e.Error.Code
}

func (c *client) do(method, path, body string, hdr ...string) answer {
	c.g.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.g.base+path, rd)
	if err != nil {
		c.g.t.Fatal(err)
	}
	req.Header.Set("Origin", c.g.base)
	req.Header.Set("X-CSRF", "1")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.xff != "" {
		req.Header.Set("X-Forwarded-For", c.xff)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func (c *client) login(password string) answer {
	c.g.t.Helper()
	b, _ := json.Marshal(map[string]string{"username": "demo", "password": password})
	return c.do(http.MethodPost, "/auth/login", string(b))
}

func (c *client) mustLogin() {
	c.g.t.Helper()
	if a := c.login(guardTestPassword); a.status != http.StatusOK {
		c.g.t.Fatalf("login from %q = %d %s", c.xff, a.status, a.body)
	}
}

// dialWS opens /ws/demo; on a refused handshake it returns the answer.
func (c *client) dialWS(ctx context.Context) (*websocket.Conn, answer, error) {
	hdr := http.Header{"Origin": {c.g.base}}
	if c.xff != "" {
		hdr.Set("X-Forwarded-For", c.xff)
	}
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.g.base, "http")+"/ws/demo",
		&websocket.DialOptions{HTTPClient: c.http, HTTPHeader: hdr})
	var a answer
	if resp != nil {
		a.status, a.header = resp.StatusCode, resp.Header
		if err != nil && resp.Body != nil {
			b, _ := io.ReadAll(resp.Body)
			a.body = string(b)
		}
	}
	if conn != nil {
		c.g.t.Cleanup(func() { _ = conn.CloseNow() })
	}
	return conn, a, err
}

// wsReady reads until the relay's ready message.
func wsReady(ctx context.Context, t *testing.T, conn *websocket.Conn) {
	t.Helper()
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for ready: %v", err)
		}
		if strings.Contains(string(b), `"type":"ready"`) {
			return
		}
	}
}

// closeCode reads until the socket closes and returns its close code.
func closeCode(ctx context.Context, conn *websocket.Conn) websocket.StatusCode {
	for {
		if _, _, err := conn.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// metric returns the value of one sample of the admin /metrics page.
func (g *guarded) metric(t *testing.T, sample string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	g.app.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no sample %s in /metrics", sample)
	return 0
}

func wantDenied(t *testing.T, what string, a answer, code string) {
	t.Helper()
	if a.status != http.StatusForbidden || a.code() != code {
		t.Errorf("%s = %d %s, want 403 %s", what, a.status, a.body, code)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want JSON", what, ct)
	}
}

// TestGuardDeniesNetworks: a denied CIDR gets 403 forbidden_network on
// REST, login and the WebSocket handshake, before authentication (the
// right password does not help); health checks stay reachable for load
// balancers; each denial is logged and counted; route and feed rules
// refuse only their own paths.
func TestGuardDeniesNetworks(t *testing.T) {
	t.Parallel()
	g := startGuarded(t, map[string]string{"TICKGATE_TRUSTED_PROXIES": "127.0.0.1/32"}, `
guard:
  deny: [198.51.100.0/24]
  routes:
    "/auth/login": {deny: [192.0.2.64/26]}
  feeds:
    demo: {deny: [192.0.2.128/25]}
`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	denied := g.client("198.51.100.7")
	wantDenied(t, "REST from a denied network", denied.do(http.MethodGet, "/api/demo/v1/quote/AAPL", ""), "forbidden_network")
	wantDenied(t, "login from a denied network", denied.login(guardTestPassword), "forbidden_network")
	wantDenied(t, "page from a denied network", denied.do(http.MethodGet, "/", ""), "forbidden_network")
	if _, a, err := denied.dialWS(ctx); err == nil {
		t.Error("WebSocket from a denied network was upgraded")
	} else {
		wantDenied(t, "WebSocket from a denied network", a, "forbidden_network")
	}
	if a := denied.do(http.MethodGet, "/healthz", ""); a.status != http.StatusOK {
		t.Errorf("healthz from a denied network = %d, want 200 (exempt)", a.status)
	}
	if got := g.metric(t, `tickgate_guard_denials_total{reason="forbidden_network",scope="global"}`); got != 4 {
		t.Errorf("global denials counted = %v, want 4", got)
	}
	logs := g.logs.String()
	if n := strings.Count(logs, `"msg":"request denied by network rules"`); n != 4 {
		t.Errorf("%d denial log lines, want 4", n)
	}
	if !strings.Contains(logs, `"client_ip":"198.51.100.7"`) {
		t.Error("denial log lines do not name the client address")
	}
	if strings.Contains(logs, guardTestPassword) {
		t.Error("the password appears in the log")
	}

	// Route rule: login refused, the rest served.
	fenced := g.client("192.0.2.70")
	wantDenied(t, "login from a network the login route denies", fenced.login(guardTestPassword), "forbidden_network")
	if a := fenced.do(http.MethodGet, "/auth/session", ""); a.status != http.StatusUnauthorized {
		t.Errorf("session info from that network = %d, want 401 (route rule only on /auth/login)", a.status)
	}

	// Feed rule: REST and login served, the feed refused.
	noFeed := g.client("192.0.2.200")
	noFeed.mustLogin()
	if a := noFeed.do(http.MethodGet, "/api/demo/v1/quote/AAPL", ""); a.status != http.StatusOK {
		t.Errorf("REST from a network the feed denies = %d %s, want 200", a.status, a.body)
	}
	if _, a, err := noFeed.dialWS(ctx); err == nil {
		t.Error("feed socket from a network the feed denies was upgraded")
	} else {
		wantDenied(t, "feed socket from a network the feed denies", a, "forbidden_network")
	}
	for _, s := range []string{`scope="route"`, `scope="feed"`} {
		if got := g.metric(t, `tickgate_guard_denials_total{reason="forbidden_network",`+s+`}`); got != 1 {
			t.Errorf("%s denials counted = %v, want 1", s, got)
		}
	}

	// Everyone else: the whole path works.
	ok := g.client("192.0.2.10")
	ok.mustLogin()
	conn, a, err := ok.dialWS(ctx)
	if err != nil {
		t.Fatalf("WebSocket from an allowed network: %v (%d %s)", err, a.status, a.body)
	}
	wsReady(ctx, t, conn)
}

// TestGuardLoopbackDenied: with no trusted proxies the TCP peer is the
// client: denying loopback refuses the test's own requests.
func TestGuardLoopbackDenied(t *testing.T) {
	t.Parallel()
	g := startGuarded(t, nil, "guard:\n  allow: [10.0.0.0/8]\n")
	c := g.client("10.1.2.3") // spoofed: no proxy is trusted
	wantDenied(t, "loopback peer outside the allow list", c.do(http.MethodGet, "/auth/session", ""), "forbidden_network")
	if a := c.do(http.MethodGet, "/readyz", ""); a.status != http.StatusOK {
		t.Errorf("readyz = %d, want 200 (exempt)", a.status)
	}
}

// TestGuardRouteLimit: a guard.routes limit applies on top of the
// per-IP and per-session limits, keyed as configured, with the
// contract's headers.
func TestGuardRouteLimit(t *testing.T) {
	t.Parallel()
	g := startGuarded(t, map[string]string{"TICKGATE_TRUSTED_PROXIES": "127.0.0.1/32"}, `
guard:
  routes:
    "/api/*": {limit: 3/1h, by: session}
    "/auth/session": {limit: 2/1h}
`)
	alice := g.client("192.0.2.1")
	alice.mustLogin()
	for i := 1; i <= 3; i++ {
		a := alice.do(http.MethodGet, "/api/demo/v1/quote/AAPL", "")
		if a.status != http.StatusOK {
			t.Fatalf("API call %d = %d %s", i, a.status, a.body)
		}
		if got, want := a.header.Get("X-RateLimit-Remaining"), strconv.Itoa(3-i); got != want {
			t.Errorf("API call %d: X-RateLimit-Remaining = %q, want %q (the route limit is the tightest)", i, got, want)
		}
	}
	a := alice.do(http.MethodGet, "/api/demo/v1/quote/AAPL", "")
	if a.status != http.StatusTooManyRequests || a.code() != "rate_limited" {
		t.Fatalf("API call 4 = %d %s, want 429 rate_limited", a.status, a.body)
	}
	checkLimitHeaders(t, "API call 4", a, 3)

	// By session: another session from the same address has its own bucket.
	bob := g.client("192.0.2.1")
	bob.mustLogin()
	if a := bob.do(http.MethodGet, "/api/demo/v1/quote/AAPL", ""); a.status != http.StatusOK {
		t.Errorf("another session's API call = %d %s, want 200", a.status, a.body)
	}

	// By address (the default): two calls, then 429, whatever the session.
	carol := g.client("192.0.2.99")
	for i := 1; i <= 2; i++ {
		if a := carol.do(http.MethodGet, "/auth/session", ""); a.status != http.StatusUnauthorized {
			t.Fatalf("session info %d = %d %s", i, a.status, a.body)
		}
	}
	if a := carol.do(http.MethodGet, "/auth/session", ""); a.status != http.StatusTooManyRequests {
		t.Errorf("session info 3 = %d %s, want 429", a.status, a.body)
	}
	if got := g.metric(t, `tickgate_ratelimit_rejections_total{scope="route:/api/*"}`); got != 1 {
		t.Errorf("route rejections counted = %v, want 1", got)
	}
}

// checkLimitHeaders checks a 429's X-RateLimit-* and Retry-After.
func checkLimitHeaders(t *testing.T, what string, a answer, limit int) {
	t.Helper()
	h := a.header
	if got := h.Get("X-RateLimit-Limit"); got != strconv.Itoa(limit) {
		t.Errorf("%s: X-RateLimit-Limit = %q, want %d", what, got, limit)
	}
	if got := h.Get("X-RateLimit-Remaining"); got != "0" {
		t.Errorf("%s: X-RateLimit-Remaining = %q, want 0", what, got)
	}
	reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil || reset <= time.Now().Unix()-1 {
		t.Errorf("%s: X-RateLimit-Reset = %q, want a future Unix second", what, h.Get("X-RateLimit-Reset"))
	}
	if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("%s: Retry-After = %q, want whole seconds >= 1", what, h.Get("Retry-After"))
	}
}

// TestGuardClientAddress: X-Forwarded-For from an untrusted peer changes
// nothing; behind trusted proxies the right-most untrusted entry is the
// client, across several header lines.
func TestGuardClientAddress(t *testing.T) {
	t.Parallel()
	t.Run("untrusted peer", func(t *testing.T) {
		t.Parallel()
		g := startGuarded(t, map[string]string{"TICKGATE_LIMIT_IP": "3/1h"}, "guard:\n  deny: [203.0.113.0/24]\n")
		for i := 1; i <= 3; i++ {
			c := g.client("192.0.2." + strconv.Itoa(i)) // a new spoofed address each time
			if a := c.do(http.MethodGet, "/auth/session", ""); a.status != http.StatusUnauthorized {
				t.Fatalf("request %d = %d %s", i, a.status, a.body)
			}
		}
		a := g.client("192.0.2.200").do(http.MethodGet, "/auth/session", "")
		if a.status != http.StatusTooManyRequests {
			t.Errorf("4th request with yet another spoofed X-Forwarded-For = %d, want 429 (one bucket: the peer's)", a.status)
		}
		// A spoofed denied address does not get anyone refused either.
		if a := g.client("203.0.113.5").do(http.MethodGet, "/healthz", ""); a.status != http.StatusOK {
			t.Errorf("healthz = %d", a.status)
		}
		if a := g.client("203.0.113.5").do(http.MethodGet, "/", ""); a.status == http.StatusForbidden {
			t.Error("a spoofed X-Forwarded-For from an untrusted peer was believed")
		}
	})
	t.Run("trusted proxies", func(t *testing.T) {
		t.Parallel()
		g := startGuarded(t, map[string]string{
			"TICKGATE_LIMIT_IP":        "2/1h",
			"TICKGATE_TRUSTED_PROXIES": "127.0.0.1/32,10.0.0.0/8",
		}, "guard:\n  deny: [198.51.100.66]\n")
		// The client wrote a fake first entry; our proxies appended the
		// real address and their own.
		for i := 1; i <= 2; i++ {
			c := g.client("6.6.6." + strconv.Itoa(i) + ", 192.0.2.7, 10.0.0.5")
			if a := c.do(http.MethodGet, "/auth/session", ""); a.status != http.StatusUnauthorized {
				t.Fatalf("request %d = %d %s", i, a.status, a.body)
			}
		}
		if a := g.client("192.0.2.7").do(http.MethodGet, "/auth/session", ""); a.status != http.StatusTooManyRequests {
			t.Errorf("third request of 192.0.2.7 = %d, want 429 (its bucket, whatever it prepends)", a.status)
		}
		if a := g.client("192.0.2.8").do(http.MethodGet, "/auth/session", ""); a.status != http.StatusUnauthorized {
			t.Errorf("another client = %d, want 401 (its own bucket)", a.status)
		}
		// Two header lines are one list: the right-most untrusted entry
		// is in the first line here.
		c := g.client("")
		a := c.do(http.MethodGet, "/auth/session", "", "X-Forwarded-For", "192.0.2.50, 198.51.100.66", "X-Forwarded-For", "10.1.1.1")
		wantDenied(t, "denied client behind two proxies, two header lines", a, "forbidden_network")
		a = c.do(http.MethodGet, "/auth/session", "", "X-Forwarded-For", "198.51.100.66", "X-Forwarded-For", "192.0.2.51")
		if a.status != http.StatusUnauthorized {
			t.Errorf("denied address left of the client = %d %s, want 401 (only the right-most untrusted entry counts)", a.status, a.body)
		}
	})
}

// TestGuardIPv6Per64: IPv6 clients share a bucket per /64, and an
// IPv4-mapped address is its IPv4 address, through the whole chain.
func TestGuardIPv6Per64(t *testing.T) {
	t.Parallel()
	g := startGuarded(t, map[string]string{"TICKGATE_LIMIT_IP": "2/1h", "TICKGATE_TRUSTED_PROXIES": "127.0.0.1/32"},
		"guard:\n  deny: [\"2001:db8:bad::/48\"]\n")
	get := func(xff string) int { return g.client(xff).do(http.MethodGet, "/auth/session", "").status }
	if s1, s2 := get("2001:db8:1:2::1"), get("2001:db8:1:2:aaaa:bbbb:cccc:dddd"); s1 != 401 || s2 != 401 {
		t.Fatalf("first two hosts of a /64 = %d, %d", s1, s2)
	}
	if s := get("2001:db8:1:2::ffff"); s != http.StatusTooManyRequests {
		t.Errorf("third host of the same /64 = %d, want 429 (one bucket per /64)", s)
	}
	if s := get("2001:db8:1:3::1"); s != http.StatusUnauthorized {
		t.Errorf("host of the next /64 = %d, want 401 (its own bucket)", s)
	}
	if s1, s2 := get("192.0.2.9"), get("::ffff:192.0.2.9"); s1 != 401 || s2 != 401 {
		t.Fatalf("IPv4 and its mapped form = %d, %d", s1, s2)
	}
	if s := get("192.0.2.9"); s != http.StatusTooManyRequests {
		t.Errorf("IPv4 after its mapped form = %d, want 429 (one bucket)", s)
	}
	wantDenied(t, "IPv6 host in a denied /48", g.client("2001:db8:bad:1::1").do(http.MethodGet, "/auth/session", ""), "forbidden_network")
}

// writeGeoDB writes a MaxMind-format country database placing each CIDR
// in its country.
func writeGeoDB(t *testing.T, countries map[string]string) string {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", IncludeReservedNetworks: true, RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, country := range countries {
		_, network, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Insert(network, mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(country)}}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "countries.mmdb")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGuardGeo: a country denied in YAML gets 403 forbidden_country on
// REST, login and the WebSocket; other countries pass.
func TestGuardGeo(t *testing.T) {
	t.Parallel()
	db := writeGeoDB(t, map[string]string{"203.0.113.0/24": "KP", "198.51.100.0/24": "DE", "2001:db8:de::/48": "DE"})
	g := startGuarded(t, map[string]string{"TICKGATE_TRUSTED_PROXIES": "127.0.0.1/32"}, `
guard:
  geo:
    database: `+db+`
    deny_countries: [KP]
  feeds:
    demo: {allow_countries: [DE]}
`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kp := g.client("203.0.113.40")
	wantDenied(t, "REST from a denied country", kp.do(http.MethodGet, "/api/demo/v1/quote/AAPL", ""), "forbidden_country")
	wantDenied(t, "login from a denied country", kp.login(guardTestPassword), "forbidden_country")
	if _, a, err := kp.dialWS(ctx); err == nil {
		t.Error("WebSocket from a denied country was upgraded")
	} else {
		wantDenied(t, "WebSocket from a denied country", a, "forbidden_country")
	}
	if got := g.metric(t, `tickgate_guard_denials_total{reason="forbidden_country",scope="global"}`); got != 3 {
		t.Errorf("country denials counted = %v, want 3", got)
	}
	if !strings.Contains(g.logs.String(), `"country":"KP"`) {
		t.Error("the denial log does not name the country")
	}

	de := g.client("2001:db8:de::77")
	de.mustLogin()
	conn, a, err := de.dialWS(ctx)
	if err != nil {
		t.Fatalf("feed from an allowed country: %v (%d %s)", err, a.status, a.body)
	}
	wsReady(ctx, t, conn)

	// Not placed by the database: served, except on the feed that only
	// allows DE.
	other := g.client("192.0.2.1")
	other.mustLogin()
	if _, a, err := other.dialWS(ctx); err == nil {
		t.Error("feed limited to DE upgraded a client the database does not place")
	} else {
		wantDenied(t, "feed limited to DE", a, "forbidden_country")
	}
}

// TestGuardWebSocketAdmission: guard.ws limits open sockets and new
// connections per address; a refused socket is closed with 4008 (after
// the upgrade, so the browser can read it); a refused request without a
// session is not upgraded at all.
func TestGuardWebSocketAdmission(t *testing.T) {
	t.Parallel()
	g := startGuarded(t, map[string]string{"TICKGATE_TRUSTED_PROXIES": "127.0.0.1/32"}, `
guard:
  ws: {connects_per_ip: 3/1h, conns_per_ip: 1}
`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := g.client("192.0.2.1")
	c.mustLogin()

	first, a, err := c.dialWS(ctx)
	if err != nil {
		t.Fatalf("first socket: %v (%d %s)", err, a.status, a.body)
	}
	wsReady(ctx, t, first)
	second, a, err := c.dialWS(ctx)
	if err != nil {
		t.Fatalf("second socket was not upgraded: %v (%d %s)", err, a.status, a.body)
	}
	if code := closeCode(ctx, second); code != 4008 {
		t.Errorf("second socket from the address closed with %d, want 4008 (open connections per address)", code)
	}
	// Another address is not affected.
	other := g.client("192.0.2.2")
	other.mustLogin()
	conn, a, err := other.dialWS(ctx)
	if err != nil {
		t.Fatalf("socket from another address: %v (%d %s)", err, a.status, a.body)
	}
	wsReady(ctx, t, conn)

	// Closing the first frees the slot, but the address has used its
	// three connects (two admitted or refused, this one).
	if err := first.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close first: %v", err)
	}
	third, a, err := c.dialWS(ctx)
	if err != nil {
		t.Fatalf("third socket: %v (%d %s)", err, a.status, a.body)
	}
	// The relay releases the first socket's slot when its handler
	// returns; until then the third may be refused as a second open
	// socket. Either way it must be readable as ready or 4008.
	_, b, err := third.Read(ctx)
	switch {
	case err == nil && strings.Contains(string(b), `"type":"ready"`):
	case websocket.CloseStatus(err) == 4008:
	default:
		t.Fatalf("third socket: %q %v", b, err)
	}
	_ = third.CloseNow()
	fourth, _, err := c.dialWS(ctx)
	if err != nil {
		t.Fatalf("fourth socket was not upgraded: %v", err)
	}
	if code := closeCode(ctx, fourth); code != 4008 {
		t.Errorf("fourth connect in the window closed with %d, want 4008 (new connections per address)", code)
	}
	if got := g.metric(t, `tickgate_ratelimit_rejections_total{scope="ws_connect"}`); got != 1 {
		t.Errorf("ws_connect rejections = %v, want 1", got)
	}

	// Without a session: 401 before any upgrade, limits or not.
	anon := g.client("192.0.2.1")
	if _, a, err := anon.dialWS(ctx); err == nil || a.status != http.StatusUnauthorized {
		t.Errorf("socket without a session: %v, %d %s; want 401 without upgrade", err, a.status, a.body)
	}
}

// TestGuardLogin: successful logins do not use up the login limit;
// failed ones do, per IP and per username; the 429 carries the login
// limit's headers, not the per-IP limit's.
func TestGuardLogin(t *testing.T) {
	t.Parallel()
	g := startGuarded(t, map[string]string{"TICKGATE_LIMIT_LOGIN": "3/1h", "TICKGATE_TRUSTED_PROXIES": "127.0.0.1/32"}, "")
	c := g.client("192.0.2.1")
	for i := 1; i <= 6; i++ {
		a := c.login(guardTestPassword)
		if a.status != http.StatusOK {
			t.Fatalf("successful login %d = %d %s, want 200 (successes are not attempts to guess)", i, a.status, a.body)
		}
		if got, rem := a.header.Get("X-RateLimit-Limit"), a.header.Get("X-RateLimit-Remaining"); got != "3" || rem != "3" {
			t.Errorf("login %d: X-RateLimit-Limit, -Remaining = %q, %q; want the login limit, 3 of 3 (refunded)", i, got, rem)
		}
	}
	for i := 1; i <= 3; i++ {
		a := c.login("wrong password " + strconv.Itoa(i))
		if a.status != http.StatusUnauthorized {
			t.Fatalf("failed login %d = %d %s, want 401", i, a.status, a.body)
		}
		if got, want := a.header.Get("X-RateLimit-Remaining"), strconv.Itoa(3-i); got != want {
			t.Errorf("failed login %d: X-RateLimit-Remaining = %q, want %q", i, got, want)
		}
	}
	a := c.login(guardTestPassword)
	if a.status != http.StatusTooManyRequests {
		t.Fatalf("login after three failures = %d %s, want 429", a.status, a.body)
	}
	checkLimitHeaders(t, "login 429", a, 3)

	// The username's bucket is spent too: another address is refused for
	// demo.
	if a := g.client("192.0.2.2").login(guardTestPassword); a.status != http.StatusTooManyRequests {
		t.Errorf("login for the same user from another address = %d, want 429 (per-username limit)", a.status)
	}
	logs := g.logs.String()
	for _, secret := range []string{guardTestPassword, "wrong password"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
}

// BenchmarkGuardChain measures one request through the whole handler
// (request id, headers, client address, network rules, per-IP and route
// limits, session lookup) without and with a guard section of 100 deny
// networks and a route limit; the difference is the guard's cost.
func BenchmarkGuardChain(b *testing.B) {
	var deny []string
	for i := range 100 {
		deny = append(deny, "10."+strconv.Itoa(i)+".0.0/16")
	}
	rules, err := json.Marshal(deny)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, guard string }{
		{"no_rules", ""},
		{"100_deny_and_route_limit", "guard:\n  deny: " + string(rules) + "\n  routes:\n    \"/auth/*\": {limit: 1000000000/1h}\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := config.FromEnv(func(k string) (string, bool) {
				if k == "TICKGATE_LIMIT_IP" {
					return "1000000000/1h", true
				}
				return "", false
			})
			if err != nil {
				b.Fatal(err)
			}
			file := config.Demo("http://127.0.0.1:1")
			if bc.guard != "" {
				parsed, err := config.Parse([]byte(feedStub+bc.guard), func(string) string { return "" })
				if err != nil {
					b.Fatal(err)
				}
				file.Guard = parsed.Guard
			}
			cache := secrets.NewCache(secrets.NewEnv(func(string) string { return guardTestKey }), secrets.CacheConfig{})
			defer cache.Close()
			users, _ := session.NewUsers(nil)
			store, err := memstore.New(memstore.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			a, err := New(Config{Settings: s, File: file, Secrets: cache, Users: users, Store: store, GeoReload: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			h := a.Handler()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodGet, "/auth/session", nil)
				r.RemoteAddr = "127.0.0.1:1234" // plain HTTP is for loopback
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusUnauthorized {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
