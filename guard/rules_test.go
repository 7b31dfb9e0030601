package guard

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/metrics"
)

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

type guardHarness struct {
	g       *Guard
	h       http.Handler
	logs    *syncBuffer
	denials *prometheus.CounterVec
	m       *metrics.Metrics
	res     *IPResolver
}

// newGuardHarness serves a 204 behind IPResolver.Middleware, Guard.Network
// and Guard.RouteLimits (sessions from the X-Test-Session header), in the
// order app uses. Trusted proxies: 10.0.0.0/8.
func newGuardHarness(t *testing.T, yamlRules string) *guardHarness {
	t.Helper()
	db, path := testGeoDB(t)
	db.Close()
	f, err := config.Parse([]byte(strings.ReplaceAll(yamlRules, "DBPATH", path)+`
feeds:
  live: {url: "ws://127.0.0.1:1/x", key: {secret: K}, adapter: {preset: marketsim}}
  other: {url: "ws://127.0.0.1:1/y", key: {secret: K}, adapter: {preset: marketsim}}
`), func(string) string { return "" })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	hs := &guardHarness{
		logs:    &syncBuffer{},
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "denials"}, []string{"scope", "reason"}),
		m:       metrics.Discard(),
		res:     NewIPResolver([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}),
	}
	hs.g, err = New(Config{
		Rules:     f.Guard,
		Resolver:  hs.res,
		Logger:    slog.New(slog.NewJSONHandler(hs.logs, nil)),
		Metrics:   hs.m,
		Denials:   hs.denials,
		Exempt:    []string{"/healthz"},
		GeoReload: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hs.g.Close)
	sessKey := func(r *http.Request) string { return r.Header.Get("X-Test-Session") }
	hs.h = hs.res.Middleware(hs.g.Network(hs.g.RouteLimits(sessKey)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))))
	return hs
}

type req struct {
	path, remote string
	xff          []string
	session      string
}

func (hs *guardHarness) do(r req) *httptest.ResponseRecorder {
	hr := httptest.NewRequest("GET", r.path, nil)
	hr.RemoteAddr = r.remote
	for _, v := range r.xff {
		hr.Header.Add("X-Forwarded-For", v)
	}
	if r.session != "" {
		hr.Header.Set("X-Test-Session", r.session)
	}
	hr.Header.Set("Cookie", "tickgate=secret-session-id")
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, hr)
	return rec
}

func errorCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if body.Error.Message == "" {
		t.Fatalf("body %q has no message", rec.Body)
	}
	return body.Error.Code
}

func TestNetworkRules(t *testing.T) {
	t.Parallel()
	hs := newGuardHarness(t, `
guard:
  deny: [203.0.113.0/24, "2001:db8:bad::/48"]
  geo: {database: DBPATH, deny_countries: [KP, FR]}
  routes:
    "/auth/login": {allow: [198.51.100.0/24, "2001:db8:de::/48"]}
    "/api/*": {allow_countries: [DE, US]}
  feeds:
    live: {deny: [198.51.100.66]}
`)
	tests := []struct {
		name  string
		r     req
		code  string
		scope string
	}{
		{"allowed", req{path: "/api/demo/q", remote: "198.51.100.1:1"}, "", ""},
		{"global deny v4", req{path: "/", remote: "203.0.113.5:1"}, CodeForbiddenNetwork, "global"},
		{"global deny mapped", req{path: "/", remote: "[::ffff:203.0.113.5]:1"}, CodeForbiddenNetwork, "global"},
		{"global deny v6", req{path: "/", remote: "[2001:db8:bad::1]:1"}, CodeForbiddenNetwork, "global"},
		{"spoofed xff from untrusted peer does not escape", req{path: "/", remote: "203.0.113.5:1", xff: []string{"198.51.100.1"}}, CodeForbiddenNetwork, "global"},
		{"spoofed xff from untrusted peer does not frame another", req{path: "/", remote: "198.51.100.1:1", xff: []string{"203.0.113.5"}}, "", ""},
		{"trusted proxy's xff is the client", req{path: "/", remote: "10.0.0.1:1", xff: []string{"203.0.113.5"}}, CodeForbiddenNetwork, "global"},
		{"global deny country", req{path: "/", remote: "192.0.2.200:1"}, CodeForbiddenCountry, "global"},
		{"exempt health check", req{path: "/healthz", remote: "203.0.113.5:1"}, "", ""},
		{"route allow list", req{path: "/auth/login", remote: "192.0.2.1:1"}, CodeForbiddenNetwork, "route"},
		{"route allow list v6", req{path: "/auth/login", remote: "[2001:db8:de::9]:1"}, "", ""},
		{"route exact only", req{path: "/auth/session", remote: "192.0.2.1:1"}, "", ""},
		{"route countries", req{path: "/api/demo/q", remote: "[2001:db8:2::1]:1"}, CodeForbiddenCountry, "route"},
		{"route prefix includes its root", req{path: "/api", remote: "100.100.100.100:1"}, CodeForbiddenCountry, "route"},
		{"route prefix is per segment", req{path: "/apix", remote: "100.100.100.100:1"}, "", ""},
		{"feed rule", req{path: "/ws/live", remote: "198.51.100.66:1"}, CodeForbiddenNetwork, "feed"},
		{"other feed", req{path: "/ws/other", remote: "198.51.100.66:1"}, "", ""},
	}
	for _, tc := range tests {
		rec := hs.do(tc.r)
		if tc.code == "" {
			if rec.Code != http.StatusNoContent {
				t.Errorf("%s: status %d body %s, want 204", tc.name, rec.Code, rec.Body)
			}
			continue
		}
		if rec.Code != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", tc.name, rec.Code)
			continue
		}
		if got := errorCode(t, rec); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
	}
	for _, c := range []struct {
		scope, reason string
		want          float64
	}{
		{"global", CodeForbiddenNetwork, 5}, {"global", CodeForbiddenCountry, 1},
		{"route", CodeForbiddenNetwork, 1}, {"route", CodeForbiddenCountry, 2}, {"feed", CodeForbiddenNetwork, 1},
	} {
		if got := counterValue(t, hs.denials.WithLabelValues(c.scope, c.reason)); got != c.want {
			t.Errorf("denials{%s,%s} = %v, want %v", c.scope, c.reason, got, c.want)
		}
	}
	logs := hs.logs.String()
	for _, want := range []string{`"audit":true`, `"client_ip":"203.0.113.5"`, `"reason":"forbidden_country"`, `"country":"FR"`, `"rule":"deny 203.0.113.0/24"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if strings.Contains(logs, "secret-session-id") {
		t.Error("log contains the cookie")
	}
}

func TestRouteLimits(t *testing.T) {
	t.Parallel()
	hs := newGuardHarness(t, `
guard:
  routes:
    "/api/*": {limit: "2/1h", by: session}
    "/api/slow/*": {limit: "1/1h"}
    "/auth/login": {limit: "1/1h"}
`)
	type step struct {
		r    req
		code int
	}
	steps := []step{
		// by session: each session its own bucket.
		{req{path: "/api/a", remote: "198.51.100.1:1", session: "s1"}, 204},
		{req{path: "/api/b", remote: "198.51.100.2:1", session: "s1"}, 204},
		{req{path: "/api/c", remote: "198.51.100.3:1", session: "s1"}, 429},
		{req{path: "/api/a", remote: "198.51.100.1:1", session: "s2"}, 204},
		// no session: the client address.
		{req{path: "/api/a", remote: "198.51.100.9:1"}, 204},
		{req{path: "/api/a", remote: "198.51.100.9:1"}, 204},
		{req{path: "/api/a", remote: "198.51.100.9:1"}, 429},
		// the most specific pattern applies, by IP; IPv6 per /64.
		{req{path: "/api/slow/x", remote: "[2001:db8:1:2::1]:1", session: "s3"}, 204},
		{req{path: "/api/slow/y", remote: "[2001:db8:1:2::2]:1", session: "s4"}, 429},
		{req{path: "/api/slow/y", remote: "[2001:db8:1:3::2]:1", session: "s4"}, 204},
		// exact route; paths without a route are not limited.
		{req{path: "/auth/login", remote: "192.0.2.1:1"}, 204},
		{req{path: "/auth/login", remote: "192.0.2.1:1"}, 429},
		{req{path: "/auth/session", remote: "192.0.2.1:1"}, 204},
		{req{path: "/auth/session", remote: "192.0.2.1:1"}, 204},
	}
	for i, s := range steps {
		rec := hs.do(s.r)
		if rec.Code != s.code {
			t.Fatalf("step %d (%s from %s): status %d, want %d", i, s.r.path, s.r.remote, rec.Code, s.code)
		}
		switch {
		case s.r.path == "/auth/session":
			if rec.Header().Get("X-RateLimit-Limit") != "" {
				t.Fatalf("step %d: unlimited route has rate-limit headers", i)
			}
		case s.code == 429:
			if errorCode(t, rec) != "rate_limited" || rec.Header().Get("Retry-After") == "" {
				t.Fatalf("step %d: 429 without rate_limited body or Retry-After", i)
			}
		default:
			if rec.Header().Get("X-RateLimit-Reset") == "" {
				t.Fatalf("step %d: no X-RateLimit-Reset", i)
			}
		}
	}
	if got := counterValue(t, hs.m.RateLimitRejections.WithLabelValues("route:/api/*")); got != 2 {
		t.Fatalf("rejections{route:/api/*} = %v, want 2", got)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name  string
		rules config.Guard
		want  string
	}{
		{"missing database", config.Guard{Geo: config.GuardGeo{Database: dir + "/none.mmdb", DenyCountries: []string{"KP"}}}, "guard.geo.database"},
		{"countries without database", config.Guard{Routes: map[string]config.GuardRoute{"/x": {NetworkRules: config.NetworkRules{AllowCountries: []string{"DE"}}}}}, "guard.geo.database"},
		{"bad cidr", config.Guard{Deny: []string{"nope"}}, "nope"},
		{"bad pattern", config.Guard{Routes: map[string]config.GuardRoute{"api/*": {Limit: config.Limit{{Tokens: 1, Interval: time.Second}}}}}, "guard.routes.api/*"},
		{"bad by", config.Guard{Routes: map[string]config.GuardRoute{"/api/*": {Limit: config.Limit{{Tokens: 1, Interval: time.Second}}, By: "user"}}}, "guard.routes./api/*.by"},
		{"bad policy", config.Guard{RedisFailure: config.RedisFailure{Login: "maybe"}}, "guard.redis_failure.login"},
		{"bad route policy", config.Guard{Routes: map[string]config.GuardRoute{"/api/*": {Limit: config.Limit{{Tokens: 1, Interval: time.Second}}, RedisFailure: "half"}}}, "redis_failure"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, err := New(Config{Rules: tc.rules})
			if err == nil {
				g.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestGuardLimitersUsePolicies(t *testing.T) {
	t.Parallel()
	g, err := New(Config{Rules: config.Guard{RedisFailure: config.RedisFailure{Default: "closed", Login: "open"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	lim, err := g.Limiter("ip", config.Limit{{Tokens: 1, Interval: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if lim.Policy() != FailClosed || lim.Name() != "ip" {
		t.Fatalf("limiter %s policy %v, want ip closed", lim.Name(), lim.Policy())
	}
	ll, err := g.LoginLimiter(config.Limit{{Tokens: 1, Interval: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if ll.l.Policy() != FailOpen {
		t.Fatalf("login policy %v, want open", ll.l.Policy())
	}
	if g.WS() == nil {
		t.Fatal("no WebSocket guard")
	}

	g2, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	lim2, _ := g2.Limiter("ip", config.Limit{{Tokens: 1, Interval: time.Second}})
	ll2, _ := g2.LoginLimiter(config.Limit{{Tokens: 1, Interval: time.Second}})
	if lim2.Policy() != FailOpen || ll2.l.Policy() != FailClosed {
		t.Fatalf("defaults: request %v login %v, want open and closed", lim2.Policy(), ll2.l.Policy())
	}
	g2.Close()
	g2.Close() // safe twice
	if _, err := lim2.Take(context.Background(), "k"); err != nil {
		t.Fatalf("closed memory limiter fails open, got %v", err)
	}
}
