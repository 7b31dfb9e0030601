package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickgate/tickgate/marketsim"
	"github.com/tickgate/tickgate/secrets/awssm/smtest"
	"github.com/tickgate/tickgate/session"
)

// TestAWSRotationMidTraffic: keys come from a (local) AWS Secrets Manager;
// while browsers poll quotes and hold a live feed, the key is rotated in
// Secrets Manager and revoked at the vendor. No browser request fails,
// and the feed resumes on the new key with no browser action.
func TestAWSRotationMidTraffic(t *testing.T) {
	const keyA, keyB = "rotation-key-A-0123456789", "rotation-key-B-9876543210"
	sm := smtest.New(t)
	sm.Setenv(t)
	sm.Put("tickgate/test", `{"TICKGATE_DEMO_KEY":"`+keyA+`"}`)

	sim, err := marketsim.New(marketsim.Options{Keys: []string{keyA}, RESTRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	inst := start(t, map[string]string{
		"TICKGATE_SECRETS": "aws", "TICKGATE_AWS_SECRET_ID": "tickgate/test",
		"TICKGATE_DEMO_VENDOR_URL": sim.URL(), "TICKGATE_DEMO_PASSWORD": testPassword,
		"TICKGATE_LIMIT_IP": "1000/1s", "TICKGATE_LIMIT_SESSION": "1000/1s",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rec := &recorder{}
	b := newBrowser(t, inst.url, rec)
	login(t, b)
	ws, _, err := b.dialWS(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	ws.until(ctx, "ready", nil)
	ws.send(ctx, map[string]any{"action": "subscribe", "symbols": []string{"AAPL"}})
	ws.until(ctx, "data", hasDataFor("AAPL"))

	// Quote traffic throughout the rotation; every answer must be a quote.
	var failures atomic.Int64
	var served atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, body := b.do("GET", "/api/demo/v1/quote/MSFT", "", nil)
				var q struct{ Symbol string }
				if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &q) != nil || q.Symbol != "MSFT" {
					failures.Add(1)
					t.Errorf("quote during rotation: %d %s", resp.StatusCode, body)
				}
				served.Add(1)
				time.Sleep(5 * time.Millisecond) // steady traffic, well inside the limits
			}
		}()
	}
	waitServed := func(n int64) {
		t.Helper()
		target := served.Load() + n
		for served.Load() < target {
			if ctx.Err() != nil {
				t.Fatal("traffic stalled")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitServed(20)

	// Rotate: the new key goes into Secrets Manager, then the vendor
	// revokes the old one and drops its streams.
	sm.Put("tickgate/test", `{"TICKGATE_DEMO_KEY":"`+keyB+`"}`)
	if err := sim.SetKeys(keyB); err != nil {
		t.Fatal(err)
	}
	sim.DropAll()
	waitServed(50)

	// The feed comes back on the new key: reconnecting, then data again.
	ws.until(ctx, "status", func(m wsMsg) bool { return m.Upstream == "reconnecting" })
	ws.until(ctx, "data", hasDataFor("AAPL"))
	close(stop)
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d browser requests failed during rotation\n%s", n, inst.stderr.String()[max(0, len(inst.stderr.String())-6000):])
	}
	if got := sm.CallsFor("tickgate/test"); got > 10 {
		t.Errorf("%d Secrets Manager calls for one rotation; invalidation is not single-flighted", got)
	}
	ws.conn.CloseNow()
	if err := inst.stop(); err != nil {
		t.Fatal(err)
	}
	for what, s := range map[string]string{"bytes received": rec.String(), "log output": inst.stderr.String()} {
		for _, secret := range []string{keyA, keyB, testPassword} {
			if strings.Contains(s, secret) {
				t.Errorf("%s contain a secret", what)
			}
		}
	}
}

// TestAWSStartupFailures: each way the secret can be wrong stops start-up
// with one line naming the secret id and never a value.
func TestAWSStartupFailures(t *testing.T) {
	sm := smtest.New(t)
	sm.Setenv(t)
	const value = "a-secret-value-0123456789"
	tests := []struct {
		name, secret, want string
		fail               smtest.Failure
	}{
		{"missing secret", "", "tickgate/missing", ""},
		{"missing field", `{"OTHER":"` + value + `"}`, "VENDOR_KEY", ""},
		{"not json", value, "tickgate/missing", ""},
		{"access denied", `{"VENDOR_KEY":"` + value + `"}`, "access denied", smtest.FailDenied},
	}
	dir := t.TempDir()
	cfg := dir + "/tickgate.yaml"
	writeFile(t, cfg, "upstreams:\n  vendor:\n    base_url: https://api.vendor.example\n    key: {secret: VENDOR_KEY, placement: \"query:apikey\"}\n    routes: [{paths: [\"/v1/quote/*\"]}]\n")
	const users = "alice:$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sm.Delete("tickgate/missing")
			sm.Fail(smtest.All, smtest.FailNone)
			if tc.secret != "" {
				sm.Put("tickgate/missing", tc.secret)
			}
			if tc.fail != "" {
				sm.Fail(smtest.All, tc.fail)
			}
			env := map[string]string{"TICKGATE_CONFIG": cfg, "TICKGATE_USERS": users, "TICKGATE_SECRETS": "aws",
				"TICKGATE_AWS_SECRET_ID": "tickgate/missing", "TICKGATE_ADMIN_ADDR": "", "TICKGATE_ADDR": "127.0.0.1:0"}
			_, stderr, err := runWith(t, []string{"check-config"}, env, "")
			if err == nil || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("check-config: err=%v stderr=%q, want one line mentioning %q", err, stderr, tc.want)
			}
			_, _, err = runWith(t, nil, env, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("serve: err=%v, want it to mention %q", err, tc.want)
			}
			if strings.Contains(stderr+err.Error(), value) {
				t.Fatal("a secret value was printed")
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAWSPerKeySecrets: keys named by aws_secret in the YAML come from
// secrets of their own ("id#field" in a JSON secret, or a whole plain
// secret string), with no TICKGATE_AWS_SECRET_ID; the vendor sees them
// and nothing prints them. Each way the references can be wrong is one
// start-up line.
func TestAWSPerKeySecrets(t *testing.T) {
	const restKey, otherKey = "per-key-rest-0123456789", "per-key-plain-9876543210"
	sm := smtest.New(t)
	sm.Setenv(t)
	sm.Put("vendor/rest", `{"apiKey":"`+restKey+`","unused":"x"}`)
	sm.Put("vendor/plain", otherKey)

	sim, err := marketsim.New(marketsim.Options{Keys: []string{restKey}, RESTRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	hash, err := session.HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := dir + "/tickgate.yaml"
	writeFile(t, cfg, `upstreams:
  demo:
    base_url: `+sim.URL()+`
    key: {secret: REST_KEY, placement: "query:apikey", aws_secret: "vendor/rest#apiKey"}
    routes: [{paths: ["/v1/quote/*"]}]
  other:
    base_url: `+sim.URL()+`
    key: {secret: OTHER_KEY, placement: "query:apikey", aws_secret: vendor/plain}
    routes: [{paths: ["/v1/quote/*"]}]
`)
	env := map[string]string{"TICKGATE_CONFIG": cfg, "TICKGATE_USERS": "demo:" + hash, "TICKGATE_SECRETS": "aws"}

	checkEnv := func(extra map[string]string) map[string]string {
		out := map[string]string{"TICKGATE_ADMIN_ADDR": "", "TICKGATE_ADDR": "127.0.0.1:0"}
		for k, v := range env {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	out, stderr, err := runWith(t, []string{"check-config"}, checkEnv(nil), "")
	if err != nil {
		t.Fatalf("check-config: %v %s", err, stderr)
	}
	if strings.Contains(out+stderr, restKey) || strings.Contains(out+stderr, otherKey) {
		t.Fatal("check-config printed a key")
	}

	inst := start(t, env)
	b := newBrowser(t, inst.url, &recorder{})
	login(t, b)
	resp, body := b.do("GET", "/api/demo/v1/quote/AAPL", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"AAPL"`) {
		t.Fatalf("quote through the per-key secret: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(body, restKey) || strings.Contains(inst.stderr.String(), restKey) || strings.Contains(inst.stderr.String(), otherKey) {
		t.Fatal("a per-key secret value reached the browser or the log")
	}

	bad := []struct {
		name  string
		extra map[string]string
		yaml  string
		want  string
	}{
		{"missing field", nil, `aws_secret: "vendor/rest#apikey"`, "apikey"},
		{"missing secret", nil, `aws_secret: "vendor/gone"`, "vendor/gone"},
		{"malformed", nil, `aws_secret: "vendor/rest#"`, "needs one field name after #"},
		{"no id for the rest", nil, ``, "TICKGATE_AWS_SECRET_ID: required when TICKGATE_SECRETS=aws (no aws_secret in the YAML for REST_KEY)"},
		{"env provider", map[string]string{"TICKGATE_SECRETS": "env", "REST_KEY": restKey, "OTHER_KEY": otherKey}, `aws_secret: "vendor/rest#apiKey"`, "aws_secret is set in the YAML for OTHER_KEY, REST_KEY"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			file := dir + "/" + strings.ReplaceAll(tc.name, " ", "-") + ".yaml"
			ref := ""
			if tc.yaml != "" {
				ref = ", " + tc.yaml
			}
			writeFile(t, file, `upstreams:
  demo:
    base_url: `+sim.URL()+`
    key: {secret: REST_KEY, placement: "query:apikey"`+ref+`}
    routes: [{paths: ["/v1/quote/*"]}]
  other:
    base_url: `+sim.URL()+`
    key: {secret: OTHER_KEY, placement: "query:apikey", aws_secret: vendor/plain}
    routes: [{paths: ["/v1/quote/*"]}]
`)
			e := checkEnv(tc.extra)
			e["TICKGATE_CONFIG"] = file
			_, stderr, err := runWith(t, []string{"check-config"}, e, "")
			if err == nil || !strings.Contains(stderr, tc.want) {
				t.Fatalf("check-config: err=%v stderr=%q, want %q", err, stderr, tc.want)
			}
			if strings.Contains(stderr, restKey) || strings.Contains(stderr, otherKey) {
				t.Fatal("a value was printed")
			}
		})
	}
}

// TestAWSKeyAge: a vendor key whose Secrets Manager version is older than
// TICKGATE_SECRET_MAX_AGE is warned about in the log (with its version
// id), in /readyz (still 200) and measured in tickgate_secret_age_seconds.
func TestAWSKeyAge(t *testing.T) {
	const key = "aged-key-0123456789abcdef"
	sm := smtest.New(t)
	sm.Setenv(t)
	created := time.Now().Add(-100 * 24 * time.Hour)
	version := sm.PutCreated("tickgate/aged", `{"TICKGATE_DEMO_KEY":"`+key+`"}`, created)
	inst := start(t, map[string]string{"TICKGATE_SECRETS": "aws", "TICKGATE_AWS_SECRET_ID": "tickgate/aged",
		"TICKGATE_DEMO_PASSWORD": testPassword, "TICKGATE_SECRET_MAX_AGE": "90d"})

	logs := inst.stderr.String()
	if !strings.Contains(logs, "vendor key is older than the maximum age") || !strings.Contains(logs, version) || !strings.Contains(logs, `"age_days":100`) {
		t.Errorf("no key-age warning with the version id in the log:\n%s", logs)
	}
	b := newBrowser(t, inst.url, &recorder{})
	resp, body := b.do("GET", "/readyz", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "vendor key TICKGATE_DEMO_KEY is 100 days old, past the maximum of 90") {
		t.Errorf("readyz: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(body, version) {
		t.Error("readyz shows the version id on the public listener")
	}
	mresp, err := http.Get(inst.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	var age float64
	for _, line := range strings.Split(string(mb), "\n") {
		if rest, ok := strings.CutPrefix(line, `tickgate_secret_age_seconds{secret="TICKGATE_DEMO_KEY"} `); ok {
			age, _ = strconv.ParseFloat(rest, 64)
		}
	}
	if want := 100 * 24 * 3600.0; age < want-60 || age > want+600 {
		t.Errorf("tickgate_secret_age_seconds = %v, want about %v", age, want)
	}
	if strings.Contains(string(mb)+logs+body, key) {
		t.Fatal("the key was printed")
	}

	// 0 disables the warning; the age is still measured.
	quiet := start(t, map[string]string{"TICKGATE_SECRETS": "aws", "TICKGATE_AWS_SECRET_ID": "tickgate/aged",
		"TICKGATE_DEMO_PASSWORD": testPassword, "TICKGATE_SECRET_MAX_AGE": "0"})
	if strings.Contains(quiet.stderr.String(), "maximum age") {
		t.Error("warned with TICKGATE_SECRET_MAX_AGE=0")
	}
	if resp, body := newBrowser(t, quiet.url, &recorder{}).do("GET", "/readyz", "", nil); resp.StatusCode != 200 || strings.Contains(body, "warnings") {
		t.Errorf("readyz with no maximum: %d %s", resp.StatusCode, body)
	}
}
