package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/marketsim"
)

// startTLSVendor serves marketsim over HTTPS with httptest's own
// certificate (a CA no system trusts, as a corporate TLS-inspecting proxy
// presents) and returns the server and a PEM file of that CA.
func startTLSVendor(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	sim, err := marketsim.New(marketsim.Options{Keys: []string{testKey}, RESTRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	srv := httptest.NewUnstartedServer(sim.Handler())
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "corporate-ca.pem")
	// A bundle as corporate IT hands it out: a comment line, the CA.
	pemData := "corporate proxy CA\n" + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	if err := os.WriteFile(caFile, []byte(pemData), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile
}

// TestUpstreamCAFile: a vendor (REST and wss feed) whose certificate
// chains to a CA outside the system roots is refused (clean 502 JSON, no
// key anywhere) until TICKGATE_UPSTREAM_CA_FILE names that CA; then REST
// and the feed work, with verification still on.
func TestUpstreamCAFile(t *testing.T) {
	srv, caFile := startTLSVendor(t)
	env := map[string]string{
		"TICKGATE_DEMO_KEY":        testKey,
		"TICKGATE_DEMO_PASSWORD":   testPassword,
		"TICKGATE_DEMO_VENDOR_URL": srv.URL, // https://127.0.0.1:port, feed wss://
	}

	// Without the CA: refused, cleanly.
	untrusted := start(t, env)
	rec := &recorder{}
	b := newBrowser(t, untrusted.url, rec)
	login(t, b)
	resp, body := b.do("GET", "/api/demo/v1/quote/AAPL", "", nil)
	if resp.StatusCode != http.StatusBadGateway || errorCode(t, body) != "upstream_unavailable" {
		t.Errorf("untrusted vendor: %d %s, want 502 upstream_unavailable", resp.StatusCode, body)
	}
	if strings.Contains(body, "x509") || strings.Contains(body, "127.0.0.1") {
		t.Errorf("the 502 body shows transport details: %s", body)
	}
	waitLog(t, untrusted, "certificate signed by unknown authority")
	// The feed is refused too: the page is told the upstream is not there.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := b.dialWS(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	ws.until(ctx, "ready", nil)
	ws.send(ctx, map[string]any{"action": "subscribe", "symbols": []string{"AAPL"}})
	ws.until(ctx, "status", func(m wsMsg) bool { return m.Upstream == "reconnecting" })
	ws.conn.CloseNow()
	if err := untrusted.stop(); err != nil {
		t.Fatal(err)
	}
	for what, s := range map[string]string{"browser": rec.String(), "log": untrusted.stderr.String()} {
		if strings.Contains(s, testKey) {
			t.Errorf("the key reached the %s", what)
		}
	}

	// With the CA: REST and the feed work.
	env["TICKGATE_UPSTREAM_CA_FILE"] = caFile
	trusted := start(t, env)
	rec = &recorder{}
	b = newBrowser(t, trusted.url, rec)
	login(t, b)
	resp, body = b.do("GET", "/api/demo/v1/quote/AAPL", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"AAPL"`) {
		t.Fatalf("trusted vendor: %d %s", resp.StatusCode, body)
	}
	ws, _, err = b.dialWS(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.conn.CloseNow()
	ws.until(ctx, "ready", nil)
	ws.send(ctx, map[string]any{"action": "subscribe", "symbols": []string{"AAPL"}})
	ws.until(ctx, "data", hasDataFor("AAPL"))
	ws.conn.CloseNow()
	if err := trusted.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rec.String()+trusted.stderr.String(), testKey) {
		t.Error("the key reached the browser or the log")
	}
}

// waitLog waits until inst's log contains s.
func waitLog(t *testing.T, inst *instance, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(inst.stderr.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", s, inst.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUpstreamCAFileErrors: a CA file that cannot be used stops start-up
// (and check-config) with one line naming the setting; a private key put
// there by mistake is named, never printed.
func TestUpstreamCAFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	writeFile(t, empty, "no certificates here\n")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	withKey := filepath.Join(dir, "key.pem")
	writeFile(t, withKey, keyPEM)
	garbled := filepath.Join(dir, "garbled.pem")
	writeFile(t, garbled, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")})))

	cases := []struct{ name, file, want string }{
		{"missing", filepath.Join(dir, "nope.pem"), "TICKGATE_UPSTREAM_CA_FILE: cannot read " + filepath.Join(dir, "nope.pem") + ": no such file or directory"},
		{"no certificate", empty, "TICKGATE_UPSTREAM_CA_FILE: " + empty + " contains no PEM certificate"},
		{"private key", withKey, "holds a EC PRIVATE KEY block; only CERTIFICATE blocks belong in a CA bundle"},
		{"garbled", garbled, "certificate 1 does not parse"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, cmd := range []string{"check-config", "serve"} {
				env := map[string]string{"TICKGATE_ADMIN_ADDR": "", "TICKGATE_ADDR": "127.0.0.1:0", "TICKGATE_UPSTREAM_CA_FILE": tc.file}
				_, stderr, err := runWith(t, []string{cmd}, env, "")
				out := stderr
				if err != nil {
					out += err.Error()
				}
				if err == nil || !strings.Contains(out, tc.want) {
					t.Fatalf("%s: err=%v stderr=%q, want %q", cmd, err, stderr, tc.want)
				}
				if cmd == "check-config" && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
					t.Errorf("check-config: more than one line: %q", stderr)
				}
				if strings.Contains(out, keyPEM[40:80]) {
					t.Fatalf("%s printed the private key", cmd)
				}
			}
		})
	}
}
