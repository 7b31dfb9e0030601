package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tgconfig "github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/marketsim"
)

func TestParseFlagsDefaults(t *testing.T) {
	full, err := parseFlags([]string{"-tickgate", "a", "-marketsim", "b"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if full.wsClients != 10_000 || full.restRounds != 3 || full.wsWindow != 30*time.Second || full.wsRate != 1 || full.wsSymbols != 5 ||
		full.ws2Clients != 5_000 || full.ws2Rate != 4 {
		t.Errorf("full defaults: %+v", full)
	}
	quick, err := parseFlags([]string{"-quick", "-tickgate", "a", "-marketsim", "b"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if quick.wsClients != 1_000 || quick.restRounds != 1 || quick.restDuration != 4*time.Second || quick.ws2Clients != 0 || quick.wsRate != 2 {
		t.Errorf("quick defaults: %+v", quick)
	}
	own, err := parseFlags([]string{"-quick", "-ws-clients", "50", "-tickgate", "a", "-marketsim", "b"}, io.Discard)
	if err != nil || own.wsClients != 50 {
		t.Errorf("-ws-clients 50 with -quick: %d, %v", own.wsClients, err)
	}
}

func TestParseFlagsProfileDir(t *testing.T) {
	dir := t.TempDir()
	c, err := parseFlags([]string{"-profile-dir", dir, "-tickgate", "a", "-marketsim", "b"}, io.Discard)
	if err != nil || c.profileDir != dir {
		t.Errorf("-profile-dir %s: %q, %v", dir, c.profileDir, err)
	}
	for _, bad := range []string{filepath.Join(dir, "missing"), filepath.Join(dir, "file")} {
		if strings.HasSuffix(bad, "file") {
			if err := os.WriteFile(bad, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		_, err := parseFlags([]string{"-profile-dir", bad, "-tickgate", "a", "-marketsim", "b"}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "-profile-dir") {
			t.Errorf("-profile-dir %s: err = %v", bad, err)
		}
	}
}

func TestParseFlagsRefusesBadValues(t *testing.T) {
	base := []string{"-tickgate", "a", "-marketsim", "b"}
	for _, bad := range [][]string{
		{},                 // binaries missing
		{"-tickgate", "a"}, // marketsim missing
		append([]string{"-ws-clients", "100000"}, base...),
		append([]string{"-ws-clients", "-1"}, base...),
		append([]string{"-ws-symbols", "101"}, base...),
		append([]string{"-ws-rate", "-2"}, base...),
		append([]string{"-ws-rate", "NaN"}, base...),
		append([]string{"-ws2-rate", "0"}, base...),
		append([]string{"-ws2-clients", "60000"}, base...),
		append([]string{"-rest-conns", "5000"}, base...),
		append([]string{"-rest-duration", "1h"}, base...),
		append([]string{"-ws-window", "1ms"}, base...),
		append([]string{"-ws-batch", "-1s"}, base...),
		append(slices.Clone(base), "extra"),
		{"-no-such-flag"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", bad)
		}
	}
}

func TestTickgateConfigIsValid(t *testing.T) {
	for _, batch := range []time.Duration{0, 10 * time.Millisecond} {
		b := &bench{cfg: config{wsBatch: batch}}
		simURL := "http://127.0.0.1:7070"
		f, err := tgconfig.Parse([]byte(b.tickgateConfig(simURL)), func(string) string { return "" })
		if err != nil {
			t.Fatalf("the benchmark's YAML does not load: %v\n%s", err, b.tickgateConfig(simURL))
		}
		up, ok := f.Upstreams[feedName]
		if !ok || up.BaseURL != simURL || up.Budget.Rate != nil || up.CacheTTL != 0 || up.Coalesce == nil || *up.Coalesce {
			t.Errorf("upstream %+v: want marketsim with no budget, no cache, no coalescing", up)
		}
		if fd, ok := f.Feeds[feedName]; !ok || fd.URL != "ws://127.0.0.1:7070/v1/stream" || time.Duration(fd.BatchWindow) != batch {
			t.Errorf("feed %+v", fd)
		}
		if f.Guard.WS.ConnsPerIP < maxWSClients {
			t.Errorf("conns_per_ip %d is below the largest run", f.Guard.WS.ConnsPerIP)
		}
	}
	if _, err := tgconfig.ParseLimit(highLimit); err != nil {
		t.Errorf("highLimit: %v", err)
	}
}

func TestBareProxyAddsTheKey(t *testing.T) {
	var got *http.Request
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		_, _ = w.Write([]byte("ok"))
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	h, err := newBareProxy(u, "the-key")
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/quote/AAPL?apikey=browser&x=1", nil))
	if w.Code != 200 || got == nil {
		t.Fatalf("answer %d, upstream reached: %v", w.Code, got != nil)
	}
	if got.URL.Path != "/v1/quote/AAPL" || got.URL.Query().Get("apikey") != "the-key" || got.URL.Query().Get("x") != "1" {
		t.Errorf("upstream got %s", got.URL)
	}

	up.Close()
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/quote/AAPL", nil))
	if w.Code != http.StatusBadGateway || strings.Contains(w.Body.String(), "the-key") {
		t.Errorf("upstream down: %d %q", w.Code, w.Body.String())
	}
}

func TestPickSymbolsDistinctAndRepeatable(t *testing.T) {
	syms := marketsim.DefaultSymbols()
	a := pickSymbols(syms, 5, 42)
	if !slices.Equal(a, pickSymbols(syms, 5, 42)) {
		t.Error("same seed, different symbols")
	}
	seen := map[string]bool{}
	for _, s := range a {
		if seen[s] || !slices.Contains(syms, s) {
			t.Errorf("pickSymbols = %v: repeated or unknown %q", a, s)
		}
		seen[s] = true
	}
	if len(pickSymbols(syms, len(syms), 1)) != len(syms) {
		t.Error("picking all symbols")
	}
}
