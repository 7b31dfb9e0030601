package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickgate/tickgate/config"
)

// The whole-suite log scan (issue 9): every tickgate this package starts
// registers its log (start calls watchLog), every request a test browser
// makes registers the passwords it sends and the session cookies it
// receives (recordingTransport calls noteExchange), and
//
//   - each instance's log is checked against the secrets known when its
//     test ends (t.Cleanup, after the instance stopped), and
//   - TestMain checks every log of the run against every secret of the
//     run, so a session id of one test found in another test's log fails
//     the suite too.

// leakWatch is test-only state shared by every test of the package.
type leakWatch struct {
	mu      sync.Mutex
	secrets map[string]string // value → what it is (never printed)
	logs    []watchedLog
}

type watchedLog struct {
	test string
	buf  *syncBuffer
}

var leaks = &leakWatch{secrets: map[string]string{
	testKey:      "the test vendor key",
	testPassword: "the test password",
}}

// minSecretLen keeps short values (flags such as "1") out of the scan.
const minSecretLen = 6

// noteSecret adds a value that must never appear in any log.
func noteSecret(what, value string) {
	if len(value) < minSecretLen {
		return
	}
	leaks.mu.Lock()
	defer leaks.mu.Unlock()
	if _, ok := leaks.secrets[value]; !ok {
		leaks.secrets[value] = what
	}
}

// secretEnv reports whether an environment variable holds a secret value
// (rather than the name of a secret, a file path or a duration).
func secretEnv(name string) bool {
	switch name {
	case "TICKGATE_TLS_KEY", "TICKGATE_AWS_SECRET_ID", "TICKGATE_OIDC_CLIENT_SECRET", "TICKGATE_SECRETS",
		"TICKGATE_SECRET_MAX_AGE", "TICKGATE_SECRET_REFRESH":
		return false
	}
	for _, w := range []string{"KEY", "PASSWORD", "SECRET", "TOKEN"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// watchLog registers an instance's log and the secrets of its
// environment, and checks the log when the test ends. Call it before
// registering the cleanup that stops the instance, so the check runs
// after the instance stopped and wrote its last line.
func watchLog(t *testing.T, log *syncBuffer, env map[string]string) {
	t.Helper()
	for k, v := range env {
		if secretEnv(k) {
			noteSecret("environment variable "+k, v)
		}
		if k == "TICKGATE_REDIS_URL" {
			if u, err := url.Parse(v); err == nil {
				if pw, ok := u.User.Password(); ok {
					noteSecret("the Redis password", pw)
				}
			}
		}
	}
	leaks.mu.Lock()
	leaks.logs = append(leaks.logs, watchedLog{test: t.Name(), buf: log})
	leaks.mu.Unlock()
	t.Cleanup(func() {
		if found := scanLog(log.String()); len(found) > 0 {
			t.Errorf("tickgate's log contains %s", strings.Join(found, ", "))
		}
	})
}

// demoPasswordLine is the one line that prints a secret on purpose: the
// random demo password, for the person who started the demo.
var demoPasswordLine = regexp.MustCompile(`(?m)^tickgate: demo password \(random, this run only\): (\S+)\n`)

// scanLog returns what secrets (by description, never the value) occur in
// out, outside the demo password line.
func scanLog(out string) []string {
	if m := demoPasswordLine.FindStringSubmatch(out); m != nil {
		noteSecret("the random demo password", m[1])
		out = demoPasswordLine.ReplaceAllString(out, "")
	}
	leaks.mu.Lock()
	defer leaks.mu.Unlock()
	var found []string
	for v, what := range leaks.secrets {
		if strings.Contains(out, v) || strings.Contains(out, url.QueryEscape(v)) {
			found = append(found, what)
		}
	}
	slices.Sort(found)
	return found
}

// noteExchange registers the secrets of one browser request: the
// password of a login body, the cookies sent and the cookies set.
func noteExchange(req *http.Request, resp *http.Response) {
	if req.URL.Path == "/auth/login" && req.GetBody != nil {
		if body, err := req.GetBody(); err == nil {
			var v struct{ Password string }
			if json.NewDecoder(io.LimitReader(body, 1<<16)).Decode(&v) == nil {
				noteSecret("a login password", v.Password)
			}
			body.Close()
		}
	}
	for _, c := range req.Cookies() {
		noteSecret("a session cookie sent", c.Value)
	}
	if resp != nil {
		for _, c := range resp.Cookies() {
			noteSecret("a session cookie set", c.Value)
		}
	}
}

// TestMain runs the suite, then scans every log of the run for every
// secret of the run.
func TestMain(m *testing.M) {
	code := m.Run()
	leaks.mu.Lock()
	logs := slices.Clone(leaks.logs)
	leaks.mu.Unlock()
	for _, l := range logs {
		if found := scanLog(l.buf.String()); len(found) > 0 {
			fmt.Fprintf(os.Stderr, "whole-suite log scan: the log of %s contains %s\n", l.test, strings.Join(found, ", "))
			code = 1
		}
	}
	if code == 0 && testing.Verbose() {
		leaks.mu.Lock()
		fmt.Fprintf(os.Stderr, "whole-suite log scan: %d logs, %d secrets, none found\n", len(leaks.logs), len(leaks.secrets))
		leaks.mu.Unlock()
	}
	os.Exit(code)
}

// TestLeakScanFinds proves the scan is not vacuous: a log holding a
// registered secret is reported, by description only.
func TestLeakScanFinds(t *testing.T) {
	t.Parallel()
	noteSecret("a planted value", "planted-secret-value-0451")
	found := scanLog("{\"msg\":\"x\",\"v\":\"planted-secret-value-0451\"}\n")
	if !slices.Contains(found, "a planted value") {
		t.Errorf("scan found %v, want the planted value", found)
	}
	for _, f := range found {
		if strings.Contains(f, "planted-secret") {
			t.Errorf("scan result prints the secret: %q", f)
		}
	}
	found = scanLog("tickgate: demo password (random, this run only): random-demo-pw-77\nnothing else\n")
	if len(found) != 0 {
		t.Errorf("the demo password line itself was reported: %v", found)
	}
	if found := scanLog("later the password random-demo-pw-77 leaked\n"); !slices.Contains(found, "the random demo password") {
		t.Errorf("the demo password elsewhere was not reported: %v", found)
	}
	if !secretEnv("TICKGATE_DEMO_KEY") || !secretEnv("OIDC_CLIENT_SECRET") || secretEnv("TICKGATE_TLS_KEY") || secretEnv("TICKGATE_OIDC_CLIENT_SECRET") {
		t.Error("secretEnv classifies wrongly")
	}
}

// logLines parses the JSON lines of an instance's log (skipping the
// plain tickgate: lines printed for people).
func logLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, l)
		}
		recs = append(recs, rec)
	}
	return recs
}

// TestObservabilityEndToEnd runs the real program and checks the access
// log, the audit lines, request ids, and that the contract's metrics
// exist and move on the admin listener (and only there).
func TestObservabilityEndToEnd(t *testing.T) {
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword})
	if inst.admin == "" {
		t.Fatal("no admin listener")
	}
	before := scrapeMetrics(t, inst.admin)
	b := newBrowser(t, inst.url, &recorder{})
	if resp, _ := b.do("POST", "/auth/login", `{"username":"demo","password":"wrong-password-123"}`, map[string]string{"X-CSRF": "1"}); resp.StatusCode != 401 {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	login(t, b)
	resp, _ := b.do("GET", "/api/demo/v1/quote/AAPL?note=querymarker123", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("quote: %d", resp.StatusCode)
	}
	quoteID := resp.Header.Get("X-Request-Id")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := b.dialWS(ctx, "demo")
	if err != nil {
		t.Fatalf("ws: %v", err)
	}
	ws.until(ctx, "ready", nil)
	ws.send(ctx, map[string]any{"action": "subscribe", "symbols": []string{"AAPL"}})
	ws.until(ctx, "data", hasDataFor("AAPL"))
	// A frame is counted once its write returns, which may be just after
	// the browser has read it: wait for the count rather than race it.
	during := scrapeMetrics(t, inst.admin)
	for deadline := time.Now().Add(10 * time.Second); during[`tickgate_ws_frames_out_total{feed="demo"}`] < 1 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		during = scrapeMetrics(t, inst.admin)
	}
	ws.conn.Close(1000, "bye")
	if resp, _ := b.do("POST", "/auth/logout", "", map[string]string{"X-CSRF": "1"}); resp.StatusCode != 204 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := b.do("GET", "/metrics", "", nil); resp.StatusCode == 200 {
		t.Error("the public listener serves /metrics")
	}
	after := scrapeMetrics(t, inst.admin)

	// Metrics of DESIGN 1.4 exist and move.
	for _, m := range []struct {
		series string
		min    float64
		at     map[string]float64
	}{
		{`tickgate_http_requests_total{code="200",route="/auth/login"}`, 1, after},
		{`tickgate_http_requests_total{code="401",route="/auth/login"}`, 1, after},
		{`tickgate_http_requests_total{code="200",route="/api/:upstream/*"}`, 1, after},
		{`tickgate_ws_clients`, 1, during},
		{`tickgate_upstream_ws_connections{feed="demo"}`, 1, during},
		{`tickgate_secret_refresh_total{result="ok"}`, 1, before},
		{`tickgate_upstream_requests_total{code="200",upstream="demo"}`, 1, after},
		{`tickgate_ws_subscriptions{feed="demo"}`, 1, during},
		{`tickgate_ws_messages_in_total{feed="demo"}`, 1, during},
		{`tickgate_ws_frames_out_total{feed="demo"}`, 1, during},
		{`tickgate_logins_total{result="success"}`, 1, after},
		{`tickgate_logins_total{result="invalid_credentials"}`, 1, after},
		{`tickgate_sessions{store="memory"}`, 1, during},
	} {
		if got, ok := m.at[m.series]; !ok || got < m.min {
			t.Errorf("%s = %v (present %t), want >= %v", m.series, got, ok, m.min)
		}
	}
	for _, series := range []string{`tickgate_ratelimit_rejections_total{scope="ip"}`, `tickgate_anomalies_total{kind="unauthorized"}`} {
		if _, ok := before[series]; !ok {
			t.Errorf("%s missing before any traffic", series)
		}
	}

	// Stop, so the log is complete, then read it.
	if err := inst.stop(); err != nil {
		t.Fatal(err)
	}
	recs := logLines(t, inst.stderr.String())
	var access []map[string]any
	audits := map[string]bool{}
	quoteLines := 0
	for _, r := range recs {
		if r["msg"] == "request" {
			access = append(access, r)
		}
		if r["audit"] == true {
			audits[r["msg"].(string)] = true
			if strings.HasPrefix(r["msg"].(string), "ws ") && r["request_id"] == nil {
				t.Errorf("WebSocket audit line without the upgrade's request id: %v", r)
			}
		}
		if r["request_id"] == quoteID {
			quoteLines++
		}
	}
	if len(access) < 5 {
		t.Fatalf("only %d access lines", len(access))
	}
	for _, a := range access {
		for _, f := range []string{"request_id", "method", "route", "status", "bytes", "duration_ms", "client_ip", "user"} {
			if _, ok := a[f]; !ok {
				t.Errorf("access line lacks %s: %v", f, a)
			}
		}
		if _, ok := a["path"]; ok {
			t.Errorf("access line has the raw path: %v", a)
		}
	}
	if quoteLines == 0 {
		t.Errorf("no log line carries the quote's request id %s", quoteID)
	}
	if out := inst.stderr.String(); strings.Contains(out, "querymarker123") || strings.Contains(out, "wrong-password-123") {
		t.Error("the log holds a query string or a failed password")
	}
	for _, want := range []string{"config loaded", "login failed", "login", "logout", "ws open", "ws subscribe", "ws close"} {
		if !audits[want] {
			t.Errorf("no audit line %q; audit lines: %v", want, audits)
		}
	}
}

var sampleLine = regexp.MustCompile(`^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+|NaN|\+Inf)$`)

// scrapeMetrics reads the admin /metrics as series → value.
func scrapeMetrics(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, l := range bytes.Split(body, []byte("\n")) {
		m := sampleLine.FindSubmatch(l)
		if m == nil {
			continue
		}
		var v float64
		fmt.Sscan(string(m[2]), &v)
		out[string(m[1])] = v
	}
	return out
}

// TestNewLoggerFormats checks TICKGATE_LOG_FORMAT and _LEVEL reach the
// logger and that it scrubs a secret registered after it was built.
func TestNewLoggerFormats(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env   map[string]string
		json  bool
		debug bool
	}{
		{map[string]string{}, true, false}, // a buffer is not a terminal
		{map[string]string{"TICKGATE_LOG_FORMAT": "text", "TICKGATE_LOG_LEVEL": "debug"}, false, true},
		{map[string]string{"TICKGATE_LOG_FORMAT": "json", "TICKGATE_LOG_LEVEL": "warn"}, true, false},
	} {
		s, err := config.FromEnv(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		log, red, err := newLogger(s, &buf)
		if err != nil {
			t.Fatal(err)
		}
		red.Set("secrets", "late-registered-key-99")
		log.Debug("dbg")
		log.Warn("key late-registered-key-99")
		out := buf.String()
		if got := strings.HasPrefix(out, "{"); got != tc.json {
			t.Errorf("%v: JSON = %t: %s", tc.env, got, out)
		}
		if got := strings.Contains(out, "dbg"); got != tc.debug {
			t.Errorf("%v: debug = %t", tc.env, got)
		}
		if strings.Contains(out, "late-registered-key-99") || !strings.Contains(out, "[redacted]") {
			t.Errorf("%v: not scrubbed: %s", tc.env, out)
		}
	}
	// The Redis password is scrubbed wherever it appears, not only in URLs.
	s, err := config.FromEnv(func(k string) (string, bool) {
		v, ok := map[string]string{"TICKGATE_REDIS_URL": "redis://:redis-pass-4471@127.0.0.1:6379/0", "TICKGATE_SESSION_STORE": "redis"}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log, _, err := newLogger(s, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Warn("auth failed", "err", "WRONGPASS redis-pass-4471")
	if strings.Contains(buf.String(), "redis-pass-4471") {
		t.Errorf("Redis password logged: %s", buf.String())
	}
}
