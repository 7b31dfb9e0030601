package config

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFromEnvDefaults(t *testing.T) {
	t.Parallel()
	s, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr != "127.0.0.1:8080" || s.AdminAddr != "127.0.0.1:9090" || s.Secrets != "env" || s.SessionStore != "memory" {
		t.Fatalf("defaults wrong: %+v", s)
	}
	if s.SessionIdle != 30*time.Minute || s.SessionMax != 12*time.Hour || s.SecretRefresh != 5*time.Minute {
		t.Fatalf("durations wrong: %v %v %v", s.SessionIdle, s.SessionMax, s.SecretRefresh)
	}
	if got, want := s.LimitIP.String(), "100/1s"; got != want {
		t.Fatalf("LimitIP = %s, want %s", got, want)
	}
	if got, want := s.PublicOrigins, []string{"http://127.0.0.1:8080", "http://localhost:8080"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("PublicOrigins = %v, want %v", got, want)
	}
	if s.WSMaxSymbols != 50 || s.WSMaxConns != 5 {
		t.Fatalf("ws limits wrong: %d %d", s.WSMaxSymbols, s.WSMaxConns)
	}
}

func TestFromEnvAdminDisabled(t *testing.T) {
	t.Parallel()
	s, err := FromEnv(env(map[string]string{"TICKGATE_ADMIN_ADDR": ""}))
	if err != nil {
		t.Fatal(err)
	}
	if s.AdminAddr != "" {
		t.Fatalf("AdminAddr = %q, want disabled", s.AdminAddr)
	}
}

func TestFromEnvProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, key, value, want string
	}{
		{"addr", "TICKGATE_ADDR", "nonsense", "TICKGATE_ADDR: \"nonsense\" is not host:port"},
		{"secrets", "TICKGATE_SECRETS", "vault", "TICKGATE_SECRETS: \"vault\" is not env or aws"},
		{"idle duration", "TICKGATE_SESSION_IDLE", "soon", "TICKGATE_SESSION_IDLE: \"soon\" is not a duration"},
		{"limit", "TICKGATE_LIMIT_IP", "100", "TICKGATE_LIMIT_IP: \"100\": want N/duration"},
		{"limit zero", "TICKGATE_LIMIT_LOGIN", "0/1m", "is not a positive whole number"},
		{"store", "TICKGATE_SESSION_STORE", "redis", "TICKGATE_REDIS_URL: required"},
		{"origin", "TICKGATE_PUBLIC_ORIGIN", "app.example.com", "TICKGATE_PUBLIC_ORIGIN: \"app.example.com\" is not an origin"},
		{"proxies", "TICKGATE_TRUSTED_PROXIES", "10.0.0.0/33", "TICKGATE_TRUSTED_PROXIES: \"10.0.0.0/33\" is not a CIDR"},
		{"max symbols", "TICKGATE_WS_MAX_SYMBOLS", "-1", "TICKGATE_WS_MAX_SYMBOLS"},
		{"log format", "TICKGATE_LOG_FORMAT", "xml", "TICKGATE_LOG_FORMAT"},
		{"tls pair", "TICKGATE_TLS_CERT", "/x.pem", "set both or neither"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := FromEnv(env(map[string]string{tc.key: tc.value}))
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestFromEnvAllProblemsAtOnce(t *testing.T) {
	t.Parallel()
	_, err := FromEnv(env(map[string]string{"TICKGATE_ADDR": "x", "TICKGATE_SECRETS": "y", "TICKGATE_LIMIT_IP": "z"}))
	if got := len(Lines(err)); got != 3 {
		t.Fatalf("got %d problems, want 3: %v", got, err)
	}
}

func TestParseLimit(t *testing.T) {
	t.Parallel()
	l, err := ParseLimit("20/1s, 1000/1h")
	if err != nil || len(l) != 2 || l[0].Tokens != 20 || l[0].Interval != time.Second || l[1].Tokens != 1000 || l[1].Interval != time.Hour {
		t.Fatalf("ParseLimit = %v, %v", l, err)
	}
	if l, err := ParseLimit("5/m"); err != nil || l[0].Interval != time.Minute {
		t.Fatalf("5/m = %v, %v", l, err)
	}
	for _, bad := range []string{"", "1/1s,2/1s,3/1s", "x/1s", "1/x", "1/0s", "-1/1s"} {
		if _, err := ParseLimit(bad); err == nil {
			t.Errorf("ParseLimit(%q) succeeded", bad)
		}
	}
}

const goodYAML = `
upstreams:
  vendor:
    base_url: https://api.vendor.example
    key: {secret: VENDOR_KEY, placement: "query:apikey"}
    routes:
      - paths: ["/v1/quote/*", "/v1/ref/**"]
    timeout: 5s
feeds:
  live:
    url: wss://stream.vendor.example/v1
    key: {secret: ${KEY_NAME}}
    adapter: {preset: marketsim}
limits:
  ip: 20/1s,1000/1h
`

func TestParseFile(t *testing.T) {
	t.Parallel()
	f, err := Parse([]byte(goodYAML), func(k string) string { return map[string]string{"KEY_NAME": "FEED_KEY"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Upstreams["vendor"].Timeout.Std(); got != 5*time.Second {
		t.Fatalf("timeout = %v", got)
	}
	if got, want := strings.Join(f.SecretNames(), ","), "FEED_KEY,VENDOR_KEY"; got != want {
		t.Fatalf("SecretNames = %s, want %s", got, want)
	}
	if got := f.Limits.IP.String(); got != "20/1s,1000/1h" {
		t.Fatalf("limits.ip = %s", got)
	}
}

func TestParseFileProblems(t *testing.T) {
	t.Parallel()
	get := func(string) string { return "" }
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "upstreams:\n  a:\n    base_url: https://x\n    bogus: 1\n", "field bogus not found"},
		{"unset env", "feeds:\n  a:\n    url: ${NOPE}\n", "${NOPE} is not set"},
		{"http remote", "upstreams:\n  a:\n    base_url: http://vendor.example\n    key: {secret: K, placement: bearer}\n    routes: [{paths: [/x]}]\n", "http is allowed only for loopback"},
		{"bad placement", "upstreams:\n  a:\n    base_url: https://v\n    key: {secret: K, placement: cookie}\n    routes: [{paths: [/x]}]\n", "is not query:<param>, header:<name> or bearer"},
		{"no routes", "upstreams:\n  a:\n    base_url: https://v\n    key: {secret: K, placement: bearer}\n", "at least one route"},
		{"dotdot pattern", "upstreams:\n  a:\n    base_url: https://v\n    key: {secret: K, placement: bearer}\n    routes: [{paths: [/v1/../admin]}]\n", "must not contain . or .. segments"},
		{"ws remote", "feeds:\n  a:\n    url: ws://stream.example\n    key: {secret: K}\n    adapter: {preset: marketsim}\n", "ws:// is allowed only for loopback"},
		{"unknown preset", "feeds:\n  a:\n    url: wss://s\n    key: {secret: K}\n    adapter: {preset: nope}\n", "is not a known preset"},
		{"bad name", "upstreams:\n  A/B:\n    base_url: https://v\n    key: {secret: K, placement: bearer}\n    routes: [{paths: [/x]}]\n", "name must be lower-case"},
		{"bad limit", "upstreams: {}\nlimits: {ip: lots}\n", "want N/duration"},
		{"empty", "", "nothing to serve"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.yaml), get)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDemoIsValid(t *testing.T) {
	t.Parallel()
	f := Demo("http://127.0.0.1:7070")
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := f.Feeds["demo"].URL, "ws://127.0.0.1:7070/v1/stream"; got != want {
		t.Fatalf("feed url = %s, want %s", got, want)
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add([]byte(goodYAML))
	f.Add([]byte("upstreams: {a: {base_url: 'http://[::1]:1'}}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Parse(b, func(string) string { return "x" })
	})
}

func TestEnvExampleDocumentsEveryVariable(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Variables() {
		re := regexp.MustCompile(`(?m)^#? ?` + v.Name + `=(.*)$`)
		m := re.FindStringSubmatch(string(b))
		if m == nil {
			t.Errorf(".env.example does not mention %s", v.Name)
			continue
		}
		if v.Default != "" && m[1] != v.Default {
			t.Errorf(".env.example: %s=%s, but the default is %s", v.Name, m[1], v.Default)
		}
	}
}

// TestREADMEExamplesAreValid keeps the README's YAML examples true.
func TestREADMEExamplesAreValid(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(b, -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d yaml examples in README.md", len(blocks))
	}
	for i, blk := range blocks {
		if _, err := Parse(blk[1], func(string) string { return "x" }); err != nil {
			t.Errorf("README yaml example %d: %v", i+1, err)
		}
	}
}
