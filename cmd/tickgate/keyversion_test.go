package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/marketsim"
	"github.com/tickgate/tickgate/secrets/awssm/smtest"
)

// TestKeyVersionOnUpstreamLog: with keys in Secrets Manager, each
// upstream access log line carries the version id of the key used
// (key_version), so vendor usage can be traced to a key generation; after
// a rotation the lines carry the new version. Never the value.
func TestKeyVersionOnUpstreamLog(t *testing.T) {
	const keyA, keyB = "version-key-A-0123456789", "version-key-B-9876543210"
	sm := smtest.New(t)
	sm.Setenv(t)
	v1 := sm.Put("tickgate/versioned", `{"TICKGATE_DEMO_KEY":"`+keyA+`"}`)
	sim, err := marketsim.New(marketsim.Options{Keys: []string{keyA}, RESTRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	inst := start(t, map[string]string{
		"TICKGATE_SECRETS": "aws", "TICKGATE_AWS_SECRET_ID": "tickgate/versioned",
		"TICKGATE_DEMO_VENDOR_URL": sim.URL(), "TICKGATE_DEMO_PASSWORD": testPassword,
	})
	rec := &recorder{}
	b := newBrowser(t, inst.url, rec)
	login(t, b)

	// lastVersion returns key_version of the last upstream access line
	// for path.
	lastVersion := func(path string) (string, bool) {
		t.Helper()
		var ver string
		found := false
		for _, l := range logLines(t, inst.stderr.String()) {
			if l["msg"] == "upstream request" && l["path"] == path {
				ver, _ = l["key_version"].(string)
				found = true
			}
		}
		return ver, found
	}
	quote := func(sym string) {
		t.Helper()
		resp, body := b.do("GET", "/api/demo/v1/quote/"+sym, "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("quote %s: %d %s", sym, resp.StatusCode, body)
		}
	}

	quote("AAPL")
	if ver, ok := lastVersion("/v1/quote/AAPL"); !ok || ver != v1 {
		t.Errorf("before rotation: key_version %q (line found: %v), want %q", ver, ok, v1)
	}

	// Rotate: new version in Secrets Manager, old key revoked at the
	// vendor. The next call is refused, the key re-read and the call
	// retried on the new version.
	v2 := sm.Put("tickgate/versioned", `{"TICKGATE_DEMO_KEY":"`+keyB+`"}`)
	if v2 == v1 {
		t.Fatal("smtest gave the new value the same version id")
	}
	if err := sim.SetKeys(keyB); err != nil {
		t.Fatal(err)
	}
	quote("MSFT")
	if ver, _ := lastVersion("/v1/quote/MSFT"); ver != v2 {
		t.Errorf("after rotation: key_version %q, want %q", ver, v2)
	}
	quote("GOOG")
	if ver, _ := lastVersion("/v1/quote/GOOG"); ver != v2 {
		t.Errorf("on the new key: key_version %q, want %q", ver, v2)
	}
	if err := inst.stop(); err != nil {
		t.Fatal(err)
	}
	for what, s := range map[string]string{"browser": rec.String(), "log": inst.stderr.String()} {
		if strings.Contains(s, keyA) || strings.Contains(s, keyB) {
			t.Errorf("a key value reached the %s", what)
		}
	}

	// Keys from the environment have no version: no key_version.
	plain := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword, "TICKGATE_DEMO_VENDOR_URL": sim.URL()})
	if err := sim.SetKeys(testKey); err != nil {
		t.Fatal(err)
	}
	pb := newBrowser(t, plain.url, &recorder{})
	login(t, pb)
	if resp, body := pb.do("GET", "/api/demo/v1/quote/IBM", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("quote with an env key: %d %s", resp.StatusCode, body)
	}
	if err := plain.stop(); err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, l := range logLines(t, plain.stderr.String()) {
		if l["msg"] == "upstream request" {
			seen = true
			if _, ok := l["key_version"]; ok {
				t.Errorf("key_version on an env key's line: %v", l)
			}
		}
	}
	if !seen {
		t.Error("no upstream request line with an env key")
	}
}
