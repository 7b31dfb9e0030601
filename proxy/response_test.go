package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNextURLRewrittenAndUsable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	r := h.get(t, "/api/demo/v1/symbols")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var page struct {
		Results []string
		NextURL string `json:"next_url"`
	}
	if err := json.Unmarshal([]byte(r.body), &page); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	if page.NextURL != "/api/demo/v1/symbols?cursor=abc" {
		t.Fatalf("next_url = %q", page.NextURL)
	}
	assertNoKey(t, "body", r.body, vendorKey)
	r = h.get(t, page.NextURL)
	if r.status != 200 || !strings.Contains(r.body, "MSFT") {
		t.Fatalf("following next_url: %d %q", r.status, r.body)
	}
	if got := h.v.last(t).RawQuery; got != "cursor=abc&apikey="+url.QueryEscape(vendorKey) {
		t.Errorf("vendor query = %q", got)
	}
}

func TestRedirects(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	r := h.get(t, "/api/demo/v1/last/AAPL")
	if r.status != http.StatusFound || r.header.Get("Location") != "/api/demo/v1/quote/AAPL" {
		t.Fatalf("got %d Location %q", r.status, r.header.Get("Location"))
	}
	r = h.get(t, "/api/demo/v1/relative")
	if r.status != http.StatusFound || r.header.Get("Location") != "/api/demo/v1/quote/IBM" {
		t.Fatalf("relative: got %d Location %q", r.status, r.header.Get("Location"))
	}
	// A browser following it comes back through the proxy.
	follow := &http.Client{Transport: h.client.Transport}
	res, err := follow.Get(h.front.URL + "/api/demo/v1/last/TSLA")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "TSLA") {
		t.Errorf("followed: %d %q", res.StatusCode, body)
	}
	// Not a redirect: the answer stands, the unmappable Location goes.
	r = h.do(t, "POST", "/api/demo/v1/created", nil, nil)
	if r.status != http.StatusCreated || r.header.Get("Location") != "" {
		t.Errorf("201: %d Location %q", r.status, r.header.Get("Location"))
	}
	n := len(h.v.requests())
	for _, p := range []string{"/api/demo/v1/away", "/api/demo/v1/keypath"} {
		r := h.get(t, p)
		wantError(t, r, http.StatusBadGateway, "upstream_redirect")
		if r.header.Get("Location") != "" {
			t.Errorf("%s: Location %q sent", p, r.header.Get("Location"))
		}
	}
	if got := len(h.v.requests()); got != n+2 {
		t.Errorf("vendor got %d requests, want %d: a redirect was followed", got, n+2)
	}
}

func TestKeyRotationRetry(t *testing.T) {
	t.Parallel()
	const newKey = "vk_rotated-0000-NEW"
	h := newHarness(t, "")
	h.v.setKeys(newKey)
	h.sec.rotateTo(secretName, newKey)
	r := h.get(t, "/api/demo/v1/quote/AAPL")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	reqs := h.v.requests()
	if len(reqs) != 2 {
		t.Fatalf("vendor got %d requests, want 2", len(reqs))
	}
	if !strings.Contains(reqs[0].RawQuery, url.QueryEscape(vendorKey)) || !strings.Contains(reqs[1].RawQuery, url.QueryEscape(newKey)) {
		t.Errorf("queries %q then %q", reqs[0].RawQuery, reqs[1].RawQuery)
	}
	if h.sec.count() != 1 {
		t.Errorf("invalidations = %d", h.sec.count())
	}
	if counterValue(t, h.m, "demo", "401") != 1 || counterValue(t, h.m, "demo", "200") != 1 {
		t.Errorf("metrics: 401=%v 200=%v", counterValue(t, h.m, "demo", "401"), counterValue(t, h.m, "demo", "200"))
	}
	// The next request uses the new key at once.
	if r := h.get(t, "/api/demo/v1/quote/AAPL"); r.status != 200 || len(h.v.requests()) != 3 {
		t.Errorf("after rotation: %d, %d vendor requests", r.status, len(h.v.requests()))
	}
	// A small POST body is sent again intact.
	const rotated2 = "vk_rotated-0000-NEWER"
	h.v.setKeys(rotated2)
	h.sec.rotateTo(secretName, rotated2)
	r = h.do(t, "POST", "/api/demo/v1/echo", strings.NewReader(`{"qty":5}`), map[string]string{"Content-Type": "application/json"})
	if r.status != 200 || !strings.Contains(r.body, `{\"qty\":5}`) {
		t.Errorf("POST retry: %d %q", r.status, r.body)
	}
	assertNoKey(t, "body", r.body, vendorKey, newKey, rotated2)
	reqs = h.v.requests()
	if last := reqs[len(reqs)-1]; string(last.Body) != `{"qty":5}` || string(reqs[len(reqs)-2].Body) != `{"qty":5}` {
		t.Errorf("bodies %q, %q", reqs[len(reqs)-2].Body, last.Body)
	}
	assertNoKey(t, "logs", h.logs.String(), vendorKey, newKey, rotated2)
}

func TestKeyRefusedForGood(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	h.v.setKeys("some-other-key")
	r := h.get(t, "/api/demo/v1/quote/AAPL")
	wantError(t, r, http.StatusBadGateway, "upstream_auth")
	if strings.Contains(r.body, "invalid api key") || r.header.Get("X-Request-Url") != "" {
		t.Errorf("vendor error leaked: %q %v", r.body, r.header)
	}
	if h.sec.count() != 1 || len(h.v.requests()) != 1 {
		t.Errorf("invalidations %d, vendor requests %d", h.sec.count(), len(h.v.requests()))
	}
	// 403 is treated like 401.
	h.v.setKeys(vendorKey)
	r = h.get(t, "/api/demo/v1/forbidden")
	wantError(t, r, http.StatusBadGateway, "upstream_auth")
	if strings.Contains(r.body, "plan") || h.sec.count() != 2 {
		t.Errorf("403: body %q, invalidations %d", r.body, h.sec.count())
	}
	// The re-read fails: still a clean 502.
	h.v.setKeys("some-other-key")
	h.sec.mu.Lock()
	h.sec.invErr = errors.New("provider down")
	h.sec.mu.Unlock()
	wantError(t, h.get(t, "/api/demo/v1/quote/AAPL"), http.StatusBadGateway, "upstream_auth")
	if !strings.Contains(h.logs.String(), "secret="+secretName) {
		t.Errorf("logs do not name the secret:\n%s", h.logs.String())
	}
}

func TestLargeBodyNotRetried(t *testing.T) {
	t.Parallel()
	const newKey = "vk_rotated-LARGE"
	h := newHarness(t, "")
	h.v.setKeys(newKey)
	h.sec.rotateTo(secretName, newKey)
	big := bytes.Repeat([]byte("z"), maxRetryBody+1)
	r := h.do(t, "POST", "/api/demo/v1/orders", bytes.NewReader(big), nil)
	wantError(t, r, http.StatusBadGateway, "upstream_auth")
	if n := len(h.v.requests()); n != 1 {
		t.Errorf("vendor got %d requests, want 1", n)
	}
	if got := h.v.last(t).Body; len(got) != len(big) {
		t.Errorf("vendor got %d body bytes, want %d", len(got), len(big))
	}
	if h.sec.count() != 1 {
		t.Errorf("invalidations = %d", h.sec.count())
	}
	// Chunked bodies (no Content-Length) over the limit are streamed too.
	h.v.setKeys(newKey)
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(big)
		_ = pw.Close()
	}()
	r = h.do(t, "POST", "/api/demo/v1/orders", pr, nil)
	if r.status != http.StatusCreated || !strings.Contains(r.body, strconv.Itoa(len(big))) {
		t.Errorf("chunked POST: %d %q", r.status, r.body)
	}
}

func TestVendorErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	r := h.get(t, "/api/demo/v1/limited")
	wantError(t, r, http.StatusTooManyRequests, "upstream_rate_limited")
	if r.header.Get("Retry-After") != "7" {
		t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	if r.header.Get("X-Ratelimit-Remaining") != "" {
		t.Errorf("vendor rate-limit headers passed")
	}
	h.clock.advance(time.Minute) // past the cool-down the 429 started
	r = h.get(t, "/api/demo/v1/limited-date")
	wantError(t, r, http.StatusTooManyRequests, "upstream_rate_limited")
	if s, _ := strconv.Atoi(r.header.Get("Retry-After")); s < 60 || s > 120 {
		t.Errorf("Retry-After from a date = %q", r.header.Get("Retry-After"))
	}
	h.clock.advance(time.Hour)
	r = h.get(t, "/api/demo/v1/boom")
	wantError(t, r, http.StatusBadGateway, "upstream_error")
	if strings.Contains(r.body, "db.go") || r.header.Get("X-Internal") != "" {
		t.Errorf("vendor internals leaked: %q %v", r.body, r.header)
	}
	r = h.get(t, "/api/demo/v1/missing")
	if r.status != http.StatusNotFound || !strings.Contains(r.body, "unknown symbol") {
		t.Errorf("404 passthrough: %d %q", r.status, r.body)
	}
	if !strings.Contains(r.body, `"request":"/api/demo/v1/missing"`) {
		t.Errorf("echoed URL not rewritten: %q", r.body)
	}
	assertNoKey(t, "404 body", r.body, vendorKey)
}

func TestResponseHeaders(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	// tickgate's middleware sets headers before the proxy: they win.
	h.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "ours")
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		h.p.ServeHTTP(w, r)
	})
	r := h.get(t, "/api/demo/v1/quote/AAPL")
	if v := r.header.Values("X-Request-Id"); len(v) != 1 || v[0] != "ours" {
		t.Errorf("X-Request-Id = %q", v)
	}
	if v := r.header.Values("Content-Security-Policy"); len(v) != 1 || v[0] != "default-src 'self'" {
		t.Errorf("CSP = %q", v)
	}
	r = h.get(t, "/api/demo/v1/link")
	if want := `</api/demo/v1/symbols?cursor=2>; rel="next"`; r.header.Get("Link") != want {
		t.Errorf("Link = %q, want %q", r.header.Get("Link"), want)
	}
	if r.header.Get("Content-Location") != "/api/demo/v1/link" {
		t.Errorf("Content-Location = %q", r.header.Get("Content-Location"))
	}
	r = h.get(t, "/api/demo/v1/nocontenttype")
	if ct := r.header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type = %q: a browser could sniff HTML", ct)
	}
	// 1xx from the vendor and trailers never reach the browser.
	for _, p := range []string{"/api/demo/v1/early", "/api/demo/v1/trailer"} {
		b := h.raw(t, "GET "+p+" HTTP/1.1")
		if bytes.Contains(b, []byte(" 103 ")) || bytes.Contains(b, []byte("X-Secret")) || bytes.Contains(b, []byte("X-Early-Key")) {
			t.Errorf("%s: interim answer or trailer passed: %q", p, b)
		}
		assertNoKey(t, p, string(b), vendorKey)
	}
}

func TestHead(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	r := h.do(t, "HEAD", "/api/demo/v1/quote/AAPL", nil, nil)
	if r.status != 200 || r.body != "" {
		t.Errorf("HEAD: %d %q", r.status, r.body)
	}
	if got := h.v.last(t).Method; got != "HEAD" {
		t.Errorf("vendor method %q", got)
	}
}

func TestResponseSizeLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", withMax(1000))
	wantError(t, h.get(t, "/api/demo/v1/big?n=1001&cl=1"), http.StatusBadGateway, "upstream_too_large")
	wantError(t, h.get(t, "/api/demo/v1/big?n=5000"), http.StatusBadGateway, "upstream_too_large")
	if r := h.get(t, "/api/demo/v1/big?n=1000"); r.status != 200 || len(r.body) != 1000 {
		t.Errorf("exactly the limit: %d, %d bytes", r.status, len(r.body))
	}
	// Past the limit after the headers went out: the stream is cut.
	h2 := newHarness(t, "", withMax(100<<10))
	r := h2.get(t, "/api/demo/v1/big?n=300000")
	if r.status != 200 || r.err == nil || len(r.body) > 100<<10 {
		t.Errorf("cut stream: status %d, %d bytes, err %v", r.status, len(r.body), r.err)
	}
	if !strings.Contains(h2.logs.String(), "upstream response cut") {
		t.Errorf("cut not logged:\n%s", h2.logs.String())
	}
}

func TestStreamingScrub(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	r := h.get(t, "/api/demo/v1/stream")
	if r.status != 200 || r.err != nil {
		t.Fatalf("status %d, err %v", r.status, r.err)
	}
	if r.header.Get("Content-Length") != "" {
		t.Errorf("a large body got Content-Length %q: was it buffered?", r.header.Get("Content-Length"))
	}
	if len(r.body) < 200<<10 {
		t.Errorf("body %d bytes", len(r.body))
	}
	assertNoKey(t, "stream", r.body, vendorKey)
	lines := strings.Split(strings.TrimSpace(r.body), "\n")
	for _, l := range lines {
		if !strings.HasSuffix(l, "|[redacted]|/api/demo/v1/quote/A") {
			t.Fatalf("line %q", l)
		}
	}
}

func TestGzip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts []opt
	}{
		{"transport decodes", nil},
		{"forced Accept-Encoding", []opt{withHeaders(map[string]string{"Accept-Encoding": "gzip"})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, "", tc.opts...)
			r := h.do(t, "GET", "/api/demo/v1/gzip", nil, map[string]string{"Accept-Encoding": "gzip"})
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if !strings.Contains(r.body, `"next_url":"/api/demo/v1/symbols?cursor=abc"`) || !strings.Contains(r.body, `"echo":"[redacted]"`) {
				t.Errorf("body %q", r.body)
			}
			assertNoKey(t, "body", r.body, vendorKey)
		})
	}
	h := newHarness(t, "", withHeaders(map[string]string{"Accept-Encoding": "gzip"}))
	wantError(t, h.get(t, "/api/demo/v1/brotli"), http.StatusBadGateway, "upstream_error")
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", withTimeout(300*time.Millisecond))
	r := h.get(t, "/api/demo/v1/slow")
	wantError(t, r, http.StatusGatewayTimeout, "upstream_timeout")
	if counterValue(t, h.m, "demo", "timeout") != 1 {
		t.Errorf("timeout not counted")
	}
	// Timeout once the body started: the stream is cut. (A longer timeout,
	// so that a loaded machine still sends the headers first.)
	h = newHarness(t, "", withTimeout(2*time.Second))
	r = h.get(t, "/api/demo/v1/slowbody")
	if r.status != 200 || r.err == nil {
		t.Errorf("slow body: status %d, err %v", r.status, r.err)
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := newHarness(t, "", withBaseURL("http://"+addr))
	r := h.get(t, "/api/demo/v1/quote/AAPL")
	wantError(t, r, http.StatusBadGateway, "upstream_unavailable")
	logs := h.logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "upstream=demo") || !strings.Contains(logs, "path=/v1/quote/AAPL") {
		t.Errorf("logs:\n%s", logs)
	}
	if strings.Contains(logs, "://") || strings.Contains(logs, "apikey") {
		t.Errorf("a URL reached the log:\n%s", logs)
	}
	assertNoKey(t, "logs", logs, vendorKey)
}

func TestClientGone(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", h.front.URL+"/api/demo/v1/slow", nil)
		res, err := h.client.Do(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	select {
	case <-h.v.slowC:
	case <-time.After(30 * time.Second):
		t.Fatal("vendor never got the request")
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("request succeeded")
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(h.logs.String(), "client went away") {
		if time.Now().After(deadline) {
			t.Fatalf("no client-gone log:\n%s", h.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	logs := h.logs.String()
	if strings.Contains(logs, "level=ERROR") || strings.Contains(logs, "level=WARN") || strings.Contains(logs, "status=50") {
		t.Errorf("client gone logged as a failure:\n%s", logs)
	}
}
