package proxy

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tickgate/tickgate/apierr"
)

// maxSharedBytes bounds a body shared among identical requests or kept
// in the cache (after scrubbing). A larger answer is streamed to the
// request that asked first; the others send their own requests.
const maxSharedBytes = 128 << 10

// Cache bounds, for the whole Proxy.
const (
	maxCacheBytes   = 32 << 20
	maxCacheEntries = 4096
)

// answer is a complete, scrubbed answer that several clients may receive:
// the vendor's cleaned headers and body, or one of the proxy's errors.
type answer struct {
	status int
	header http.Header // as the ReverseProxy would copy them
	force  http.Header // replace the middleware's (budget X-RateLimit-*)
	body   []byte
	code   string // error code, for the log
}

// flights coalesces identical concurrent requests into one vendor call.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

// flight is one vendor call that identical requests wait for.
type flight struct {
	key       string
	shared    bool          // registered in flights.m
	done      chan struct{} // closed once ans is final
	ans       *answer       // nil: the waiters send their own requests
	waiters   int           // clients still waiting, the leader included
	followers int           // clients that ever joined
	closed    bool
	cancel    context.CancelCauseFunc
}

// join returns the flight in progress for key (leader false), or a new
// one the caller leads. Without coalescing every request leads its own.
func (g *flights) join(key string, coalesce bool) (fl *flight, leader bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if coalesce {
		if fl := g.m[key]; fl != nil {
			fl.waiters++
			fl.followers++
			return fl, false
		}
	}
	fl = &flight{key: key, done: make(chan struct{}), waiters: 1, shared: coalesce}
	if coalesce {
		g.m[key] = fl
	}
	return fl, true
}

// started gives the flight the cancel function of its vendor call.
func (g *flights) started(fl *flight, cancel context.CancelCauseFunc) {
	g.mu.Lock()
	fl.cancel = cancel
	g.mu.Unlock()
}

// leave is called when a waiting client goes away. The last one leaving
// cancels the vendor call: nobody would receive its answer.
func (g *flights) leave(fl *flight) {
	g.mu.Lock()
	fl.waiters--
	last := fl.waiters == 0 && !fl.closed
	if last && fl.shared && g.m[fl.key] == fl {
		delete(g.m, fl.key)
	}
	cancel := fl.cancel
	g.mu.Unlock()
	if last && cancel != nil {
		cancel(errNoWaiters)
	}
}

// wanted reports whether anyone besides the leader waits for the answer.
func (g *flights) wanted(fl *flight) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return fl.followers > 0
}

// finish publishes the flight's answer (nil: the waiters forward on their
// own). Only the first call counts; later identical requests start a new
// flight.
func (g *flights) finish(fl *flight, a *answer) {
	g.mu.Lock()
	if fl.closed {
		g.mu.Unlock()
		return
	}
	fl.closed = true
	if fl.shared && g.m[fl.key] == fl {
		delete(g.m, fl.key)
	}
	g.mu.Unlock()
	fl.ans = a
	close(fl.done)
}

// shareKey returns the key under which a request may share its vendor
// call and cached answer with identical ones: GET or HEAD without a body,
// on an upstream that coalesces or caches. Every vendor call uses the
// server's key, so answers are not per user. The key holds the method,
// upstream, checked path, forwarded query and every forwarded header
// that may change the vendor's answer (Accept, Accept-Language,
// conditional headers, ...), so that the one request sent answers all.
func (p *Proxy) shareKey(r *http.Request, st *state) (string, bool) {
	u := st.u
	if !u.coalesce && st.cacheTTL <= 0 {
		return "", false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "", false
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return "", false
	}
	var nameBuf [16]string
	names := nameBuf[:0]
	for k := range r.Header {
		if dropRequestHeader(k, u.slots...) || ignoredForSharing(k) || namedInConnection(r.Header, k) {
			continue
		}
		names = append(names, k)
	}
	slices.Sort(names)
	n := len(r.Method) + len(u.name) + len(st.path) + len(st.query) + 4
	for _, k := range names {
		n += len(k) + 2
		for _, v := range r.Header[k] {
			n += len(v) + 1
		}
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(r.Method)
	b.WriteByte(0)
	b.WriteString(u.name)
	b.WriteByte(0)
	b.WriteString(st.path)
	b.WriteByte('?')
	b.WriteString(st.query)
	for _, k := range names {
		b.WriteByte(0)
		b.WriteString(http.CanonicalHeaderKey(k))
		b.WriteByte(':')
		for i, v := range r.Header[k] {
			if i > 0 {
				b.WriteByte(1)
			}
			b.WriteString(v)
		}
	}
	return b.String(), true
}

// ignoredForSharing names request headers that are forwarded but do not
// change a market-data vendor's answer: identical requests that differ
// only in them share one call (the first request's values are sent).
// Client cache directives are ignored too: a browser cannot make tickgate
// spend the vendor budget by asking for a fresh answer.
func ignoredForSharing(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "User-Agent", "X-Request-Id", "X-Correlation-Id", "Traceparent", "Tracestate", "Priority", "Dnt",
		"Pragma", "Cache-Control", "Upgrade-Insecure-Requests", "Save-Data", "X-Requested-With":
		return true
	}
	return false
}

// namedInConnection reports whether the client named k in Connection:
// ReverseProxy removes such headers before the vendor sees them.
func namedInConnection(h http.Header, k string) bool {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(name), k) {
				return true
			}
		}
	}
	return false
}

// serveShared answers a request that may share: from the cache, from an
// identical request's vendor call, or by making the vendor call itself
// for everyone who asks the same meanwhile.
func (p *Proxy) serveShared(w http.ResponseWriter, r *http.Request, st *state, key string, start time.Time) {
	if st.cacheTTL > 0 && r.Method == http.MethodGet {
		if a, age, ok := p.cache.get(key); ok {
			st.served = "cache"
			p.replay(w, r, st, a, age, start)
			return
		}
	}
	fl, leader := p.flights.join(key, st.u.coalesce)
	if !leader {
		select {
		case <-fl.done:
		case <-r.Context().Done():
			p.flights.leave(fl)
			st.clientGone = true
			p.finish(r.Context(), st, r.Method, &responseWriter{}, start)
			return
		}
		if fl.ans != nil {
			st.served = "coalesced"
			p.replay(w, r, st, fl.ans, -1, start)
			return
		}
		// The answer was too large to share, or the call failed before
		// it had one: ask the vendor ourselves.
		p.forward(w, r, r.Context(), st, start)
		return
	}
	// The vendor call outlives this client while others wait for it.
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(r.Context()))
	defer cancel(nil)
	p.flights.started(fl, cancel)
	stop := context.AfterFunc(r.Context(), func() { p.flights.leave(fl) })
	defer stop()
	defer p.flights.finish(fl, nil) // no answer shared: the others go on their own
	st.flight, st.shareKey = fl, key
	p.forward(w, r, ctx, st, start)
}

// share publishes a complete answer of the vendor to the requests that
// wait for it, and caches it when it may be. body is the scrubbed body.
func (p *Proxy) share(st *state, res *http.Response, body []byte) {
	fl := st.flight
	if fl == nil {
		return
	}
	if varyOnIgnored(res.Header) {
		p.flights.finish(fl, nil)
		return
	}
	ttl := time.Duration(0)
	if st.cacheable(res) {
		ttl = cacheLifetime(res.Header, st.cacheTTL, p.now())
	}
	if len(res.Header["Set-Cookie"])+len(res.Header["Set-Cookie2"]) > 0 {
		// filterResponseHeaders removed them; never share one anyway.
		p.flights.finish(fl, nil)
		return
	}
	if ttl <= 0 && !p.flights.wanted(fl) {
		p.flights.finish(fl, nil)
		return
	}
	a := &answer{status: res.StatusCode, header: res.Header.Clone(), body: bytes.Clone(body)}
	p.flights.finish(fl, a)
	if ttl > 0 {
		p.cache.put(st.shareKey, a, ttl, vendorAge(res.Header))
	}
}

// cacheable reports whether res may go into the cache, before looking at
// its Cache-Control: a 200 to a GET on a route with a cache TTL.
func (st *state) cacheable(res *http.Response) bool {
	return st.flight != nil && st.cacheTTL > 0 && res.Request.Method == http.MethodGet && res.StatusCode == http.StatusOK
}

// cacheLifetime is how long an answer with header h may be kept: ttl,
// or less when the vendor says so. no-store, private and no-cache (which
// asks for revalidation) keep it out; s-maxage, then max-age (less the
// vendor's Age), then Expires shorten it.
func cacheLifetime(h http.Header, ttl time.Duration, now time.Time) time.Duration {
	maxAge, sMaxAge := -1, -1
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "private", "no-cache":
				return 0
			case "max-age":
				maxAge = parseDelta(val)
			case "s-maxage":
				sMaxAge = parseDelta(val)
			}
		}
	}
	switch {
	case sMaxAge >= 0:
		ttl = min(ttl, time.Duration(sMaxAge)*time.Second-vendorAge(h))
	case maxAge >= 0:
		ttl = min(ttl, time.Duration(maxAge)*time.Second-vendorAge(h))
	case len(h.Values("Expires")) > 0:
		t, err := http.ParseTime(h.Get("Expires"))
		if err != nil {
			return 0 // an invalid Expires means already expired (RFC 9111 5.3)
		}
		ttl = min(ttl, t.Sub(now))
	}
	return max(ttl, 0)
}

// vendorAge is the vendor's Age header: how old the answer already was
// when it arrived (0 when absent or invalid).
func vendorAge(h http.Header) time.Duration {
	v := h.Get("Age")
	if v == "" {
		return 0
	}
	n := parseDelta(v)
	return time.Duration(min(n, 86400)) * time.Second
}

// parseDelta parses delta-seconds ("60", "\"60\""); an invalid value
// counts as 0: not cached.
func parseDelta(v string) int {
	n, err := strconv.Atoi(strings.Trim(v, `"`))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// varyOnIgnored reports whether the vendor says its answer depends on a
// header that sharing ignores (or on anything: Vary: *).
func varyOnIgnored(h http.Header) bool {
	for _, v := range h.Values("Vary") {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.TrimSpace(name)
			if name == "*" || ignoredForSharing(name) {
				return true
			}
		}
	}
	return false
}

// replay writes a shared or cached answer to one client; age >= 0 marks
// a cached one (Age header).
func (p *Proxy) replay(w http.ResponseWriter, r *http.Request, st *state, a *answer, age time.Duration, start time.Time) {
	rw := &responseWriter{w: w, h: a.header.Clone(), force: a.force}
	if age >= 0 {
		rw.h.Set("Age", strconv.Itoa(int(age/time.Second)))
	}
	st.code = a.code
	defer p.finish(r.Context(), st, r.Method, rw, start)
	rw.WriteHeader(a.status)
	if r.Method != http.MethodHead && len(a.body) > 0 {
		_, _ = rw.Write(a.body)
	}
}

// writeAnswer writes a to w (the ReverseProxy's writer).
func writeAnswer(w http.ResponseWriter, a *answer, method string) {
	h := w.Header()
	for k, vv := range a.header {
		h[k] = slices.Clone(vv)
	}
	if rw, ok := w.(*responseWriter); ok {
		rw.force = a.force
	}
	w.WriteHeader(a.status)
	if method != http.MethodHead {
		_, _ = w.Write(a.body)
	}
}

// errorAnswer renders a contract error as an answer that may be shared.
func errorAnswer(e *apierr.Error, force http.Header) *answer {
	mw := &memWriter{h: make(http.Header, 4)}
	apierr.Write(mw, e)
	return &answer{status: mw.status, header: mw.h, force: force, body: mw.b.Bytes(), code: e.Code}
}

// memWriter records what apierr.Write writes.
type memWriter struct {
	h      http.Header
	status int
	b      bytes.Buffer
}

func (m *memWriter) Header() http.Header         { return m.h }
func (m *memWriter) WriteHeader(code int)        { m.status = code }
func (m *memWriter) Write(b []byte) (int, error) { return m.b.Write(b) }

// cache keeps short-lived answers to GETs, bounded in entries and bytes.
// Expired entries go when they are looked up or reach the front of the
// insertion queue; no goroutine sweeps.
type cache struct {
	now func() time.Time

	mu    sync.Mutex
	m     map[string]*cacheEntry
	queue []*cacheEntry // insertion order
	head  int
	bytes int64
}

type cacheEntry struct {
	key     string
	a       *answer
	stored  time.Time
	expires time.Time
	size    int64
	gone    bool // replaced or removed; skipped in queue
}

func (c *cache) init(now func() time.Time) {
	c.now = now
	c.m = make(map[string]*cacheEntry)
}

// get returns the fresh answer for key and its age.
func (c *cache) get(key string) (*answer, time.Duration, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[key]
	if e == nil {
		return nil, 0, false
	}
	if !now.Before(e.expires) {
		c.remove(e)
		return nil, 0, false
	}
	return e.a, max(now.Sub(e.stored), 0), true
}

// put stores a for ttl, evicting expired entries first, then the oldest,
// until the bounds hold. age is how old a already is (the vendor's Age):
// the Age header of cached answers counts from it.
func (c *cache) put(key string, a *answer, ttl, age time.Duration) {
	size := int64(len(key) + len(a.body) + 64)
	for k, vv := range a.header {
		size += int64(len(k))
		for _, v := range vv {
			size += int64(len(v) + 16)
		}
	}
	if size > maxSharedBytes*2 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[key]; old != nil {
		c.remove(old)
	}
	e := &cacheEntry{key: key, a: a, stored: now.Add(-age), expires: now.Add(ttl), size: size}
	c.m[key] = e
	c.queue = append(c.queue, e)
	c.bytes += size
	for c.head < len(c.queue) {
		front := c.queue[c.head]
		switch {
		case front.gone:
		case now.Before(front.expires) && c.bytes <= maxCacheBytes && len(c.m) <= maxCacheEntries:
			c.compact()
			return
		default:
			c.remove(front)
		}
		c.queue[c.head] = nil
		c.head++
	}
	c.compact()
}

func (c *cache) remove(e *cacheEntry) {
	if e.gone {
		return
	}
	e.gone = true
	delete(c.m, e.key)
	c.bytes -= e.size
}

// compact drops the consumed front of the queue once it is most of it,
// and entries replaced or removed behind the front once they are most of
// the queue, so that the queue stays within a small multiple of the map.
func (c *cache) compact() {
	if live := len(c.queue) - c.head; live > 2*len(c.m)+64 {
		kept := c.queue[:0]
		for _, e := range c.queue[c.head:] {
			if !e.gone {
				kept = append(kept, e)
			}
		}
		clear(c.queue[len(kept):])
		c.queue, c.head = kept, 0
		return
	}
	if c.head > 64 && c.head*2 > len(c.queue) {
		n := copy(c.queue, c.queue[c.head:])
		clear(c.queue[n:])
		c.queue = c.queue[:n]
		c.head = 0
	}
}
