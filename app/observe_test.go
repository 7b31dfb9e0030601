package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/logging"
	"github.com/tickgate/tickgate/metrics"
	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/memstore"
)

const (
	obsKey      = "observe-test-vendor-key-8c1f"
	obsPassword = "observe test password 42"
)

type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records parses every JSON line logged so far.
func (b *logBuf) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, l)
		}
		out = append(out, rec)
	}
	return out
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type observed struct {
	app *App
	log *logBuf
	reg *prometheus.Registry
	m   *metrics.Metrics
}

func newObservedApp(t *testing.T, extra ...map[string]string) *observed {
	t.Helper()
	return newObservedAppWith(t, "http://127.0.0.1:1", extra...)
}

// newObservedAppWith is newObservedApp with the demo upstream at vendorURL.
func newObservedAppWith(t *testing.T, vendorURL string, extra ...map[string]string) *observed {
	t.Helper()
	env := map[string]string{"TICKGATE_TRUSTED_PROXIES": "10.0.0.0/8"}
	for _, e := range extra {
		for k, v := range e {
			env[k] = v
		}
	}
	s, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	lb := &logBuf{}
	red := logging.NewRedactor()
	red.Set("secrets", obsKey)
	red.Set("passwords", obsPassword)
	log, err := logging.New(lb, logging.Options{Format: "json", Level: "debug", Redactor: red})
	if err != nil {
		t.Fatal(err)
	}
	cache := secrets.NewCache(secrets.NewEnv(func(string) string { return obsKey }), secrets.CacheConfig{})
	if err := cache.Load(context.Background(), config.DemoKeySecret); err != nil {
		t.Fatal(err)
	}
	hash, err := session.HashPasswordWith(obsPassword, session.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	users, err := session.NewUsers(map[string]string{"alice": hash})
	if err != nil {
		t.Fatal(err)
	}
	store, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	a, err := New(Config{Settings: s, File: config.Demo(vendorURL), Secrets: cache, Users: users, Store: store,
		Logger: log, Registry: reg, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); _ = store.Close(); cache.Close() })
	return &observed{app: a, log: lb, reg: reg, m: m}
}

func (o *observed) do(method, target, remote, body string, hdr map[string]string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	r.RemoteAddr = remote
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	o.app.Handler().ServeHTTP(rec, r)
	return rec
}

var hex128 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRequestID(t *testing.T) {
	t.Parallel()
	o := newObservedApp(t)
	tests := []struct {
		name, remote, sent string
		want               string // "" means a new random id
	}{
		{"generated", "127.0.0.1:1", "", ""},
		{"browser cannot choose", "127.0.0.1:1", "chosen-by-browser", ""},
		{"trusted proxy's id kept", "10.1.2.3:1", "lb-1f2e3d4c-5b6a", "lb-1f2e3d4c-5b6a"},
		{"trusted proxy's bad id replaced", "10.1.2.3:1", "bad id\nforged", ""},
		{"trusted proxy's huge id replaced", "10.1.2.3:1", strings.Repeat("a", 129), ""},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		hdr := map[string]string{"X-Forwarded-Proto": "https"}
		if tc.sent != "" {
			hdr["X-Request-Id"] = tc.sent
		}
		rec := o.do("GET", "/healthz", tc.remote, "", hdr)
		got := rec.Header().Get("X-Request-Id")
		if tc.want != "" {
			if got != tc.want {
				t.Errorf("%s: X-Request-Id = %q, want %q", tc.name, got, tc.want)
			}
			continue
		}
		if !hex128.MatchString(got) || seen[got] {
			t.Errorf("%s: X-Request-Id = %q, want a new 128-bit hex id", tc.name, got)
		}
		seen[got] = true
	}
}

// TestAccessLog checks the fields of the access log and that no query
// string, raw path, cookie or password reaches it, and that every line a
// request causes carries its request id.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	o := newObservedApp(t)
	login := o.do("POST", "/auth/login?apikey=from-query-123", "127.0.0.1:5", `{"username":"alice","password":"`+obsPassword+`"}`,
		map[string]string{"X-CSRF": "1", "Content-Type": "application/json", "Origin": "http://127.0.0.1:8080"})
	if login.Code != 200 {
		t.Fatalf("login = %d %s", login.Code, login.Body)
	}
	cookie := login.Result().Cookies()[0]
	rid := login.Header().Get("X-Request-Id")
	info := o.do("GET", "/auth/session?token=secret-token-value", "127.0.0.1:5", "", map[string]string{"Cookie": cookie.Name + "=" + cookie.Value})
	if info.Code != 200 {
		t.Fatalf("session = %d %s", info.Code, info.Body)
	}

	out := o.log.String()
	for _, s := range []string{obsPassword, cookie.Value, "from-query-123", "secret-token-value", "apikey", "?"} {
		if strings.Contains(out, s) {
			t.Errorf("log contains %q:\n%s", s, out)
		}
	}
	var access []map[string]any
	byID := map[string][]string{}
	for _, rec := range o.log.records(t) {
		if id, ok := rec["request_id"].(string); ok {
			byID[id] = append(byID[id], rec["msg"].(string))
		}
		if rec["msg"] == "request" {
			access = append(access, rec)
		}
	}
	if len(access) != 2 {
		t.Fatalf("want 2 access lines, got %d:\n%s", len(access), out)
	}
	first := access[0]
	want := map[string]any{"method": "POST", "route": "/auth/login", "status": float64(200), "client_ip": "127.0.0.1", "request_id": rid}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("access log %s = %v, want %v", k, first[k], v)
		}
	}
	for _, k := range []string{"bytes", "duration_ms", "user"} {
		if _, ok := first[k]; !ok {
			t.Errorf("access log lacks %s: %v", k, first)
		}
	}
	if _, ok := first["path"]; ok {
		t.Errorf("access log has the raw path: %v", first)
	}
	if got := access[1]["user"]; got != "alice" {
		t.Errorf("second access line user = %v, want alice", got)
	}
	// The login audit line is logged inside the request: same id.
	if msgs := byID[rid]; !contains(msgs, "login") || !contains(msgs, "request") {
		t.Errorf("lines with request id %s: %v, want the login audit line and the access line", rid, msgs)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestAuditEvents runs the actions the app itself audits and checks each
// leaves an audit=true line with its stable fields.
func TestAuditEvents(t *testing.T) {
	t.Parallel()
	o := newObservedApp(t)
	hdr := map[string]string{"X-CSRF": "1", "Content-Type": "application/json", "Origin": "http://127.0.0.1:8080"}
	if rec := o.do("POST", "/auth/login", "127.0.0.1:5", `{"username":"alice","password":"wrong password!"}`, hdr); rec.Code != 401 {
		t.Fatalf("bad login = %d", rec.Code)
	}
	ok := o.do("POST", "/auth/login", "127.0.0.1:5", `{"username":"alice","password":"`+obsPassword+`"}`, hdr)
	if ok.Code != 200 {
		t.Fatalf("login = %d", ok.Code)
	}
	c := ok.Result().Cookies()[0]
	out := map[string]string{"X-CSRF": "1", "Origin": "http://127.0.0.1:8080", "Cookie": c.Name + "=" + c.Value}
	if rec := o.do("POST", "/auth/logout", "127.0.0.1:5", "", out); rec.Code != 204 {
		t.Fatalf("logout = %d", rec.Code)
	}
	audits := map[string]map[string]any{}
	for _, rec := range o.log.records(t) {
		if rec[logging.AuditKey] == true {
			audits[rec["msg"].(string)] = rec
		}
	}
	for msg, fields := range map[string][]string{
		"login failed": {"result", "reason", "client_ip", "user"},
		"login":        {"result", "client_ip", "user"},
		"logout":       {"user", "client_ip"},
	} {
		rec, ok := audits[msg]
		if !ok {
			t.Errorf("no audit line %q; have %v", msg, audits)
			continue
		}
		for _, f := range fields {
			if _, ok := rec[f]; !ok {
				t.Errorf("audit %q lacks %s: %v", msg, f, rec)
			}
		}
	}
	if s := o.log.String(); strings.Contains(s, obsPassword) || strings.Contains(s, "wrong password!") || strings.Contains(s, c.Value) {
		t.Errorf("log holds a password or the session id:\n%s", s)
	}
	if got := value(t, o.m.Logins.WithLabelValues("success")); got != 1 {
		t.Errorf("logins success = %v, want 1", got)
	}
}

// TestRequestMetrics checks the per-route counter and histogram move,
// labelled with the route pattern.
func TestRequestMetrics(t *testing.T) {
	t.Parallel()
	o := newObservedApp(t)
	for range 3 {
		o.do("GET", "/api/demo/v1/quote?symbol=AAPL", "127.0.0.1:1", "", nil)
	}
	o.do("GET", "/healthz", "127.0.0.1:1", "", nil)
	if got := value(t, o.m.HTTPRequests.WithLabelValues("/api/:upstream/*", "401")); got != 3 {
		t.Errorf("requests{/api/:upstream/*,401} = %v, want 3", got)
	}
	if got := value(t, o.m.HTTPRequests.WithLabelValues("/healthz", "200")); got != 1 {
		t.Errorf("requests{/healthz,200} = %v, want 1", got)
	}
	var h dto.Metric
	if err := o.m.HTTPDuration.WithLabelValues("/api/:upstream/*").(prometheus.Histogram).Write(&h); err != nil {
		t.Fatal(err)
	}
	if got := h.GetHistogram().GetSampleCount(); got != 3 {
		t.Errorf("duration{/api/:upstream/*} count = %d, want 3", got)
	}
	// No label holds a raw path or query.
	body := scrape(t, o.app)
	if strings.Contains(body, "v1/quote") || strings.Contains(body, "symbol=") {
		t.Errorf("metrics hold a raw path or query")
	}
}

// TestContractMetrics scrapes the admin handler for the names DESIGN 1.4
// promises, and checks the public handler does not serve them.
func TestContractMetrics(t *testing.T) {
	t.Parallel()
	o := newObservedApp(t)
	o.do("GET", "/healthz", "127.0.0.1:1", "", nil)
	body := scrape(t, o.app)
	for _, name := range []string{
		`tickgate_http_requests_total{code="200",route="/healthz"}`,
		"tickgate_ws_clients ",
		`tickgate_upstream_ws_connections{feed="demo"}`,
		"tickgate_ratelimit_rejections_total{",
		`tickgate_secret_refresh_total{result="ok"}`,
		`tickgate_upstream_request_duration_seconds_count{upstream="demo"}`,
		`tickgate_ws_subscriptions{feed="demo"}`,
		`tickgate_ws_dropped_total{feed="demo",reason="conflated"}`,
		`tickgate_ws_upstream_reconnects_total{feed="demo"}`,
		"tickgate_guard_denials_total{",
		`tickgate_anomalies_total{kind="login_failures"}`,
	} {
		if !strings.Contains(body, name) {
			t.Errorf("admin /metrics lacks %s", name)
		}
	}
	if rec := o.do("GET", "/metrics", "127.0.0.1:1", "", nil); strings.Contains(rec.Body.String(), "tickgate_http_requests_total") {
		t.Error("the public handler serves metrics")
	}
	admin := httptest.NewRecorder()
	o.app.AdminHandler().ServeHTTP(admin, httptest.NewRequest("GET", "/debug/pprof/", nil))
	if admin.Code != 200 || !strings.Contains(admin.Body.String(), "goroutine") {
		t.Errorf("admin /debug/pprof/ = %d", admin.Code)
	}
	if rec := o.do("GET", "/debug/pprof/", "127.0.0.1:1", "", nil); strings.Contains(rec.Body.String(), "goroutine") {
		t.Error("the public handler serves pprof")
	}
}

func scrape(t *testing.T, a *App) string {
	t.Helper()
	rec := httptest.NewRecorder()
	a.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("admin /metrics = %d", rec.Code)
	}
	return rec.Body.String()
}

func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		t.Fatal(err)
	}
	if g := d.GetGauge(); g != nil {
		return g.GetValue()
	}
	return d.GetCounter().GetValue()
}

// TestRequestIDForwarded checks the vendor receives our request id, never
// the one a browser chose.
func TestRequestIDForwarded(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get("X-Request-Id"):
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"sym":"AAPL","last":1}`)
	}))
	defer vendor.Close()
	o := newObservedAppWith(t, vendor.URL)
	hdr := map[string]string{"X-CSRF": "1", "Content-Type": "application/json", "Origin": "http://127.0.0.1:8080"}
	login := o.do("POST", "/auth/login", "127.0.0.1:5", `{"username":"alice","password":"`+obsPassword+`"}`, hdr)
	if login.Code != 200 {
		t.Fatalf("login = %d", login.Code)
	}
	c := login.Result().Cookies()[0]
	rec := o.do("GET", "/api/demo/v1/quote/AAPL", "127.0.0.1:5", "", map[string]string{"Cookie": c.Name + "=" + c.Value, "X-Request-Id": "browser-chosen"})
	if rec.Code != 200 {
		t.Fatalf("quote = %d %s", rec.Code, rec.Body)
	}
	ours := rec.Header().Get("X-Request-Id")
	select {
	case v := <-got:
		if v != ours || v == "browser-chosen" {
			t.Errorf("vendor saw X-Request-Id %q, want ours %q", v, ours)
		}
	default:
		t.Fatal("the vendor was not called")
	}
}
