//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// getStatus does one plain GET and returns the response (body read).
func getStatus(t *testing.T, url string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestReplicasShareLimits: two tickgate instances with
// TICKGATE_LIMIT_STORE=redis share one per-IP limit: requests to A and B
// together are refused at the limit, and the remaining count runs down
// across both. The buckets are in Redis under the deployment's prefix,
// keyed by a hash (no client address is stored).
func TestReplicasShareLimits(t *testing.T) {
	redisURL := testRedisURL(t)
	prefix := testRedisPrefix(t, redisURL)
	env := map[string]string{
		"TICKGATE_DEMO_KEY":      testKey,
		"TICKGATE_DEMO_PASSWORD": testPassword,
		"TICKGATE_LIMIT_STORE":   "redis",
		"TICKGATE_REDIS_URL":     redisURL,
		"TICKGATE_REDIS_PREFIX":  prefix,
		"TICKGATE_LIMIT_IP":      "6/1h",
	}
	a, b := start(t, env), start(t, env)
	const limit = 6
	for i := 1; i <= limit; i++ {
		base := a.url
		if i%2 == 0 {
			base = b.url
		}
		resp := getStatus(t, base+"/auth/session")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("request %d to %s = %d, want 401", i, base, resp.StatusCode)
		}
		if got, want := resp.Header.Get("X-RateLimit-Remaining"), strconv.Itoa(limit-i); got != want {
			t.Errorf("request %d to %s: X-RateLimit-Remaining = %q, want %q (one count across replicas)", i, base, got, want)
		}
	}
	for _, base := range []string{a.url, b.url} {
		resp := getStatus(t, base+"/auth/session")
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("request past the shared limit to %s = %d, want 429", base, resp.StatusCode)
		}
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("429 from %s: Retry-After %q", base, resp.Header.Get("Retry-After"))
		}
	}

	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := c.Keys(ctx, prefix+"ratelimit:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatalf("no rate-limit buckets under %sratelimit:", prefix)
	}
	for _, k := range keys {
		if strings.Contains(k, "127.0.0.1") {
			t.Errorf("Redis key %q holds the client address", k)
		}
	}
}

// TestLimitStoreOutage: while the rate-limit Redis is gone, request
// limits fail open (browsers keep being served) and logins fail closed;
// both are counted. Start-up with a Redis that does not answer fails
// with one line.
func TestLimitStoreOutage(t *testing.T) {
	rs := startRedisServer(t)
	inst := start(t, map[string]string{
		"TICKGATE_DEMO_KEY":      testKey,
		"TICKGATE_DEMO_PASSWORD": testPassword,
		"TICKGATE_LIMIT_STORE":   "redis",
		"TICKGATE_REDIS_URL":     rs.url(),
	})
	br := newBrowser(t, inst.url, &recorder{})
	login(t, br)
	wantStatus(t, "API with Redis up", br, http.MethodGet, "/api/demo/v1/quote/AAPL", http.StatusOK)

	rs.kill()
	wantStatus(t, "API with the limit store down (fail open)", br, http.MethodGet, "/api/demo/v1/quote/AAPL", http.StatusOK)
	other := newBrowser(t, inst.url, &recorder{})
	resp, body := other.do(http.MethodPost, "/auth/login", `{"username":"demo","password":"`+testPassword+`"}`, map[string]string{"X-CSRF": "1"})
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("login with the login limit store down = 200 %s; want it refused (fail closed)", body)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("refused login without Retry-After")
	}
	metrics := getBody(t, inst.admin+"/metrics")
	for _, want := range []string{
		`tickgate_ratelimit_store_errors_total{limiter="ip",policy="open"}`,
		`tickgate_ratelimit_store_errors_total{limiter="login",policy="closed"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(inst.stderr.String(), "rate-limit store unavailable") {
		t.Error("the outage was not logged")
	}

	// Start-up against a Redis that does not answer: one clear line.
	_, _, err := runWith(t, nil, map[string]string{
		"TICKGATE_ADDR": "127.0.0.1:0", "TICKGATE_ADMIN_ADDR": "",
		"TICKGATE_LIMIT_STORE": "redis", "TICKGATE_REDIS_URL": rs.url(),
	}, "")
	if err == nil || !strings.Contains(err.Error(), "TICKGATE_REDIS_URL: rate-limit store") || strings.Contains(oneLine(err), "\n") {
		t.Fatalf("start-up with Redis down: %v", err)
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = io.Copy(&buf, resp.Body)
	return buf.String()
}

// TestCheckConfigGuard: check-config builds the guard section: the geo
// database must open and parse, CIDRs and countries must be valid, and a
// rate-limit Redis must answer; each problem is one line.
func TestCheckConfigGuard(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	const feed = "feeds:\n  live: {url: wss://stream.vendor.example/v1, key: {secret: VENDOR_KEY}, adapter: {preset: marketsim}}\n"
	write := func(name, guard string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(feed+guard), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const users = "alice:$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	tests := []struct {
		name, config string
		env          map[string]string
		want         []string // one line each
	}{
		{"good", write("good.yaml", "guard:\n  deny: [203.0.113.0/24]\n  routes:\n    \"/api/*\": {limit: 10/1s}\n"), nil, nil},
		{"missing geo database", write("nodb.yaml", "guard:\n  geo: {database: "+filepath.Join(dir, "nope.mmdb")+", deny_countries: [KP]}\n"), nil,
			[]string{"guard.geo.database"}},
		{"not a geo database", write("bad.yaml", "guard:\n  geo: {database: "+garbage+", deny_countries: [KP]}\n"), nil,
			[]string{"guard.geo.database"}},
		{"bad rules", write("rules.yaml", "guard:\n  deny: [10.0.0.0/33]\n  feeds:\n    live: {allow_countries: [USA]}\n"), nil,
			[]string{"guard.deny[0]", "guard.feeds.live.allow_countries[0]", "guard.feeds.live: allow_countries and deny_countries need guard.geo.database"}},
		{"limit store not answering", write("redis.yaml", "guard:\n  deny: [203.0.113.0/24]\n"),
			map[string]string{"TICKGATE_LIMIT_STORE": "redis", "TICKGATE_REDIS_URL": "redis://127.0.0.1:1/0"},
			[]string{"TICKGATE_REDIS_URL: rate-limit store"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"TICKGATE_CONFIG": tc.config, "TICKGATE_USERS": users, "VENDOR_KEY": "vendor-key-123456"}
			for k, v := range tc.env {
				env[k] = v
			}
			out, stderr, err := runWith(t, []string{"check-config"}, env, "")
			if tc.want == nil {
				if err != nil || !strings.HasPrefix(out, "ok:") {
					t.Fatalf("check-config = %q %q %v", out, stderr, err)
				}
				return
			}
			if !errors.Is(err, errReported) {
				t.Fatalf("check-config err = %v (stdout %q)", err, out)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("check-config printed %d lines, want %d:\n%s", len(lines), len(tc.want), stderr)
			}
			for i, w := range tc.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d = %q, want it to mention %q", i+1, lines[i], w)
				}
			}
			if strings.Contains(stderr, "vendor-key-123456") {
				t.Error("a secret appears in the output")
			}
		})
	}
}
