package proxy

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/config"
)

func TestForwardQuote(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	r := h.do(t, "GET", "/api/demo/v1/quote/AAPL?fields=bid,ask", nil, map[string]string{"Accept": "application/json"})
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var q struct{ Symbol string }
	if err := json.Unmarshal([]byte(r.body), &q); err != nil || q.Symbol != "AAPL" {
		t.Fatalf("body %q: %v", r.body, err)
	}
	got := h.v.last(t)
	if got.Path != "/v1/quote/AAPL" {
		t.Errorf("vendor path = %q", got.Path)
	}
	if want := "fields=bid,ask&apikey=" + url.QueryEscape(vendorKey); got.RawQuery != want {
		t.Errorf("vendor query = %q, want %q", got.RawQuery, want)
	}
	if got.Header.Get("Accept") != "application/json" {
		t.Errorf("Accept not forwarded: %v", got.Header)
	}
	if host, _, _ := strings.Cut(strings.TrimPrefix(h.v.srv.URL, "http://"), "/"); got.Host != host {
		t.Errorf("vendor Host = %q, want %q", got.Host, host)
	}
	for _, k := range []string{"Set-Cookie", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
		"Strict-Transport-Security", "Content-Security-Policy", "X-Debug-Key", "X-Name-" + vendorKey} {
		if v := r.header.Values(k); len(v) > 0 {
			t.Errorf("response header %s = %q passed through", k, v)
		}
	}
	if r.header.Get("X-Vendor") != "ok" {
		t.Errorf("X-Vendor not passed: %v", r.header)
	}
	if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) {
		t.Errorf("Content-Length = %q, body %d bytes", cl, len(r.body))
	}
	if v := counterValue(t, h.m, "demo", "200"); v != 1 {
		t.Errorf("upstream_requests{demo,200} = %v", v)
	}
}

func TestRequestHeadersStripped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	b := h.raw(t, "GET /api/demo/v1/echo?apikey=evil&APIKEY=evil2&ApiKey%5B%5D=evil3&api%6Bey=evil4&symbols=A,B HTTP/1.1",
		"Cookie: tickgate=session-id-123",
		"Authorization: Basic dXNlcjpwYXNz",
		"Proxy-Authorization: Basic eA==",
		"Referer: https://app.example/page?secret=1",
		"Origin: https://app.example",
		"Forwarded: for=1.2.3.4",
		"X-Forwarded-For: 1.2.3.4",
		"X-Forwarded-Host: evil",
		"X-Forwarded-Proto: http",
		"X-Forwarded-Port: 1",
		"X-Real-IP: 1.2.3.4",
		"True-Client-IP: 1.2.3.4",
		"apikey: evil-header",
		"X-Csrf: 1",
		"Sec-Fetch-Site: same-origin",
		"Range: bytes=0-3",
		"Accept-Encoding: br",
		"Connection: close, X-Hop, x-hop2",
		"Connection: X-Hop3",
		"X-Hop: 1",
		"X-Hop2: 1",
		"X-Hop3: 1",
		"Keep-Alive: timeout=5",
		"X-Keep: yes",
	)
	r := parseRaw(t, b)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := h.v.last(t)
	for _, k := range []string{"Cookie", "Authorization", "Proxy-Authorization", "Referer", "Origin", "Forwarded",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Real-Ip", "True-Client-Ip",
		"Apikey", "X-Csrf", "Sec-Fetch-Site", "Range", "X-Hop", "X-Hop2", "X-Hop3", "Keep-Alive"} {
		if v, ok := got.Header[k]; ok {
			t.Errorf("vendor received %s: %q", k, v)
		}
	}
	if got.Header.Get("X-Keep") != "yes" {
		t.Errorf("X-Keep not forwarded")
	}
	if ae := got.Header.Get("Accept-Encoding"); ae != "gzip" {
		t.Errorf("vendor Accept-Encoding = %q, want Go's own gzip", ae)
	}
	if want := "symbols=A,B&apikey=" + url.QueryEscape(vendorKey); got.RawQuery != want {
		t.Errorf("vendor query = %q, want %q", got.RawQuery, want)
	}
	if q, _ := url.ParseQuery(got.RawQuery); len(q["apikey"]) != 1 {
		t.Errorf("apikey sent %d times", len(q["apikey"]))
	}
	assertNoKey(t, "response", string(b), vendorKey)
}

func TestKeyPlacements(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		placement, header, want string
		attack                  []string // the client tries to supply or hide the key slot
		query                   string
	}{
		{"header:X-Api-Key", "X-Api-Key", vendorKey,
			[]string{"X-Api-Key: evil", "X_Api_Key: evil2", "x-api-key: evil3", "Connection: X-Api-Key"}, "x-api-key=evil&X-API-KEY=evil"},
		{"header:x-api-key", "X-Api-Key", vendorKey,
			[]string{"X-API-KEY: evil", "Connection: x-api-key, X-Api-Key"}, "X-Api-Key=evil"},
		{"bearer", "Authorization", "Bearer " + vendorKey,
			[]string{"Authorization: Bearer evil", "Connection: Authorization", "Connection: authorization"}, "authorization=evil"},
	} {
		t.Run(tc.placement, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, "", withPlacement(tc.placement))
			b := h.raw(t, "GET /api/demo/v1/echo?"+tc.query+"&keep=1 HTTP/1.1", tc.attack...)
			r := parseRaw(t, b)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			got := h.v.last(t)
			if v := got.Header.Values(tc.header); len(v) != 1 || v[0] != tc.want {
				t.Errorf("vendor %s = %q, want [%q]", tc.header, v, tc.want)
			}
			for k, v := range got.Header {
				if strings.Contains(strings.Join(v, ","), "evil") {
					t.Errorf("vendor received the client's value in %s", k)
				}
			}
			if got.RawQuery != "keep=1" {
				t.Errorf("vendor query = %q, want keep=1", got.RawQuery)
			}
			assertNoKey(t, "response", string(b), vendorKey)
		})
	}
}

func TestConfigHeadersSet(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", withHeaders(map[string]string{"X-Plan": "pro", "user-agent": "tickgate-test"}))
	r := h.do(t, "GET", "/api/demo/v1/echo", nil, map[string]string{"X-Plan": "free", "User-Agent": "browser"})
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	got := h.v.last(t)
	if v := got.Header.Values("X-Plan"); len(v) != 1 || v[0] != "pro" {
		t.Errorf("X-Plan = %q", v)
	}
	if v := got.Header.Get("User-Agent"); v != "tickgate-test" {
		t.Errorf("User-Agent = %q", v)
	}
}

func TestQueryRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	for _, q := range []string{"a=%0d%0aX:1", "a=%00", "a%7f=1", "a=1;apikey=x", "a=%zz", "a=%"} {
		r := parseRaw(t, h.raw(t, "GET /api/demo/v1/echo?"+q+" HTTP/1.1"))
		wantError(t, r, http.StatusBadRequest, "bad_request")
	}
	if n := len(h.v.requests()); n != 0 {
		t.Errorf("vendor received %d requests", n)
	}
	// Characters that are not valid in a query are re-encoded, not passed raw.
	r := parseRaw(t, h.raw(t, "GET /api/demo/v1/echo?q=a\"b<c>|d HTTP/1.1"))
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if got := h.v.last(t).RawQuery; !strings.HasPrefix(got, "q=a%22b%3Cc%3E%7Cd&apikey=") {
		t.Errorf("vendor query = %q", got)
	}
}

func TestPathRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	tests := []struct {
		line   string
		status int
		code   string
	}{
		{"GET /api/demo/v1/quote/..%2f..%2fadmin HTTP/1.1", 404, "not_found"},
		{"GET /api/demo/v1/quote/%2e%2e/admin HTTP/1.1", 404, "not_found"},
		{"GET /api/demo/v1/quote/../../admin HTTP/1.1", 404, "not_found"},
		{"GET /api/demo/v1/reference/../../admin HTTP/1.1", 404, "not_found"},
		{"GET /api/demo/v1/reference/./x HTTP/1.1", 404, "not_found"},
		{"GET /api/demo/v1/reference/a//b HTTP/1.1", 404, "not_found"},
		{"GET /api/demo/v1/quote/A%5cB HTTP/1.1", 404, "not_found"},
		{"GET /api/demo/v1/quote/A\\B HTTP/1.1", 404, "not_found"},
		{"GET /api/demo/v1/quote/%252e%252e HTTP/1.1", 404, "not_found"},
		{"GET /api/demo/v1/quote/A%00 HTTP/1.1", 404, "not_found"},
		{"GET /api/demo/v1/quote/A%0d%0aX:1 HTTP/1.1", 404, "not_found"},
		{"GET /api/demo/v1/quote/..;/admin HTTP/1.1", 404, "not_found"},
		{"GET /api/demo/v1/quote/" + strings.Repeat("A", 2100) + " HTTP/1.1", 404, "not_found"},
		{"GET /api/demo/v1/admin HTTP/1.1", 404, "not_found"},
		{"GET /api/demo/v1/quote HTTP/1.1", 404, "not_found"},
		{"GET /api/demo HTTP/1.1", 404, "not_found"},
		{"GET /api/demo/ HTTP/1.1", 404, "not_found"},
		{"GET /api/nope/v1/quote/A HTTP/1.1", 404, "not_found"},
		{"GET /api//v1/quote/A HTTP/1.1", 404, "not_found"},
		{"GET /api/DEMO/v1/quote/A HTTP/1.1", 404, "not_found"},
		{"GET /api/%64emo/v1/quote/A HTTP/1.1", 404, "not_found"},
		{"GET /other HTTP/1.1", 404, "not_found"},
		{"DELETE /api/demo/v1/quote/A HTTP/1.1", 405, "method_not_allowed"},
		{"POST /api/demo/v1/quotes HTTP/1.1", 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		r := parseRaw(t, h.raw(t, tt.line))
		wantError(t, r, tt.status, tt.code)
		if tt.status == 405 && r.header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: Allow = %q", tt.line, r.header.Get("Allow"))
		}
	}
	if reqs := h.v.requests(); len(reqs) != 0 {
		t.Errorf("vendor received %d requests, first %q", len(reqs), reqs[0].EscapedPath)
	}
	// An encoded but harmless character is decoded and forwarded canonically.
	r := parseRaw(t, h.raw(t, "GET /api/demo/v1/quote/%41APL HTTP/1.1"))
	if r.status != 200 || h.v.last(t).EscapedPath != "/v1/quote/AAPL" {
		t.Errorf("status %d, vendor path %q", r.status, h.v.last(t).EscapedPath)
	}
	// Upgrades are refused.
	r = parseRaw(t, h.raw(t, "GET /api/demo/v1/quote/A HTTP/1.1", "Connection: Upgrade", "Upgrade: websocket"))
	wantError(t, r, http.StatusBadRequest, "bad_request")
}

func TestBasePathJoined(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "/vendor/v9")
	r := h.get(t, "/api/demo/v1/quote/MSFT")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if got := h.v.last(t).Path; got != "/vendor/v9/v1/quote/MSFT" {
		t.Errorf("vendor path = %q", got)
	}
	r = h.get(t, "/api/demo/v1/last/IBM")
	if r.status != http.StatusFound || r.header.Get("Location") != "/api/demo/v1/quote/IBM" {
		t.Errorf("redirect %d to %q", r.status, r.header.Get("Location"))
	}
	r = h.get(t, "/api/demo/v1/symbols")
	if !strings.Contains(r.body, `"next_url":"/api/demo/v1/symbols?cursor=abc"`) {
		t.Errorf("body %q", r.body)
	}
}

func TestBadSecret(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"key-with\r\nX-Injected: 1", "key\x00", "key\n"} {
		h := newHarness(t, "")
		h.sec.set(secretName, v)
		wantError(t, h.get(t, "/api/demo/v1/quote/AAPL"), http.StatusBadGateway, "upstream_config")
		logs := h.logs.String()
		if !strings.Contains(logs, "secret="+secretName) || strings.Contains(logs, "key-with") {
			t.Errorf("logs:\n%s", logs)
		}
		if len(h.v.requests()) != 0 {
			t.Errorf("vendor got a request with a bad key")
		}
	}
	h := newHarness(t, "")
	h.sec.mu.Lock()
	delete(h.sec.vals, secretName)
	h.sec.mu.Unlock()
	wantError(t, h.get(t, "/api/demo/v1/quote/AAPL"), http.StatusBadGateway, "upstream_config")
}

func TestNoKeyAnywhere(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	var all bytes.Buffer
	paths := []string{"/v1/quote/AAPL", "/v1/echo", "/v1/symbols", "/v1/last/AAPL", "/v1/relative", "/v1/away",
		"/v1/keypath", "/v1/limited", "/v1/limited-date", "/v1/boom", "/v1/missing", "/v1/stream", "/v1/gzip",
		"/v1/early", "/v1/trailer", "/v1/link", "/v1/quote/..%2fx", "/v1/nope"}
	raw := func(line string, headers ...string) {
		all.Write(h.raw(t, line, headers...))
		h.clock.advance(time.Hour) // past any cool-down a vendor 429 started
	}
	for _, p := range paths {
		raw("GET /api/demo"+p+" HTTP/1.1", "Accept-Encoding: gzip", "Cookie: a=b")
		raw("GET /api/demo"+p+"?apikey=client HTTP/1.1", "Range: bytes=0-3")
	}
	raw("POST /api/demo/v1/echo HTTP/1.1", "Content-Length: 5", "Content-Type: text/plain\r\n\r\nhello")
	// The same with a key that has characters escaped differently in
	// URLs and JSON, and a failing key that makes the vendor echo it.
	special := `k+y/1=2&<3>"4\5`
	h.sec.set(secretName, special)
	h.v.setKeys(special)
	for _, p := range paths {
		raw("GET /api/demo" + p + " HTTP/1.1")
	}
	h.v.setKeys("nobody")
	for _, p := range paths[:4] {
		raw("GET /api/demo" + p + " HTTP/1.1")
	}
	if all.Len() < 300<<10 {
		t.Fatalf("only %d bytes captured", all.Len())
	}
	assertNoKey(t, "client bytes", all.String(), vendorKey, special)
	assertNoKey(t, "client bytes (any case)", strings.ToLower(all.String()), strings.ToLower(vendorKey))
	logs := h.logs.String()
	assertNoKey(t, "logs", logs, vendorKey, special)
	if strings.Contains(logs, "://") || strings.Contains(logs, "apikey=") {
		t.Errorf("a URL or query reached the log:\n%s", logs)
	}
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	good := func() config.Upstream {
		return config.Upstream{
			BaseURL: "https://api.vendor.example/v2",
			Key:     config.KeyRef{Secret: "K", Placement: "query:apikey"},
			Routes:  []config.Route{{Paths: []string{"/v1/quote/*"}}},
		}
	}
	sec := newFakeSecrets("K", "v")
	if _, err := New(Config{Upstreams: map[string]config.Upstream{"ok": good()}, Secrets: sec}); err != nil {
		t.Fatalf("good config: %v", err)
	}
	if _, err := New(Config{Upstreams: map[string]config.Upstream{"ok": good()}}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("no secrets: %v", err)
	}
	tests := []struct {
		name   string
		upName string
		mod    func(*config.Upstream)
	}{
		{"bad name", "Bad/Name", func(*config.Upstream) {}},
		{"http remote", "x", func(u *config.Upstream) { u.BaseURL = "http://api.vendor.example" }},
		{"ftp", "x", func(u *config.Upstream) { u.BaseURL = "ftp://127.0.0.1" }},
		{"query in base", "x", func(u *config.Upstream) { u.BaseURL = "https://api.vendor.example/?a=1" }},
		{"userinfo", "x", func(u *config.Upstream) { u.BaseURL = "https://u:p@api.vendor.example" }},
		{"no host", "x", func(u *config.Upstream) { u.BaseURL = "https:///x" }},
		{"no secret", "x", func(u *config.Upstream) { u.Key.Secret = "" }},
		{"bad placement", "x", func(u *config.Upstream) { u.Key.Placement = "cookie:x" }},
		{"empty query name", "x", func(u *config.Upstream) { u.Key.Placement = "query:" }},
		{"bad header name", "x", func(u *config.Upstream) { u.Key.Placement = "header:X Key" }},
		{"hop header", "x", func(u *config.Upstream) { u.Key.Placement = "header:Connection" }},
		{"no routes", "x", func(u *config.Upstream) { u.Routes = nil }},
		{"no paths", "x", func(u *config.Upstream) { u.Routes = []config.Route{{}} }},
		{"bad pattern", "x", func(u *config.Upstream) { u.Routes[0].Paths = []string{"/a/**/b"} }},
		{"lower method", "x", func(u *config.Upstream) { u.Routes[0].Methods = []string{"get"} }},
		{"header CRLF", "x", func(u *config.Upstream) { u.Headers = map[string]string{"X-A": "a\r\nB: c"} }},
		{"header NUL", "x", func(u *config.Upstream) { u.Headers = map[string]string{"X-A": "a\x00"} }},
		{"header name", "x", func(u *config.Upstream) { u.Headers = map[string]string{"X A": "a"} }},
		{"header host", "x", func(u *config.Upstream) { u.Headers = map[string]string{"Host": "a"} }},
		{"header key slot", "x", func(u *config.Upstream) {
			u.Key.Placement = "bearer"
			u.Headers = map[string]string{"authorization": "a"}
		}},
		{"negative timeout", "x", func(u *config.Upstream) { u.Timeout = -1 }},
		{"negative max", "x", func(u *config.Upstream) { u.MaxResponseBytes = -1 }},
	}
	for _, tt := range tests {
		u := good()
		tt.mod(&u)
		_, err := New(Config{Upstreams: map[string]config.Upstream{tt.upName: u}, Secrets: sec})
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}

func TestResponseWriterDirect(t *testing.T) {
	t.Parallel()
	// ServeHTTP works against a plain recorder too (no http.Server), and a
	// cut stream then simply ends early.
	h := newHarness(t, "", withMax(64<<10))
	req := httptest.NewRequest("GET", "/api/demo/v1/big?n=200000", nil)
	rec := httptest.NewRecorder()
	h.p.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.Len() > 64<<10 {
		t.Errorf("status %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

func TestDefaultTransport(t *testing.T) {
	t.Parallel()
	tr := newTransport(30*time.Second, nil)
	defer tr.CloseIdleConnections()
	if tr.Proxy != nil {
		t.Error("proxy from the environment is used")
	}
	if tr.MaxIdleConnsPerHost < 256 || tr.TLSHandshakeTimeout == 0 || tr.ResponseHeaderTimeout != 30*time.Second ||
		tr.DialContext == nil || tr.IdleConnTimeout == 0 || tr.MaxResponseHeaderBytes == 0 {
		t.Errorf("transport not tuned: %+v", tr)
	}
	if tr.TLSClientConfig == nil || tr.TLSClientConfig.MinVersion < tls.VersionTLS12 || tr.TLSClientConfig.InsecureSkipVerify {
		t.Errorf("TLS config %+v", tr.TLSClientConfig)
	}
}
