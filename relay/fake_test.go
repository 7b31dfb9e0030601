package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/metrics"
	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/session"
)

const (
	testKey    = "test-key-0123456789"
	testSecret = "DEMO_KEY"
	testOrigin = "https://app.example.test"
	waitLong   = 20 * time.Second // generous: tests run on a loaded 2-core machine
)

// eventually polls cond until it holds or waitLong passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------
// fake vendor: the subset of marketsim's WebSocket protocol the relay uses

type vendorOpts struct {
	mode    string        // message (default), query, header, none
	connCap int           // authenticated connections per key; default 1, negative: no cap
	tick    time.Duration // data frame interval; default 10ms
	pad     int           // padding bytes per data message
	maxMsgs int           // client messages per second before 4008; default 10
}

type vconn struct {
	c    *websocket.Conn
	key  string
	mu   sync.Mutex
	subs map[string]bool
}

type fakeVendor struct {
	t    testing.TB
	opts vendorOpts
	srv  *httptest.Server
	URL  string // ws://host/v1/stream
	wg   sync.WaitGroup

	mu             sync.Mutex
	refuse         bool // answer upgrades with 503
	keys           map[string]bool
	conns          map[*vconn]bool // authenticated
	closed         bool
	dials          int
	attempts       int // every request, refused ones included
	authOK         int
	authBad        int
	busy           int
	rateViolations int
	received       []string // client messages after auth, in order
	seq            int
}

func newVendor(t testing.TB, o vendorOpts) *fakeVendor {
	if o.mode == "" {
		o.mode = authMessage
	}
	if o.connCap == 0 {
		o.connCap = 1
	}
	if o.tick == 0 {
		o.tick = 10 * time.Millisecond
	}
	if o.maxMsgs == 0 {
		o.maxMsgs = 10
	}
	v := &fakeVendor{t: t, opts: o, keys: map[string]bool{testKey: true}, conns: map[*vconn]bool{}}
	v.srv = httptest.NewServer(http.HandlerFunc(v.serve))
	v.URL = "ws" + strings.TrimPrefix(v.srv.URL, "http") + "/v1/stream"
	t.Cleanup(v.close)
	return v
}

func (v *fakeVendor) close() {
	v.mu.Lock()
	v.closed = true
	for c := range v.conns {
		_ = c.c.CloseNow()
	}
	v.mu.Unlock()
	v.srv.Close()
	v.wg.Wait()
}

func (v *fakeVendor) setRefuse(refuse bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.refuse = refuse
}

func (v *fakeVendor) stats() (dials, authOK, authBad, busy, rateViolations, open int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.dials, v.authOK, v.authBad, v.busy, v.rateViolations, len(v.conns)
}

// attemptCount is the number of upgrade requests, refused ones included.
func (v *fakeVendor) attemptCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.attempts
}

// perConn returns each authenticated connection's symbol count, sorted.
func (v *fakeVendor) perConn() []int {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []int
	for c := range v.conns {
		c.mu.Lock()
		out = append(out, len(c.subs))
		c.mu.Unlock()
	}
	slices.Sort(out)
	return out
}

// subscribed returns the symbols subscribed on all authenticated connections.
func (v *fakeVendor) subscribed() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for c := range v.conns {
		c.mu.Lock()
		for s := range c.subs {
			out = append(out, s)
		}
		c.mu.Unlock()
	}
	slices.Sort(out)
	return out
}

func (v *fakeVendor) receivedCopy() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.received)
}

// dropAll cuts every authenticated connection without a close handshake.
func (v *fakeVendor) dropAll() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for c := range v.conns {
		_ = c.c.CloseNow()
	}
}

// broadcast sends frame to every authenticated connection.
func (v *fakeVendor) broadcast(frame string) {
	v.mu.Lock()
	conns := make([]*vconn, 0, len(v.conns))
	for c := range v.conns {
		conns = append(conns, c)
	}
	v.mu.Unlock()
	for _, c := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.c.Write(ctx, websocket.MessageText, []byte(frame))
		cancel()
	}
}

func status(s string) string { return `[{"ev":"status","status":"` + s + `"}]` }

func (v *fakeVendor) serve(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	v.attempts++
	if v.closed || v.refuse {
		v.mu.Unlock()
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	v.dials++
	v.wg.Add(1)
	v.mu.Unlock()
	defer v.wg.Done()

	key := ""
	switch v.opts.mode {
	case authQuery:
		key = r.URL.Query().Get("apikey")
	case authHeader:
		key = r.Header.Get("X-Api-Key")
	case authNone:
		key = testKey
	}
	if v.opts.mode != authMessage && !v.validKey(key) {
		v.mu.Lock()
		v.authBad++
		v.mu.Unlock()
		http.Error(w, `{"status":"error","message":"invalid api key"}`, http.StatusUnauthorized)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	write := func(s string) error {
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		defer wcancel()
		return c.Write(wctx, websocket.MessageText, []byte(s))
	}
	if write(status("connected")) != nil {
		return
	}
	if v.opts.mode == authMessage {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		_, b, err := c.Read(actx)
		acancel()
		if err != nil {
			return
		}
		var m struct{ Action, Key string }
		if json.Unmarshal(b, &m) != nil || m.Action != "auth" || !v.validKey(m.Key) {
			v.mu.Lock()
			v.authBad++
			v.mu.Unlock()
			_ = write(status("auth_failed"))
			_ = c.Close(4001, "auth failed")
			return
		}
		key = m.Key
	}
	vc := &vconn{c: c, key: key, subs: map[string]bool{}}
	v.mu.Lock()
	n := 0
	for o := range v.conns {
		if o.key == key {
			n++
		}
	}
	if v.opts.connCap > 0 && n >= v.opts.connCap {
		v.busy++
		v.mu.Unlock()
		_ = write(status("max_connections"))
		_ = c.Close(4003, "max connections")
		return
	}
	v.conns[vc] = true
	v.authOK++
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		delete(v.conns, vc)
		v.mu.Unlock()
	}()
	if v.opts.mode == authMessage && write(status("auth_success")) != nil {
		return
	}

	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() { // emitter
		defer close(done)
		defer cancel()
		tick := time.NewTicker(v.opts.tick)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if frame := v.frame(vc); frame != "" && write(frame) != nil {
				return
			}
		}
	}()

	var window []time.Time
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		now := time.Now()
		window = append(window, now)
		for len(window) > 0 && now.Sub(window[0]) > time.Second {
			window = window[1:]
		}
		if len(window) > v.opts.maxMsgs {
			v.mu.Lock()
			v.rateViolations++
			v.mu.Unlock()
			_ = c.Close(4008, "rate")
			return
		}
		v.mu.Lock()
		v.received = append(v.received, string(b))
		v.mu.Unlock()
		var m struct {
			Action  string
			Symbols []string
		}
		if json.Unmarshal(b, &m) != nil {
			_ = write(`[{"ev":"status","status":"error","message":"bad json"}]`)
			continue
		}
		vc.mu.Lock()
		for _, s := range m.Symbols {
			switch m.Action {
			case "subscribe":
				vc.subs[s] = true
			case "unsubscribe":
				delete(vc.subs, s)
			}
		}
		vc.mu.Unlock()
		ack, _ := json.Marshal([]any{map[string]any{"ev": "status", "status": m.Action + "d", "symbols": m.Symbols}})
		_ = write(string(ack))
	}
}

func (v *fakeVendor) validKey(k string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.keys[k]
}

// frame is one data frame for vc's symbols, or "".
func (v *fakeVendor) frame(vc *vconn) string {
	vc.mu.Lock()
	syms := make([]string, 0, len(vc.subs))
	for s := range vc.subs {
		syms = append(syms, s)
	}
	vc.mu.Unlock()
	if len(syms) == 0 {
		return ""
	}
	slices.Sort(syms)
	v.mu.Lock()
	v.seq++
	seq := v.seq
	v.mu.Unlock()
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range syms {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"ev":"T","sym":%q,"p":%d.25,"s":100,"t":%d`, s, 100+seq%50, seq)
		if v.opts.pad > 0 {
			fmt.Fprintf(&b, `,"pad":"%s"`, strings.Repeat("x", v.opts.pad))
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return b.String()
}

// ---------------------------------------------------------------------
// fake sessions and secrets

type fakeSessions struct {
	mu      sync.Mutex
	watches map[string]map[chan struct{}]bool
	ended   map[string]bool
	touches map[string]int
}

func newSessions() *fakeSessions {
	return &fakeSessions{watches: map[string]map[chan struct{}]bool{}, ended: map[string]bool{}, touches: map[string]int{}}
}

func (s *fakeSessions) Watch(key string) (<-chan struct{}, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	if s.ended[key] {
		close(ch)
		return ch, func() {}
	}
	if s.watches[key] == nil {
		s.watches[key] = map[chan struct{}]bool{}
	}
	s.watches[key][ch] = true
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.watches[key], ch)
	}
}

func (s *fakeSessions) Touch(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.touches[key]++
	if s.ended[key] {
		return fmt.Errorf("touch session: %w", session.ErrNotFound)
	}
	return nil
}

// end ends a session: its watches fire.
func (s *fakeSessions) end(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended[key] = true
	for ch := range s.watches[key] {
		close(ch)
	}
	delete(s.watches, key)
}

func (s *fakeSessions) watchers(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watches[key])
}

func (s *fakeSessions) touchCount(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.touches[key]
}

type fakeSecrets struct {
	mu            sync.Mutex
	value         string
	err           error
	next          string // value Invalidate switches to, when set
	gets          int
	invalidations int
}

func (s *fakeSecrets) Get(_ context.Context, name string) (secrets.Value, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	if s.err != nil {
		return secrets.Value{}, fmt.Errorf("secret %s: %w", name, s.err)
	}
	return secrets.NewValue(s.value), nil
}

func (s *fakeSecrets) Invalidate(_ context.Context, name string, stale secrets.Value) (secrets.Value, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidations++
	if s.next != "" {
		s.value, s.next = s.next, ""
	}
	if s.err != nil {
		return stale, fmt.Errorf("secret %s: %w", name, s.err)
	}
	return secrets.NewValue(s.value), nil
}

func (s *fakeSecrets) set(value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.value, s.err = value, nil
}

func (s *fakeSecrets) invalidated() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.invalidations
}

// ---------------------------------------------------------------------
// harness: a relay in front of a fake vendor, behind an httptest server

type harness struct {
	t        testing.TB
	vendor   *fakeVendor
	relay    *Relay
	srv      *httptest.Server
	sessions *fakeSessions
	secrets  *fakeSecrets
	metrics  *metrics.Metrics
	client   *http.Client
	wsURL    string // ws://host/ws/
	log      *logBuffer
}

// withSession puts the session named by the X-Test-Session header
// ("key:user") in the request context, as the session middleware does.
func withSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get("X-Test-Session"); v != "" {
			key, user, _ := strings.Cut(v, ":")
			r = r.WithContext(session.NewContext(r.Context(), &session.Session{Key: key, User: user}))
		}
		next.ServeHTTP(w, r)
	})
}

func testFeed(url string) config.Feed {
	return config.Feed{URL: url, Key: config.KeyRef{Secret: testSecret}, Adapter: config.Adapter{Preset: "marketsim"}}
}

func newHarness(t testing.TB, vo vendorOpts, mutate func(*Config)) *harness {
	t.Helper()
	return newHarnessWith(t, vo, mutate, false)
}

// newHarnessWith, with smallBuffers, gives the relay's sockets a 4 KiB
// send buffer and the browsers' a 16 KiB receive buffer, so a browser
// that stops reading blocks the relay's writes quickly.
func newHarnessWith(t testing.TB, vo vendorOpts, mutate func(*Config), smallBuffers bool) *harness {
	t.Helper()
	h := &harness{t: t, sessions: newSessions(), secrets: &fakeSecrets{value: testKey}, metrics: metrics.Discard(), log: &logBuffer{}}
	h.vendor = newVendor(t, vo)
	cfg := Config{
		Feeds:          map[string]config.Feed{"demo": testFeed(h.vendor.URL)},
		Secrets:        h.secrets,
		Sessions:       h.sessions,
		AllowedOrigins: []string{testOrigin},
		PingInterval:   time.Minute,
		ReconnectMin:   10 * time.Millisecond,
		ReconnectMax:   200 * time.Millisecond,
		Linger:         -1,
		Logger:         h.log.logger(),
		Metrics:        h.metrics,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.relay = r
	h.srv = httptest.NewUnstartedServer(withSession(r))
	tr := &http.Transport{}
	if smallBuffers {
		h.srv.Listener = smallBufListener{h.srv.Listener}
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(16 << 10)
			}
			return c, err
		}
	}
	h.client = &http.Client{Transport: tr}
	h.srv.Start()
	h.wsURL = "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/ws/"
	t.Cleanup(func() {
		r.Close()
		h.srv.Close()
		tr.CloseIdleConnections()
		h.log.assertClean(t)
	})
	return h
}

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// gauge reads a gauge or counter.
func gauge(t testing.TB, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	t.Fatal("not a gauge or counter")
	return 0
}

// ---------------------------------------------------------------------
// browser

// sess names a test session for the X-Test-Session header: the key is
// "sk-" + user, which the log check looks for.
func sess(user string) string { return "sk-" + user + ":" + user }

type browser struct {
	t    testing.TB
	c    *websocket.Conn
	user string

	statuses   []string // every status the relay sent, in order
	statusUsed int      // statuses[:statusUsed] were consumed by awaitStatus
}

type inMsg struct {
	Type     string            `json:"type"`
	Feed     string            `json:"feed"`
	Symbols  []string          `json:"symbols"`
	Messages []json.RawMessage `json:"messages"`
	Upstream string            `json:"upstream"`
	Code     string            `json:"code"`
	Message  string            `json:"message"`
	Limits   *struct {
		MaxSymbols int `json:"max_symbols"`
	} `json:"limits"`
	raw []byte
}

// dial opens a browser socket for session "key:user" with origin.
func (h *harness) dial(feed, sess, origin string) (*websocket.Conn, *http.Response, error) {
	hdr := http.Header{}
	if sess != "" {
		hdr.Set("X-Test-Session", sess)
	}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, h.wsURL+feed, &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: h.client})
	if c != nil {
		c.SetReadLimit(-1)
	}
	return c, resp, err
}

// browser opens a socket and reads its ready message.
func (h *harness) browser(sess string) *browser {
	h.t.Helper()
	c, _, err := h.dial("demo", sess, testOrigin)
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	h.t.Cleanup(func() { _ = c.CloseNow() })
	b := &browser{t: h.t, c: c, user: sess}
	if m := b.next(); m.Type != "ready" {
		h.t.Fatalf("first message %s, want ready", m.raw)
	}
	return b
}

func (b *browser) send(s string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := b.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		b.t.Fatalf("send: %v", err)
	}
}

// read returns the next message, or the read error.
func (b *browser) read() (inMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	typ, raw, err := b.c.Read(ctx)
	if err != nil {
		return inMsg{}, err
	}
	var m inMsg
	if typ != websocket.MessageText {
		return m, fmt.Errorf("binary frame from relay")
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("relay sent non-JSON %q: %w", raw, err)
	}
	m.raw = raw
	if m.Type == "status" {
		b.statuses = append(b.statuses, m.Upstream)
	}
	return m, nil
}

// awaitStatus waits for the next status (after those already awaited),
// whether until skipped it or it is still to come, and checks it is want.
func (b *browser) awaitStatus(want string) {
	b.t.Helper()
	for len(b.statuses) <= b.statusUsed {
		m := b.next()
		if m.Type != "data" && m.Type != "status" {
			b.t.Fatalf("%s: got %s while waiting for status %s", b.user, m.raw, want)
		}
	}
	got := b.statuses[b.statusUsed]
	b.statusUsed++
	if got != want {
		b.t.Fatalf("%s: status %s, want %s (all: %v)", b.user, got, want, b.statuses)
	}
}

func (b *browser) next() inMsg {
	b.t.Helper()
	m, err := b.read()
	if err != nil {
		b.t.Fatalf("%s: read: %v", b.user, err)
	}
	return m
}

// until returns the first message of type typ, skipping data and status.
func (b *browser) until(typ string) inMsg {
	b.t.Helper()
	for {
		m := b.next()
		if m.Type == typ {
			return m
		}
		if m.Type != "data" && m.Type != "status" {
			b.t.Fatalf("%s: got %s while waiting for %s", b.user, m.raw, typ)
		}
	}
}

// closed reads until the socket closes and returns the close code.
func (b *browser) closed() websocket.StatusCode {
	b.t.Helper()
	for {
		_, err := b.read()
		if err != nil {
			if code := websocket.CloseStatus(err); code != -1 {
				return code
			}
			b.t.Fatalf("%s: socket ended without a close frame: %v", b.user, err)
		}
	}
}

// dataSymbols returns the symbols of a data message's vendor messages.
func dataSymbols(t testing.TB, m inMsg) []string {
	t.Helper()
	var out []string
	for _, raw := range m.Messages {
		var v struct {
			Ev  string `json:"ev"`
			Sym string `json:"sym"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("vendor message %s: %v", raw, err)
		}
		if v.Ev == "status" {
			t.Fatalf("a vendor status message was relayed: %s", raw)
		}
		out = append(out, v.Sym)
	}
	return out
}

// ---------------------------------------------------------------------
// logs: captured, and checked for secrets

type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// logger logs everything, debug included, so that the secret check below
// sees every line the relay can write.
func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// assertClean fails when a log line holds the vendor key, a session key
// or a URL query.
func (l *logBuffer) assertClean(t testing.TB) {
	t.Helper()
	s := l.String()
	for _, bad := range []string{testKey, "apikey=", "sk-"} {
		if strings.Contains(s, bad) {
			t.Errorf("log holds %q:\n%s", bad, s)
		}
	}
}

var _ io.Writer = (*logBuffer)(nil)
