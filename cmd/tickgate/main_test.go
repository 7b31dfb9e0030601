package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runWith(t *testing.T, args []string, env map[string]string, stdin string) (string, string, error) {
	t.Helper()
	if _, ok := env["TICKGATE_ENV_FILE"]; !ok {
		env["TICKGATE_ENV_FILE"] = "testdata/empty.env"
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		strings.NewReader(stdin), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestHashPassword(t *testing.T) {
	t.Parallel()
	out, _, err := runWith(t, []string{"hash-password"}, map[string]string{}, "s3cret-password\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "$argon2id$") || strings.Contains(out, "s3cret-password") {
		t.Fatalf("hash output %q", out)
	}
	users := "alice:" + strings.TrimSpace(out)
	if out, _, err := runWith(t, []string{"check-config"}, map[string]string{"TICKGATE_USERS": users}, ""); err != nil || !strings.Contains(out, "2 user(s)") {
		t.Fatalf("check-config with hashed user: %q %v", out, err)
	}
	if _, _, err := runWith(t, []string{"hash-password"}, map[string]string{}, ""); err == nil {
		t.Fatal("empty password accepted")
	}
}

func TestCheckConfig(t *testing.T) {
	t.Parallel()
	out, _, err := runWith(t, []string{"check-config"}, map[string]string{}, "")
	if err != nil || !strings.HasPrefix(out, "ok: demo mode") {
		t.Fatalf("demo check-config: %q %v", out, err)
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "tickgate.yaml")
	yaml := "upstreams:\n  vendor:\n    base_url: https://api.vendor.example\n    key: {secret: VENDOR_KEY, placement: \"query:apikey\"}\n    routes: [{paths: [\"/v1/quote/*\"]}]\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	const users = "alice:$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	// The secret is missing: one line naming it, never a value.
	_, stderr, err := runWith(t, []string{"check-config"}, map[string]string{"TICKGATE_CONFIG": cfg, "TICKGATE_USERS": users}, "")
	if !errors.Is(err, errReported) || !strings.Contains(stderr, "VENDOR_KEY") {
		t.Fatalf("missing secret: %q %v", stderr, err)
	}
	out, _, err = runWith(t, []string{"check-config"}, map[string]string{"TICKGATE_CONFIG": cfg, "TICKGATE_USERS": users, "VENDOR_KEY": "k-123456"}, "")
	if err != nil || !strings.Contains(out, "1 upstream(s)") || strings.Contains(out, "k-123456") {
		t.Fatalf("good config: %q %v", out, err)
	}

	// Several bad settings: one line each.
	_, stderr, err = runWith(t, []string{"check-config"}, map[string]string{"TICKGATE_ADDR": "nope", "TICKGATE_LIMIT_IP": "x"}, "")
	if err == nil || strings.Count(stderr, "\n") != 2 {
		t.Fatalf("bad settings: %q %v", stderr, err)
	}
}

func TestServeStartupFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"bad setting", map[string]string{"TICKGATE_SESSION_IDLE": "forever"}, "TICKGATE_SESSION_IDLE"},
		{"missing env file", map[string]string{"TICKGATE_ENV_FILE": "testdata/does-not-exist.env"}, "TICKGATE_ENV_FILE"},
		{"public plain http", map[string]string{"TICKGATE_ADDR": "0.0.0.0:0", "TICKGATE_PUBLIC_ORIGIN": "https://app.example.com"}, "plain HTTP"},
		{"public address without origin", map[string]string{"TICKGATE_ADDR": "0.0.0.0:0", "TICKGATE_TRUSTED_PROXIES": "10.0.0.0/8"}, "TICKGATE_PUBLIC_ORIGIN: required"},
		{"unknown command", nil, "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"serve"}
			if tc.env == nil {
				args, tc.env = []string{"bogus"}, map[string]string{}
			}
			tc.env["TICKGATE_ADMIN_ADDR"] = ""
			_, _, err := runWith(t, args, tc.env, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestServePortInUse(t *testing.T) {
	inst := start(t, map[string]string{"TICKGATE_ADMIN_ADDR": ""})
	addr := strings.TrimPrefix(inst.url, "http://")
	_, _, err := runWith(t, nil, map[string]string{"TICKGATE_ADDR": addr, "TICKGATE_ADMIN_ADDR": ""}, "")
	if err == nil || !strings.Contains(err.Error(), "TICKGATE_ADDR") {
		t.Fatalf("err = %v", err)
	}
}

func TestDotEnvNeverOverridesEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	envFile := filepath.Join(dir, ".env")
	if err := os.WriteFile(envFile, []byte("TICKGATE_TRUSTED_PROXIES=0.0.0.0/0\nTICKGATE_LOG_LEVEL=debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := loadEnv(func(k string) (string, bool) {
		return map[string]string{"TICKGATE_ENV_FILE": envFile, "TICKGATE_TRUSTED_PROXIES": ""}[k], k == "TICKGATE_ENV_FILE" || k == "TICKGATE_TRUSTED_PROXIES"
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := e.lookup("TICKGATE_TRUSTED_PROXIES"); v != "" {
		t.Fatalf(".env overrode an explicitly empty variable: %q", v)
	}
	if v := e.get("TICKGATE_LOG_LEVEL"); v != "debug" {
		t.Fatalf(".env value not used for an unset variable: %q", v)
	}
}
