package proxy

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/marketsim"
	"github.com/tickgate/tickgate/metrics"
)

// TestMarketsim runs the proxy against the simulated vendor and its traps.
func TestMarketsim(t *testing.T) {
	t.Parallel()
	const key, rotated = "ms-key-0123456789", "ms-key-ROTATED-42"
	sim, err := marketsim.New(marketsim.Options{Keys: []string{key}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{sec: newFakeSecrets(config.DemoKeySecret, key), logs: &syncBuffer{}, m: metrics.Discard()}
	ups := config.Demo(base).Upstreams
	demo := ups["demo"]
	demo.CacheTTL = 0 // every request below must reach the vendor
	ups["demo"] = demo
	p, err := New(Config{
		Upstreams: ups,
		Secrets:   h.sec,
		Logger:    slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:   h.m,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.p, h.handler = p, p
	h.front = httptest.NewServer(p)
	tr := &http.Transport{}
	h.client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		h.front.Close()
		p.Close()
	})
	var all bytes.Buffer
	get := func(path string) response {
		t.Helper()
		b := h.raw(t, "GET "+path+" HTTP/1.1")
		all.Write(b)
		return parseRaw(t, b)
	}

	if r := get("/api/demo/v1/quote/AAPL"); r.status != 200 || !strings.Contains(r.body, `"symbol":"AAPL"`) {
		t.Fatalf("quote: %d %q", r.status, r.body)
	}
	r := get("/api/demo/v1/symbols")
	var page struct {
		NextURL string `json:"next_url"`
	}
	if err := json.Unmarshal([]byte(r.body), &page); err != nil || !strings.HasPrefix(page.NextURL, "/api/demo/v1/symbols?") {
		t.Fatalf("symbols: %d next_url %q (%v)", r.status, page.NextURL, err)
	}
	t.Logf("next_url %s", page.NextURL)
	if r := get(page.NextURL); r.status != 200 || !strings.Contains(r.body, `"results"`) {
		t.Fatalf("following next_url %q: %d %q", page.NextURL, r.status, r.body)
	}
	if r := get("/api/demo/v1/last/MSFT"); r.status != http.StatusFound || r.header.Get("Location") != "/api/demo/v1/quote/MSFT" {
		t.Errorf("last: %d Location %q", r.status, r.header.Get("Location"))
	}
	if r := get("/api/demo/v1/quote/NOPE"); r.status != http.StatusNotFound {
		t.Errorf("unknown symbol: %d %q", r.status, r.body)
	}
	// The key rotates at the vendor and in the secrets store: no failed request.
	if err := sim.SetKeys(rotated); err != nil {
		t.Fatal(err)
	}
	h.sec.rotateTo(config.DemoKeySecret, rotated)
	if r := get("/api/demo/v1/quote/TSLA"); r.status != 200 {
		t.Errorf("after rotation: %d %q", r.status, r.body)
	}
	// A key the vendor refuses for good: a clean 502, no echo.
	if err := sim.SetKeys("someone-else"); err != nil {
		t.Fatal(err)
	}
	wantError(t, get("/api/demo/v1/quote/TSLA"), http.StatusBadGateway, "upstream_auth")
	if err := sim.SetKeys(rotated); err != nil {
		t.Fatal(err)
	}
	// Over the per-key budget: 429 with Retry-After.
	if err := sim.SetRESTLimit(1, 1); err != nil {
		t.Fatal(err)
	}
	var limited response
	for range 5 {
		if limited = get("/api/demo/v1/quote/SPY"); limited.status == http.StatusTooManyRequests {
			break
		}
	}
	wantError(t, limited, http.StatusTooManyRequests, "upstream_rate_limited")
	if limited.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	assertNoKey(t, "client bytes", all.String(), key, rotated)
	assertNoKey(t, "logs", h.logs.String(), key, rotated)
}
