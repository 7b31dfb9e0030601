package app

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newApp(t *testing.T, env map[string]string) *App {
	t.Helper()
	s, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	cache := secrets.NewCache(secrets.NewEnv(func(string) string { return "app-test-key-123456" }), secrets.CacheConfig{})
	if err := cache.Load(context.Background(), config.DemoKeySecret); err != nil {
		t.Fatal(err)
	}
	users, _ := session.NewUsers(nil)
	store, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Settings: s, File: config.Demo("http://127.0.0.1:1"), Secrets: cache, Users: users, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); _ = store.Close(); cache.Close() })
	return a
}

func serve(a *App, method, path, remote string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	r.RemoteAddr = remote
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, r)
	return rec
}

func TestPlainHTTPOnlyForLoopbackOrHTTPSProxy(t *testing.T) {
	t.Parallel()
	a := newApp(t, map[string]string{
		"TICKGATE_ADDR": "0.0.0.0:8080", "TICKGATE_TRUSTED_PROXIES": "10.0.0.0/8",
		"TICKGATE_PUBLIC_ORIGIN": "https://app.example.com",
	})
	tests := []struct {
		name, method, path, remote string
		hdr                        map[string]string
		code                       int
		hsts                       bool
	}{
		{"direct client is redirected", "GET", "/auth/session", "203.0.113.5:1", nil, 308, false},
		{"direct POST is refused", "POST", "/auth/login", "203.0.113.5:1", nil, 403, false},
		{"proxy saying http is redirected", "GET", "/auth/session", "10.0.0.1:1", map[string]string{"X-Forwarded-Proto": "http"}, 308, false},
		{"proxy saying https is served with HSTS", "GET", "/auth/session", "10.0.0.1:1", map[string]string{"X-Forwarded-Proto": "https"}, 401, true},
		{"spoofed proto from untrusted peer", "GET", "/auth/session", "203.0.113.5:1", map[string]string{"X-Forwarded-Proto": "https"}, 308, false},
		{"loopback is served", "GET", "/auth/session", "127.0.0.1:1", nil, 401, false},
		{"health checks are exempt", "GET", "/healthz", "10.0.0.1:1", nil, 200, false},
	}
	for _, tc := range tests {
		rec := serve(a, tc.method, tc.path, tc.remote, tc.hdr)
		if rec.Code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.code)
		}
		if got := rec.Header().Get("Strict-Transport-Security") != ""; got != tc.hsts {
			t.Errorf("%s: HSTS present = %v, want %v", tc.name, got, tc.hsts)
		}
		if tc.code == 308 && !strings.HasPrefix(rec.Header().Get("Location"), "https://app.example.com/") {
			t.Errorf("%s: Location %q", tc.name, rec.Header().Get("Location"))
		}
	}
}

func TestMethodsAndHeaders(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil)
	tests := []struct {
		method, path string
		code         int
		errCode      string
	}{
		{"HEAD", "/auth/session", 401, ""},
		{"GET", "/auth/login", 405, "method_not_allowed"},
		{"PUT", "/healthz", 405, "method_not_allowed"},
		{"DELETE", "/readyz", 405, "method_not_allowed"},
		{"GET", "/no/such/page", 404, "not_found"},
		{"GET", "/api/nope/x", 401, "no_session"},
		{"POST", "/ws/demo", 401, "no_session"},
	}
	for _, tc := range tests {
		rec := serve(a, tc.method, tc.path, "127.0.0.1:1", nil)
		if rec.Code != tc.code || (tc.errCode != "" && !strings.Contains(rec.Body.String(), `"code":"`+tc.errCode+`"`)) {
			t.Errorf("%s %s = %d %s, want %d %s", tc.method, tc.path, rec.Code, rec.Body, tc.code, tc.errCode)
		}
		h := rec.Header()
		for _, name := range []string{"X-Request-Id", "Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy"} {
			if h.Get(name) == "" {
				t.Errorf("%s %s: missing %s", tc.method, tc.path, name)
			}
		}
		if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: security headers wrong: %v", tc.method, tc.path, h)
		}
	}
}

func TestReadyzDrains(t *testing.T) {
	t.Parallel()
	a := newApp(t, nil)
	if rec := serve(a, "GET", "/readyz", "127.0.0.1:1", nil); rec.Code != 200 {
		t.Fatalf("readyz = %d %s", rec.Code, rec.Body)
	}
	a.Drain()
	a.Drain()
	if rec := serve(a, "GET", "/readyz", "127.0.0.1:1", nil); rec.Code != 503 {
		t.Fatalf("readyz while draining = %d", rec.Code)
	}
}
