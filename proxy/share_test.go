package proxy

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/marketsim"
	"github.com/tickgate/tickgate/metrics"
)

const simKey = "ms-share-key-0123456789"

// simEnv is a Proxy for upstream "demo" in front of an in-process
// marketsim, optionally behind a gate that holds vendor requests.
type simEnv struct {
	sim    *marketsim.Server
	p      *Proxy
	front  *httptest.Server
	client *http.Client
	logs   *syncBuffer
	clock  *testClock
	m      *metrics.Metrics
	sec    *fakeSecrets
}

func newSimEnv(t *testing.T, opts marketsim.Options, gate func(http.Handler) http.Handler, mod func(*config.Upstream)) *simEnv {
	t.Helper()
	opts.Keys = []string{simKey}
	clock := &testClock{}
	opts.Now = clock.now // one clock for tickgate and the vendor
	sim, err := marketsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	var hd http.Handler = sim.Handler()
	if gate != nil {
		hd = gate(hd)
	}
	vsrv := httptest.NewServer(hd)
	t.Cleanup(vsrv.Close)
	e := &simEnv{sim: sim, logs: &syncBuffer{}, clock: clock, m: metrics.Discard(), sec: newFakeSecrets(config.DemoKeySecret, simKey)}
	up := config.Upstream{
		Preset:  "marketsim",
		BaseURL: vsrv.URL,
		Key:     config.KeyRef{Secret: config.DemoKeySecret},
	}
	if mod != nil {
		mod(&up)
	}
	p, err := New(Config{
		Upstreams: map[string]config.Upstream{"demo": up},
		Secrets:   e.sec,
		Logger:    slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:   e.m,
		Now:       e.clock.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	e.front = httptest.NewServer(p)
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	e.client = &http.Client{Transport: tr, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		e.front.Close()
		p.Close()
	})
	return e
}

// get sends a browser-like request; hdr adds or replaces headers.
func (e *simEnv) do(t *testing.T, method, path string, hdr map[string]string) response {
	req, err := http.NewRequest(method, e.front.URL+path, nil)
	if err != nil {
		t.Error(err)
		return response{}
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := e.client.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return response{}
	}
	defer res.Body.Close()
	b, rerr := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: string(b), err: rerr}
}

// waitFor polls cond; the deadline only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// followers is how many requests wait on the flight of the only request
// in flight (-1: none in flight).
func (p *Proxy) followersNow() int {
	p.flights.mu.Lock()
	defer p.flights.mu.Unlock()
	for _, fl := range p.flights.m {
		return fl.followers
	}
	return -1
}

// holdQuotes returns a gate that holds every quote request until release
// is closed, counting the requests that arrived.
func holdQuotes(arrived *atomic.Int64, release <-chan struct{}) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/v1/quote/") {
				arrived.Add(1)
				<-release
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TestCoalesce200Browsers: 200 browsers ask for the same quote at once;
// marketsim sees one call and every browser gets the same answer, without
// the key, another browser's cookie or a vendor Set-Cookie.
func TestCoalesce200Browsers(t *testing.T) {
	t.Parallel()
	const browsers = 200
	var arrived atomic.Int64
	release := make(chan struct{})
	e := newSimEnv(t, marketsim.Options{}, holdQuotes(&arrived, release), nil)
	var wg sync.WaitGroup
	answers := make([]response, browsers)
	for i := range browsers {
		wg.Go(func() {
			answers[i] = e.do(t, http.MethodGet, "/api/demo/v1/quote/AAPL", map[string]string{
				"Cookie":          fmt.Sprintf("tickgate=session-of-browser-%03d", i),
				"User-Agent":      fmt.Sprintf("browser/%d", i),
				"Accept-Encoding": []string{"gzip", "br", "identity"}[i%3],
			})
		})
	}
	// Hold the vendor call until every other browser waits on it.
	waitFor(t, "199 followers", func() bool { return e.p.followersNow() == browsers-1 })
	close(release)
	wg.Wait()

	if n := e.sim.Stats().RESTByRoute[marketsim.RouteQuote]; n != 1 || arrived.Load() != 1 {
		t.Errorf("marketsim saw %d quote calls (gate %d), want 1", n, arrived.Load())
	}
	first := answers[0]
	if first.status != http.StatusOK || !strings.Contains(first.body, `"symbol":"AAPL"`) {
		t.Fatalf("answer: %d %q", first.status, first.body)
	}
	var all strings.Builder
	for i, a := range answers {
		if a.status != first.status || a.body != first.body {
			t.Errorf("browser %d got %d %q, browser 0 %q", i, a.status, a.body, first.body)
		}
		if a.header.Get("Content-Encoding") != "" || a.header.Get("Set-Cookie") != "" {
			t.Errorf("browser %d: headers %v", i, a.header)
		}
		fmt.Fprintf(&all, "%v %s\n", a.header, a.body)
	}
	if strings.Contains(all.String(), "session-of-browser") {
		t.Error("a browser cookie reached an answer")
	}
	if c := strings.Count(e.logs.String(), "served=coalesced"); c != browsers-1 {
		t.Errorf("%d requests logged as coalesced, want %d", c, browsers-1)
	}
	assertNoKey(t, "client bytes", all.String(), simKey)
	assertNoKey(t, "logs", e.logs.String(), simKey)
	if n := e.p.followersNow(); n != -1 {
		t.Errorf("flight still registered after the answer (%d followers)", n)
	}
}

// TestCoalesceKeepsVariantsApart: requests that differ in what the vendor
// sees (method, path, query, Accept) never share an answer; those that
// differ only in what the vendor never sees (cookies, Accept-Encoding,
// User-Agent) do.
func TestCoalesceKeepsVariantsApart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	p, st := h.p, &state{u: h.p.ups["demo"], path: "/v1/quote/A", query: "a=1&b=2", cacheTTL: 0}
	key := func(method, query string, hdr map[string]string) string {
		r := httptest.NewRequest(method, "/api/demo/v1/quote/A?"+query, nil)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		s := *st
		s.query = query
		k, ok := p.shareKey(r, &s)
		if !ok {
			t.Fatalf("%s %s: not shareable", method, query)
		}
		return k
	}
	base := key("GET", "a=1&b=2", map[string]string{"Accept": "application/json"})
	same := []map[string]string{
		{"Accept": "application/json", "Cookie": "tickgate=other-user"},
		{"Accept": "application/json", "Accept-Encoding": "gzip"},
		{"Accept": "application/json", "User-Agent": "x", "Cache-Control": "no-cache", "Authorization": "Bearer user"},
		{"Accept": "application/json", "Apikey": "client-supplied", "Referer": "https://app/x"},
	}
	for _, hdr := range same {
		if k := key("GET", "a=1&b=2", hdr); k != base {
			t.Errorf("%v: key differs, want shared", hdr)
		}
	}
	if key("HEAD", "a=1&b=2", map[string]string{"Accept": "application/json"}) == base {
		t.Error("HEAD shares GET's key")
	}
	if key("GET", "b=2&a=1", map[string]string{"Accept": "application/json"}) == base {
		t.Error("another query order shares the key (the vendor may care)")
	}
	if key("GET", "a=1&b=3", map[string]string{"Accept": "application/json"}) == base {
		t.Error("another query shares the key")
	}
	if key("GET", "a=1&b=2", map[string]string{"Accept": "text/csv"}) == base {
		t.Error("another Accept shares the key")
	}
	// Not shareable at all: other methods, bodies.
	r := httptest.NewRequest("POST", "/api/demo/v1/orders", strings.NewReader("x"))
	if _, ok := p.shareKey(r, st); ok {
		t.Error("POST is shareable")
	}
	r = httptest.NewRequest("GET", "/api/demo/v1/quote/A", strings.NewReader("x"))
	if _, ok := p.shareKey(r, st); ok {
		t.Error("GET with a body is shareable")
	}
	off := false
	h2 := newHarness(t, "", func(u *config.Upstream, _ *harness) { u.Coalesce = &off })
	r = httptest.NewRequest("GET", "/api/demo/v1/quote/A", nil)
	if _, ok := h2.p.shareKey(r, &state{u: h2.p.ups["demo"], path: "/v1/quote/A"}); ok {
		t.Error("shareable with coalesce: false and no cache")
	}
}

// ccVendor answers GET /v1/cc/{name} with the Cache-Control of the query
// parameter cc, counting calls per path.
type ccVendor struct {
	mu    sync.Mutex
	calls map[string]int
	srv   *httptest.Server
}

func newCCVendor(t *testing.T) *ccVendor {
	v := &ccVendor{calls: map[string]int{}}
	v.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		v.calls[r.URL.Path]++
		n := v.calls[r.URL.Path]
		v.mu.Unlock()
		if r.Header.Get("Cookie") != "" {
			http.Error(w, "cookie forwarded", http.StatusBadRequest)
			return
		}
		q := r.URL.Query()
		if cc := q.Get("cc"); cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		if a := q.Get("age"); a != "" {
			w.Header().Set("Age", a)
		}
		if vy := q.Get("vary"); vy != "" {
			w.Header().Set("Vary", vy)
		}
		if ex := q.Get("expires"); ex != "" {
			w.Header().Set("Expires", ex)
		}
		w.Header().Set("Set-Cookie", "vendor=1")
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodHead {
			return
		}
		fmt.Fprintf(w, `{"path":%q,"call":%d,"apikey_seen":%t}`, r.URL.Path, n, q.Get("apikey") == vendorKey)
	}))
	t.Cleanup(v.srv.Close)
	return v
}

func (v *ccVendor) count(path string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.calls[path]
}

// TestCacheHonoursCacheControl: the TTL cache keeps 200 GET answers for
// cache_ttl, less for max-age / s-maxage / Expires / Age, never for
// no-store, private, no-cache or Vary on a header sharing ignores, and
// never serves a HEAD from it.
func TestCacheHonoursCacheControl(t *testing.T) {
	t.Parallel()
	v := newCCVendor(t)
	zero := config.Duration(0)
	h := newHarness(t, "", withBaseURL(v.srv.URL), func(u *config.Upstream, _ *harness) {
		u.CacheTTL = config.Duration(10 * time.Second)
		u.Routes = []config.Route{
			{Paths: []string{"/v1/cc/*"}},
			{Paths: []string{"/v1/nocache/*"}, CacheTTL: &zero},
		}
	})
	get := func(path string, hdr map[string]string) response {
		t.Helper()
		r := h.do(t, http.MethodGet, path, nil, hdr)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %q", path, r.status, r.body)
		}
		if r.header.Get("Set-Cookie") != "" {
			t.Errorf("%s: vendor Set-Cookie passed on", path)
		}
		return r
	}
	twice := func(path string) int {
		t.Helper()
		get(path, map[string]string{"Cookie": "tickgate=user-a"})
		get(path, map[string]string{"Cookie": "tickgate=user-b"})
		return v.count(strings.TrimPrefix(strings.SplitN(path, "?", 2)[0], "/api/demo"))
	}

	// Plain 200: cached for cache_ttl, with Age; gone after it.
	first := get("/api/demo/v1/cc/plain", nil)
	second := get("/api/demo/v1/cc/plain", map[string]string{"Cookie": "tickgate=other"})
	if v.count("/v1/cc/plain") != 1 || second.body != first.body || second.header.Get("Age") == "" {
		t.Errorf("plain: %d calls, bodies %q %q, Age %q", v.count("/v1/cc/plain"), first.body, second.body, second.header.Get("Age"))
	}
	if first.header.Get("Age") != "" {
		t.Errorf("fresh answer has Age %q", first.header.Get("Age"))
	}
	h.clock.advance(11 * time.Second)
	get("/api/demo/v1/cc/plain", nil)
	if n := v.count("/v1/cc/plain"); n != 2 {
		t.Errorf("plain after the TTL: %d calls, want 2", n)
	}
	// HEAD is never answered from the cache.
	if r := h.do(t, http.MethodHead, "/api/demo/v1/cc/plain", nil, nil); r.status != 200 || v.count("/v1/cc/plain") != 3 {
		t.Errorf("HEAD: %d, %d calls, want 3", r.status, v.count("/v1/cc/plain"))
	}

	for _, cc := range []string{"no-store", "private", "no-cache", "max-age=0", "s-maxage=0, max-age=60", "public, max-age=oops"} {
		path := "/api/demo/v1/cc/" + strings.NewReplacer(" ", "", ",", "_", "=", "-").Replace(cc) + "?cc=" + strings.ReplaceAll(cc, " ", "%20")
		if n := twice(path); n != 2 {
			t.Errorf("Cache-Control %q: %d calls for 2 requests, want 2", cc, n)
		}
	}
	for _, vary := range []string{"*", "User-Agent", "accept, cache-control"} {
		if n := twice("/api/demo/v1/cc/vary" + strconv.Itoa(len(vary)) + "?vary=" + strings.ReplaceAll(vary, " ", "%20")); n != 2 {
			t.Errorf("Vary %q: %d calls, want 2", vary, n)
		}
	}
	if n := twice("/api/demo/v1/cc/badexpires?expires=yesterday"); n != 2 {
		t.Errorf("invalid Expires: %d calls, want 2", n)
	}
	if n := twice("/api/demo/v1/nocache/x"); n != 2 {
		t.Errorf("route cache_ttl 0s: %d calls, want 2", n)
	}

	// max-age shorter than cache_ttl wins; the vendor's Age counts.
	if n := twice("/api/demo/v1/cc/short?cc=max-age=3"); n != 1 {
		t.Errorf("max-age=3: %d calls, want 1", n)
	}
	h.clock.advance(4 * time.Second)
	if n := twice("/api/demo/v1/cc/short?cc=max-age=3"); n != 2 {
		t.Errorf("max-age=3 after 4s: %d calls, want 2", n)
	}
	r := get("/api/demo/v1/cc/aged?cc=max-age=5&age=3", nil)
	h.clock.advance(1 * time.Second)
	r2 := get("/api/demo/v1/cc/aged?cc=max-age=5&age=3", nil)
	if n := v.count("/v1/cc/aged"); n != 1 || r2.header.Get("Age") != "4" || r.body != r2.body {
		t.Errorf("aged: %d calls, Age %q", n, r2.header.Get("Age"))
	}
	h.clock.advance(2 * time.Second) // 3 + 3 > 5: stale
	get("/api/demo/v1/cc/aged?cc=max-age=5&age=3", nil)
	if n := v.count("/v1/cc/aged"); n != 2 {
		t.Errorf("aged after max-age - Age: %d calls, want 2", n)
	}

	// Distinct queries are distinct answers.
	a := get("/api/demo/v1/cc/q?x=1", nil)
	b := get("/api/demo/v1/cc/q?x=2", nil)
	if a.body == b.body {
		t.Errorf("x=1 and x=2 share %q", a.body)
	}
	all := h.logs.String()
	assertNoKey(t, "logs", all, vendorKey)
}

func TestCacheLifetime(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ttl := 30 * time.Second
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{}, ttl},
		{http.Header{"Cache-Control": {"max-age=10"}}, 10 * time.Second},
		{http.Header{"Cache-Control": {"max-age=100"}}, ttl},
		{http.Header{"Cache-Control": {`max-age="7"`}}, 7 * time.Second},
		{http.Header{"Cache-Control": {"public", "MAX-AGE=9"}}, 9 * time.Second},
		{http.Header{"Cache-Control": {"max-age=10, s-maxage=4"}}, 4 * time.Second},
		{http.Header{"Cache-Control": {"max-age=10"}, "Age": {"4"}}, 6 * time.Second},
		{http.Header{"Cache-Control": {"max-age=10"}, "Age": {"40"}}, 0},
		{http.Header{"Cache-Control": {"max-age=-1"}}, 0},
		{http.Header{"Cache-Control": {"no-store"}}, 0},
		{http.Header{"Cache-Control": {"max-age=60, Private"}}, 0},
		{http.Header{"Cache-Control": {"no-cache"}}, 0},
		{http.Header{"Expires": {now.Add(5 * time.Second).Format(http.TimeFormat)}}, 5 * time.Second},
		{http.Header{"Expires": {now.Add(-5 * time.Second).Format(http.TimeFormat)}}, 0},
		{http.Header{"Expires": {"0"}}, 0},
		{http.Header{"Expires": {"0"}, "Cache-Control": {"max-age=5"}}, 5 * time.Second},
	} {
		if got := cacheLifetime(tc.h, ttl, now); got != tc.want {
			t.Errorf("cacheLifetime(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

// TestCacheBounds fills the cache past its entry and byte bounds.
func TestCacheBounds(t *testing.T) {
	var c cache
	clock := &testClock{}
	c.init(clock.now)
	small := &answer{status: 200, header: http.Header{"Content-Type": {"application/json"}}, body: []byte("{}")}
	for i := range 3 * maxCacheEntries {
		c.put("k"+strconv.Itoa(i), small, time.Minute, 0)
	}
	if len(c.m) > maxCacheEntries || len(c.queue)-c.head > 2*len(c.m)+64 {
		t.Errorf("entries: %d (max %d), queue %d", len(c.m), maxCacheEntries, len(c.queue)-c.head)
	}
	if _, _, ok := c.get("k0"); ok {
		t.Error("the oldest entry survived")
	}
	if _, _, ok := c.get("k" + strconv.Itoa(3*maxCacheEntries-1)); !ok {
		t.Error("the newest entry is missing")
	}
	big := &answer{status: 200, header: http.Header{}, body: make([]byte, maxSharedBytes)}
	for i := range 2 * maxCacheBytes / maxSharedBytes {
		c.put("big"+strconv.Itoa(i), big, time.Minute, 0)
	}
	if c.bytes > maxCacheBytes {
		t.Errorf("bytes %d > %d", c.bytes, maxCacheBytes)
	}
	c.put("huge", &answer{status: 200, body: make([]byte, 4*maxSharedBytes)}, time.Minute, 0)
	if _, _, ok := c.get("huge"); ok {
		t.Error("an answer larger than a shared answer was cached")
	}
	// Replacing one key over and over keeps the queue small.
	for range 10 * maxCacheEntries {
		c.put("same", small, time.Minute, 0)
	}
	if q := len(c.queue) - c.head; q > 2*len(c.m)+64 {
		t.Errorf("queue %d for %d entries", q, len(c.m))
	}
	// Expired entries go.
	clock.advance(2 * time.Minute)
	c.put("fresh", small, time.Minute, 0)
	if len(c.m) != 1 {
		t.Errorf("%d entries after everything expired, want 1", len(c.m))
	}
}
