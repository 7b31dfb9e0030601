package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/metrics"
	"github.com/tickgate/tickgate/secrets"
)

const (
	secretName = "VENDOR_KEY"
	vendorKey  = "vk_9f8e7d6c5b4a-SECRET"
)

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fakeSecrets is an in-memory Secrets. Invalidate moves a secret to its
// next value, as a re-read after a rotation would.
type fakeSecrets struct {
	mu            sync.Mutex
	vals          map[string]string
	next          map[string]string
	invalidations int
	invErr        error
}

func newFakeSecrets(name, value string) *fakeSecrets {
	return &fakeSecrets{vals: map[string]string{name: value}, next: map[string]string{}}
}

func (f *fakeSecrets) Get(_ context.Context, name string) (secrets.Value, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vals[name]
	if !ok {
		return secrets.Value{}, fmt.Errorf("secret %s: %w", name, secrets.ErrNotFound)
	}
	return secrets.NewValue(v), nil
}

func (f *fakeSecrets) Invalidate(_ context.Context, name string, stale secrets.Value) (secrets.Value, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.invalidations++
	if f.invErr != nil {
		return stale, f.invErr
	}
	if n, ok := f.next[name]; ok {
		f.vals[name] = n
		delete(f.next, name)
	}
	return secrets.NewValue(f.vals[name]), nil
}

func (f *fakeSecrets) set(name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vals[name] = value
}

func (f *fakeSecrets) rotateTo(name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next[name] = value
}

func (f *fakeSecrets) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.invalidations
}

// recorded is what the fake vendor received.
type recorded struct {
	Method, Path, EscapedPath, RawQuery, Host string
	Header                                    http.Header
	Body                                      []byte
}

// vendor is an httptest vendor reproducing marketsim's traps: the key in
// a query parameter (or a header), 401 bodies and headers echoing the
// request URL with the key, absolute next_url with the key, redirects
// carrying the key, 429 with Retry-After, plus cookies, CORS headers,
// gzip, 1xx, trailers and large or slow bodies.
type vendor struct {
	srv  *httptest.Server
	base string // what the vendor thinks its absolute base is

	mu    sync.Mutex
	keys  map[string]bool
	reqs  []recorded
	slowC chan struct{}    // closed when a /v1/slow request arrived
	now   func() time.Time // the harness clock, for dates the vendor sends
}

func newVendor(t *testing.T, basePath string) *vendor {
	t.Helper()
	v := &vendor{keys: map[string]bool{vendorKey: true}, slowC: make(chan struct{}, 16), now: time.Now}
	mux := http.NewServeMux()
	v.routes(mux, basePath)
	v.srv = httptest.NewServer(mux)
	v.base = v.srv.URL + basePath
	t.Cleanup(v.srv.Close)
	return v
}

func (v *vendor) setKeys(keys ...string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.keys = map[string]bool{}
	for _, k := range keys {
		v.keys[k] = true
	}
}

func (v *vendor) requests() []recorded {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]recorded(nil), v.reqs...)
}

func (v *vendor) last(t *testing.T) recorded {
	t.Helper()
	r := v.requests()
	if len(r) == 0 {
		t.Fatal("vendor received nothing")
	}
	return r[len(r)-1]
}

func (v *vendor) keyOf(r *http.Request) string {
	if k := r.URL.Query().Get("apikey"); k != "" {
		return k
	}
	if k := r.Header.Get("X-Api-Key"); k != "" {
		return k
	}
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

func (v *vendor) routes(mux *http.ServeMux, bp string) {
	fullURL := func(r *http.Request) string { return v.srv.URL + r.URL.RequestURI() }
	writeJSON := func(w http.ResponseWriter, code int, body any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body) // HTML-escapes & as \u0026, as marketsim does
	}
	mux.HandleFunc(bp+"/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		v.mu.Lock()
		v.reqs = append(v.reqs, recorded{
			Method: r.Method, Path: r.URL.Path, EscapedPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
			Host: r.Host, Header: r.Header.Clone(), Body: body,
		})
		ok := v.keys[v.keyOf(r)]
		v.mu.Unlock()
		key := v.keyOf(r)
		if !ok {
			w.Header().Set("X-Request-Url", fullURL(r))
			writeJSON(w, http.StatusUnauthorized, map[string]any{
				"status": "error", "code": 401, "message": "invalid api key", "request": fullURL(r),
			})
			return
		}
		p := strings.TrimPrefix(r.URL.Path, bp)
		h := w.Header()
		switch {
		case strings.HasPrefix(p, "/v1/quote/"):
			h.Set("Set-Cookie", "vendor_session=abc; Path=/")
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Strict-Transport-Security", "max-age=1")
			h.Set("Content-Security-Policy", "default-src *")
			h.Set("X-Request-Id", "vendor-request-id")
			h.Set("X-Vendor", "ok")
			h.Set("X-Debug-Key", "used="+key)
			if validToken(key) {
				h.Set("X-Name-"+key, "1")
			}
			writeJSON(w, http.StatusOK, map[string]any{"symbol": strings.TrimPrefix(p, "/v1/quote/"), "bid": 1.5, "ask": 1.6})
		case p == "/v1/echo":
			writeJSON(w, http.StatusOK, map[string]any{"url": fullURL(r), "headers": r.Header, "body": string(body)})
		case p == "/v1/symbols":
			if r.URL.Query().Get("cursor") == "abc" {
				writeJSON(w, http.StatusOK, map[string]any{"results": []string{"MSFT"}})
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{
				"results":  []string{"AAPL"},
				"next_url": v.base + "/v1/symbols?cursor=abc&apikey=" + key,
			})
		case strings.HasPrefix(p, "/v1/last/"):
			h.Set("Location", v.base+"/v1/quote/"+strings.TrimPrefix(p, "/v1/last/")+"?apikey="+key)
			w.WriteHeader(http.StatusFound)
		case p == "/v1/relative":
			h.Set("Location", "quote/IBM?apikey="+key)
			w.WriteHeader(http.StatusFound)
		case p == "/v1/away":
			h.Set("Location", "https://evil.example/steal?apikey="+key)
			w.WriteHeader(http.StatusFound)
		case p == "/v1/keypath":
			h.Set("Location", v.base+"/v1/"+key+"/x")
			w.WriteHeader(http.StatusFound)
		case p == "/v1/limited":
			h.Set("Retry-After", "7")
			h.Set("X-RateLimit-Remaining", "0")
			writeJSON(w, http.StatusTooManyRequests, map[string]any{"message": "key " + key + " over budget"})
		case p == "/v1/limited-date":
			h.Set("Retry-After", v.now().Add(90*time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusTooManyRequests)
		case p == "/v1/boom":
			h.Set("X-Internal", "db-7.internal")
			http.Error(w, "panic: db.go:42 key="+key, http.StatusInternalServerError)
		case p == "/v1/missing":
			writeJSON(w, http.StatusNotFound, map[string]any{"status": "error", "code": 404, "message": "unknown symbol", "request": fullURL(r)})
		case p == "/v1/big":
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			if r.URL.Query().Get("cl") == "1" {
				h.Set("Content-Length", strconv.Itoa(n))
			}
			_, _ = w.Write(bytes.Repeat([]byte("x"), n))
		case p == "/v1/stream":
			// 256 KiB with the key and vendor URLs every 1000 bytes, flushed
			// in odd-sized pieces.
			var b bytes.Buffer
			for b.Len() < 256<<10 {
				fmt.Fprintf(&b, "%0990d|%s|%s/v1/quote/A?apikey=%s\n", b.Len(), key, v.base, key)
			}
			data := b.Bytes()
			for len(data) > 0 {
				n := min(len(data), 4093)
				_, _ = w.Write(data[:n])
				http.NewResponseController(w).Flush()
				data = data[n:]
			}
		case p == "/v1/slow":
			select {
			case v.slowC <- struct{}{}:
			default:
			}
			<-r.Context().Done()
		case p == "/v1/slowbody":
			h.Set("Content-Type", "text/plain")
			_, _ = w.Write(bytes.Repeat([]byte("y"), 40<<10))
			http.NewResponseController(w).Flush()
			select {
			case v.slowC <- struct{}{}:
			default:
			}
			<-r.Context().Done()
		case p == "/v1/gzip":
			if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				http.Error(w, "wants gzip", http.StatusBadRequest)
				return
			}
			h.Set("Content-Encoding", "gzip")
			h.Set("Content-Type", "application/json")
			zw := gzip.NewWriter(w)
			_ = json.NewEncoder(zw).Encode(map[string]any{"next_url": v.base + "/v1/symbols?cursor=abc&apikey=" + key, "echo": key})
			_ = zw.Close()
		case p == "/v1/brotli":
			h.Set("Content-Encoding", "br")
			_, _ = w.Write([]byte("\x0b\x02\x80" + key))
		case p == "/v1/early":
			h.Set("Link", "<"+v.base+"/x?apikey="+key+">; rel=preload")
			h.Set("X-Early-Key", key)
			w.WriteHeader(http.StatusEarlyHints)
			h.Del("Link")
			h.Del("X-Early-Key")
			_, _ = w.Write([]byte("ok"))
		case p == "/v1/trailer":
			h.Set("Trailer", "X-Secret")
			_, _ = w.Write([]byte("body"))
			h.Set("X-Secret", key)
		case p == "/v1/link":
			h.Add("Link", "<"+v.base+"/v1/symbols?cursor=2&apikey="+key+">; rel=\"next\"")
			h.Set("Content-Location", v.base+"/v1/link")
			_, _ = w.Write([]byte("ok"))
		case p == "/v1/created":
			h.Set("Location", "https://elsewhere.example/orders/1?apikey="+key)
			writeJSON(w, http.StatusCreated, map[string]any{"id": 1})
		case p == "/v1/forbidden":
			writeJSON(w, http.StatusForbidden, map[string]any{"message": "plan does not include this", "request": fullURL(r)})
		case p == "/v1/orders":
			writeJSON(w, http.StatusCreated, map[string]any{"received": len(body)})
		case p == "/v1/nocontenttype":
			h["Content-Type"] = nil
			_, _ = w.Write([]byte("<html><script>alert(1)</script>"))
		case p == "/v1/crlf":
			_, _ = w.Write([]byte("fine"))
		default:
			writeJSON(w, http.StatusOK, map[string]any{"path": p})
		}
	})
}

// testRoutesConfig opens every trap path of the fake vendor.
func testRoutesConfig() []config.Route {
	return []config.Route{
		{Paths: []string{"/v1/quote/*", "/v1/quotes", "/v1/symbols", "/v1/last/*", "/v1/echo", "/v1/away",
			"/v1/keypath", "/v1/relative", "/v1/limited", "/v1/limited-date", "/v1/boom", "/v1/missing", "/v1/big",
			"/v1/stream", "/v1/slow", "/v1/slowbody", "/v1/gzip", "/v1/brotli", "/v1/early", "/v1/trailer",
			"/v1/link", "/v1/nocontenttype", "/v1/forbidden", "/v1/reference/**"}},
		{Methods: []string{"POST"}, Paths: []string{"/v1/created"}},
		{Methods: []string{"POST", "PUT"}, Paths: []string{"/v1/orders", "/v1/echo"}},
	}
}

// testClock is real time plus an offset that tests advance, e.g. past a
// vendor's Retry-After.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

type harness struct {
	clock   *testClock
	v       *vendor
	sec     *fakeSecrets
	p       *Proxy
	front   *httptest.Server
	client  *http.Client
	logs    *syncBuffer
	m       *metrics.Metrics
	handler http.Handler
}

type opt func(*config.Upstream, *harness)

func withPlacement(p string) opt {
	return func(u *config.Upstream, _ *harness) { u.Key.Placement = p }
}

func withTimeout(d time.Duration) opt {
	return func(u *config.Upstream, _ *harness) { u.Timeout = config.Duration(d) }
}

func withMax(n int64) opt {
	return func(u *config.Upstream, _ *harness) { u.MaxResponseBytes = n }
}

func withHeaders(h map[string]string) opt {
	return func(u *config.Upstream, _ *harness) { u.Headers = h }
}

func withBaseURL(s string) opt {
	return func(u *config.Upstream, _ *harness) { u.BaseURL = s }
}

// newHarness starts the fake vendor, a Proxy for upstream "demo" and a
// front server in front of it. basePath is the vendor's base path.
func newHarness(t *testing.T, basePath string, opts ...opt) *harness {
	t.Helper()
	h := &harness{v: newVendor(t, basePath), sec: newFakeSecrets(secretName, vendorKey), logs: &syncBuffer{}, m: metrics.Discard(), clock: &testClock{}}
	h.v.now = h.clock.now
	up := config.Upstream{
		BaseURL: h.v.base,
		Key:     config.KeyRef{Secret: secretName, Placement: "query:apikey"},
		Routes:  testRoutesConfig(),
	}
	for _, o := range opts {
		o(&up, h)
	}
	p, err := New(Config{
		Upstreams: map[string]config.Upstream{"demo": up},
		Secrets:   h.sec,
		Logger:    slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:   h.m,
		Now:       h.clock.now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.p = p
	h.handler = p
	h.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.handler.ServeHTTP(w, r) }))
	tr := &http.Transport{}
	h.client = &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       60 * time.Second,
	}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		h.front.Close()
		p.Close()
	})
	return h
}

type response struct {
	status int
	header http.Header
	body   string
	err    error // body read error
}

func (h *harness) do(t *testing.T, method, path string, body io.Reader, hdr map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, h.front.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, rerr := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: string(b), err: rerr}
}

func (h *harness) get(t *testing.T, path string) response {
	t.Helper()
	return h.do(t, http.MethodGet, path, nil, nil)
}

// raw sends a literal HTTP/1.1 request and returns every byte answered.
func (h *harness) raw(t *testing.T, requestLine string, headers ...string) []byte {
	t.Helper()
	conn, err := net.DialTimeout("tcp", h.front.Listener.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	req := requestLine + "\r\nHost: tickgate.test\r\nConnection: close\r\n"
	for _, hd := range headers {
		req += hd + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func parseRaw(t *testing.T, b []byte) response {
	t.Helper()
	res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
	if err != nil {
		t.Fatalf("parse %q: %v", b, err)
	}
	defer res.Body.Close()
	body, rerr := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: string(body), err: rerr}
}

// wantError checks a contract error body.
func wantError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d, want %d (body %q)", r.status, status, r.body)
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Errorf("body = %q, want error code %q", r.body, code)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
}

// keyForms are the spellings of a key that must never reach a client.
func assertNoKey(t *testing.T, where string, data string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		for _, f := range keyForms(k) {
			if strings.Contains(data, f) {
				t.Errorf("%s contains the key (form %q)", where, f)
			}
		}
	}
}

func counterValue(t *testing.T, m *metrics.Metrics, upstream, code string) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.UpstreamRequests.WithLabelValues(upstream, code).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}
