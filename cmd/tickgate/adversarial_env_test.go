package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdversarialStaleDotEnv starts the real program with a stale .env
// that would weaken every security setting it names (trust every proxy,
// serve a missing certificate, a leaked demo password, a lax login limit,
// a public demo, no log detail) under an environment that sets each of
// them, some to the empty string. The running product must follow the
// environment: the old password fails, spoofed X-Forwarded-For from the
// (untrusted) loopback peer does not dodge the login limit or appear as
// the client address in the log, and it serves plain HTTP on loopback.
func TestAdversarialStaleDotEnv(t *testing.T) {
	t.Parallel()
	const stalePassword = "stale-password-from-2023"
	envFile := filepath.Join(t.TempDir(), ".env")
	stale := strings.Join([]string{
		"TICKGATE_TRUSTED_PROXIES=0.0.0.0/0,::/0",
		"TICKGATE_TLS_CERT=/nonexistent/stale-cert.pem",
		"TICKGATE_TLS_KEY=/nonexistent/stale-key.pem",
		"TICKGATE_DEMO_PASSWORD=" + stalePassword,
		"TICKGATE_LIMIT_LOGIN=1000/1s",
		"TICKGATE_DEMO_PUBLIC=1",
		"TICKGATE_INSECURE_HTTP=1",
		"TICKGATE_ADDR=0.0.0.0:0",
		"TICKGATE_LOG_LEVEL=error",
		"export TICKGATE_USERS=mallory:$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"",
	}, "\n")
	if err := os.WriteFile(envFile, []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	inst := start(t, map[string]string{
		"TICKGATE_ENV_FILE":        envFile,
		"TICKGATE_TRUSTED_PROXIES": "",
		"TICKGATE_TLS_CERT":        "",
		"TICKGATE_TLS_KEY":         "",
		"TICKGATE_DEMO_PASSWORD":   testPassword,
		"TICKGATE_DEMO_KEY":        testKey,
		"TICKGATE_LIMIT_LOGIN":     "3/1m",
		"TICKGATE_DEMO_PUBLIC":     "0",
		"TICKGATE_INSECURE_HTTP":   "0",
		"TICKGATE_USERS":           "",
	})
	if !strings.HasPrefix(inst.url, "http://127.0.0.1:") {
		t.Fatalf("serving %s; the environment asked for plain HTTP on loopback", inst.url)
	}
	loginAs := func(user, password, xff string) int {
		t.Helper()
		req, err := http.NewRequest("POST", inst.url+"/auth/login", strings.NewReader(`{"username":"`+user+`","password":"`+password+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF", "1")
		req.Header.Set("Origin", inst.url)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
			req.Header.Set("X-Real-IP", xff)
			req.Header.Set("Forwarded", "for="+xff)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if got := loginAs("demo", stalePassword, ""); got != http.StatusUnauthorized {
		t.Errorf("login with the stale .env password = %d, want 401", got)
	}
	if got := loginAs("demo", testPassword, ""); got != http.StatusOK {
		t.Errorf("login with the environment's password = %d, want 200", got)
	}
	// The .env's TICKGATE_USERS (set empty in the environment) adds no user.
	if got := loginAs("mallory", "anything", ""); got != http.StatusUnauthorized {
		t.Errorf("login as the .env's user = %d, want 401", got)
	}
	// The environment's 3/1m limit per address holds, whatever address
	// the untrusted peer claims: at most one more attempt gets through
	// (the success above was refunded), then every one is refused.
	limited := 0
	for i, spoof := range []string{"198.51.100.1", "2001:db8::7", "[2001:db8::8]:443", "203.0.113.9, 198.51.100.2", "unknown", "::ffff:192.0.2.1"} {
		got := loginAs(fmt.Sprintf("nobody%d", i), "wrong", spoof)
		switch {
		case got == http.StatusTooManyRequests:
			limited++
		case limited > 0 || i > 0:
			t.Errorf("attempt with spoofed %q = %d, want 429 (the .env's trusted proxies must not apply)", spoof, got)
		}
	}
	if limited < 5 {
		t.Errorf("%d of 6 spoofed attempts limited, want at least 5", limited)
	}
	// Anonymous API calls stay refused (no public demo from the .env).
	res, err := http.Get(inst.url + "/api/demo/v1/quote/AAPL")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous API call = %d, want 401", res.StatusCode)
	}
	// The log level is the environment's (debug: info lines are kept)
	// and the spoofed addresses never stand for the client.
	log := inst.stderr.String()
	if !strings.Contains(log, `"level":"INFO"`) {
		t.Error("no info line: the .env's TICKGATE_LOG_LEVEL=error won over the environment")
	}
	for _, spoof := range []string{"198.51.100.1", "2001:db8::7", "203.0.113.9"} {
		if strings.Contains(log, `"client_ip":"`+spoof) || strings.Contains(log, `"ip":"`+spoof) {
			t.Errorf("log names spoofed %s as the client", spoof)
		}
	}
}
