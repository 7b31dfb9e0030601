package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/marketsim"
	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/memstore"
)

// scopedOpts configure startScoped.
type scopedOpts struct {
	env   map[string]string
	roles map[string][]string // user → roles; every user's password is guardTestPassword
	edit  func(*config.File)  // changes to the demo configuration
	store session.Store       // default: a fresh memstore
}

// startScoped serves an App in demo configuration, as startGuarded does,
// with users holding roles and an edited configuration.
func startScoped(t *testing.T, o scopedOpts) *guarded {
	t.Helper()
	sim, err := marketsim.New(marketsim.Options{Keys: []string{guardTestKey}, RESTRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s, err := config.FromEnv(func(k string) (string, bool) { v, ok := o.env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s = s.WithListenAddr(ln.Addr().String())
	file := config.Demo(sim.URL())
	if o.edit != nil {
		o.edit(&file)
	}
	if err := file.Validate(); err != nil {
		t.Fatalf("edited configuration: %v", err)
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
	for name, roles := range o.roles {
		if err := users.AddWithRoles(name, hash, roles); err != nil {
			t.Fatal(err)
		}
	}
	store := o.store
	if store == nil {
		ms, err := memstore.New(memstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		store = ms
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

// loginAs logs c in as user and returns the answer.
func (c *client) loginAs(user string) answer {
	c.g.t.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": guardTestPassword})
	return c.do(http.MethodPost, "/auth/login", string(b))
}

func (c *client) mustLoginAs(user string) {
	c.g.t.Helper()
	if a := c.loginAs(user); a.status != http.StatusOK {
		c.g.t.Fatalf("login of %s from %q = %d %s", user, c.xff, a.status, a.body)
	}
}

// wsMsg is a relay message as the tests read it.
type wsMsg struct {
	Type    string   `json:"type"`
	Code    string   `json:"code"`
	Symbols []string `json:"symbols"`
	Limits  *struct {
		MaxSymbols int `json:"max_symbols"`
	} `json:"limits"`
}

// wsNext reads the next message of type typ (skipping status and data).
func wsNext(ctx context.Context, t *testing.T, conn *websocket.Conn, typ string) wsMsg {
	t.Helper()
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		var m wsMsg
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("message %s: %v", b, err)
		}
		if m.Type == typ {
			return m
		}
		if m.Type == "error" || m.Type == "subscribed" {
			t.Fatalf("got %s while waiting for %s", b, typ)
		}
	}
}

func wsSend(ctx context.Context, t *testing.T, conn *websocket.Conn, msg string) {
	t.Helper()
	if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// TestRouteRoles: upstream routes with roles answer 403 forbidden_role
// to sessions without one of them, before anything is forwarded; other
// routes stay open; denials are logged and counted.
func TestRouteRoles(t *testing.T) {
	g := startScoped(t, scopedOpts{
		roles: map[string][]string{"free": {"free"}, "pro": {"realtime", "trading"}},
		edit: func(f *config.File) {
			u := f.Upstreams["demo"]
			u.Routes = append(u.Routes,
				config.Route{Methods: []string{"GET"}, Paths: []string{"/v1/last/*"}, Roles: []string{"realtime", "premium"}},
				config.Route{Methods: []string{"POST"}, Paths: []string{"/v1/orders", "/v1/orders/*"}, Roles: []string{"trading"}})
			f.Upstreams["demo"] = u
		},
	})
	free, pro := g.client(""), g.client("")
	free.mustLoginAs("free")
	pro.mustLoginAs("pro")

	if a := free.do(http.MethodGet, "/api/demo/v1/quote/AAPL", ""); a.status != http.StatusOK {
		t.Fatalf("free: open route = %d %s", a.status, a.body)
	}
	wantDenied(t, "free: GET /v1/last/AAPL", free.do(http.MethodGet, "/api/demo/v1/last/AAPL", ""), codeForbiddenRole)
	wantDenied(t, "free: POST /v1/orders", free.do(http.MethodPost, "/api/demo/v1/orders", `{"symbol":"AAPL"}`), codeForbiddenRole)
	wantDenied(t, "free: POST /v1/orders/1", free.do(http.MethodPost, "/api/demo/v1/orders/1", `{}`), codeForbiddenRole)
	// An encoded letter decodes to the same gated path: still refused
	// (or, for encodings the proxy refuses, 404); never forwarded.
	if a := free.do(http.MethodGet, "/api/demo/v1/l%61st/AAPL", ""); a.status == http.StatusOK {
		t.Fatalf("free: encoded gated path = %d %s", a.status, a.body)
	}

	if a := pro.do(http.MethodGet, "/api/demo/v1/last/AAPL", ""); a.status != http.StatusOK {
		t.Fatalf("pro: GET /v1/last/AAPL = %d %s", a.status, a.body)
	}
	if a := pro.do(http.MethodPost, "/api/demo/v1/orders", `{"symbol":"AAPL"}`); a.code() == codeForbiddenRole {
		t.Fatalf("pro: POST /v1/orders = %d %s, want it past the role check", a.status, a.body)
	}

	if got := g.metric(t, `tickgate_guard_denials_total{reason="forbidden_role",scope="route"}`); got < 3 {
		t.Fatalf("route role denials counted = %v, want >= 3", got)
	}
	logs := g.logs.String()
	if !strings.Contains(logs, `"msg":"request denied: route"`) || !strings.Contains(logs, `"user":"free"`) {
		t.Fatalf("denial not logged with the user:\n%s", logs)
	}
}

// TestFeedRoles: a feed with roles refuses the upgrade to sessions with
// none of them (403 forbidden_role) and applies each role's symbol limit
// and allowlist as WebSocket error messages.
func TestFeedRoles(t *testing.T) {
	g := startScoped(t, scopedOpts{
		roles: map[string][]string{"nobody": nil, "free": {"free"}, "pro": {"realtime"}},
		edit: func(f *config.File) {
			feed := f.Feeds["demo"]
			feed.Roles = map[string]config.FeedRole{
				"free":     {MaxSymbols: 2, Symbols: []string{"AAPL", "MSFT", "TSLA"}},
				"realtime": {},
			}
			f.Feeds["demo"] = feed
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	nobody := g.client("")
	nobody.mustLoginAs("nobody")
	_, a, err := nobody.dialWS(ctx)
	if err == nil {
		t.Fatal("a session without a feed role was upgraded")
	}
	wantDenied(t, "nobody: /ws/demo", a, codeForbiddenRole)

	free := g.client("")
	free.mustLoginAs("free")
	conn, a, err := free.dialWS(ctx)
	if err != nil {
		t.Fatalf("free: dial = %v (%d %s)", err, a.status, a.body)
	}
	if m := wsNext(ctx, t, conn, "ready"); m.Limits == nil || m.Limits.MaxSymbols != 2 {
		t.Fatalf("free: ready limits %+v, want max_symbols 2", m.Limits)
	}
	wsSend(ctx, t, conn, `{"action":"subscribe","symbols":["AAPL","IBM"]}`)
	if m := wsNext(ctx, t, conn, "error"); m.Code != "forbidden_symbol" || !slices.Equal(m.Symbols, []string{"IBM"}) {
		t.Fatalf("free: subscribe IBM = %+v, want forbidden_symbol [IBM]", m)
	}
	wsSend(ctx, t, conn, `{"action":"subscribe","symbols":["aapl","MSFT"]}`)
	wsNext(ctx, t, conn, "subscribed")
	wsSend(ctx, t, conn, `{"action":"subscribe","symbols":["TSLA"]}`)
	if m := wsNext(ctx, t, conn, "error"); m.Code != "too_many_symbols" {
		t.Fatalf("free: third symbol = %+v, want too_many_symbols", m)
	}

	pro := g.client("")
	pro.mustLoginAs("pro")
	pconn, a, err := pro.dialWS(ctx)
	if err != nil {
		t.Fatalf("pro: dial = %v (%d %s)", err, a.status, a.body)
	}
	wsNext(ctx, t, pconn, "ready")
	wsSend(ctx, t, pconn, `{"action":"subscribe","symbols":["IBM","SPY","QQQ"]}`)
	wsNext(ctx, t, pconn, "subscribed")

	if got := g.metric(t, `tickgate_guard_denials_total{reason="forbidden_role",scope="feed"}`); got != 1 {
		t.Errorf("feed role denials counted = %v, want 1", got)
	}
	if got := g.metric(t, `tickgate_guard_denials_total{reason="forbidden_symbol",scope="symbol"}`); got != 1 {
		t.Errorf("symbol denials counted = %v, want 1", got)
	}
}

// TestUserNetworks: a user with an IP allowlist logs in and is served
// only from inside it (403 forbidden_network on login, REST and the
// WebSocket handshake); a session cookie carried elsewhere is useless;
// users without a list are not restricted.
func TestUserNetworks(t *testing.T) {
	g := startScoped(t, scopedOpts{
		env: map[string]string{
			"TICKGATE_TRUSTED_PROXIES": "127.0.0.1/32",
			"TICKGATE_USER_NETWORKS":   "alice=203.0.113.0/24|2001:db8::/32",
		},
		roles: map[string][]string{"alice": nil, "bob": nil},
	})
	outside := g.client("198.51.100.9")
	wantDenied(t, "alice: login from outside", outside.loginAs("alice"), codeForbiddenNetwork)
	if a := outside.do(http.MethodGet, "/auth/session", ""); a.status != http.StatusUnauthorized {
		t.Fatalf("a refused login left a session: %d %s", a.status, a.body)
	}

	inside := g.client("203.0.113.77")
	inside.mustLoginAs("alice")
	if a := inside.do(http.MethodGet, "/api/demo/v1/quote/AAPL", ""); a.status != http.StatusOK {
		t.Fatalf("alice inside: %d %s", a.status, a.body)
	}
	v6 := g.client("2001:db8::5")
	v6.mustLoginAs("alice")

	// The same cookie from another address.
	stolen := &client{g: g, xff: "198.51.100.9", http: inside.http}
	wantDenied(t, "alice's cookie from outside: REST", stolen.do(http.MethodGet, "/api/demo/v1/quote/AAPL", ""), codeForbiddenNetwork)
	wantDenied(t, "alice's cookie from outside: session info", stolen.do(http.MethodGet, "/auth/session", ""), codeForbiddenNetwork)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, a, err := stolen.dialWS(ctx); err == nil {
		t.Fatal("alice's cookie from outside opened a WebSocket")
	} else {
		wantDenied(t, "alice's cookie from outside: /ws/demo", a, codeForbiddenNetwork)
	}

	bob := g.client("198.51.100.9")
	bob.mustLoginAs("bob")
	if a := bob.do(http.MethodGet, "/api/demo/v1/quote/AAPL", ""); a.status != http.StatusOK {
		t.Fatalf("bob (unrestricted): %d %s", a.status, a.body)
	}
	if got := g.metric(t, `tickgate_guard_denials_total{reason="forbidden_network",scope="user"}`); got != 4 {
		t.Errorf("user network denials counted = %v, want 4", got)
	}
	if logs := g.logs.String(); !strings.Contains(logs, `"msg":"login denied: user network"`) {
		t.Errorf("refused login not logged")
	}
}
