package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickgate/tickgate/marketsim"
	"github.com/tickgate/tickgate/secrets/awssm/smtest"
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
