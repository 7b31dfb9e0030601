package marketsim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server is the simulated vendor. Create it with New, serve it with Start,
// Serve or Handler, and always Close it: it owns a data generator goroutine.
type Server struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	syms    []*symbol
	bySym   map[string]*symbol
	refs    []atomic.Int32 // subscribing connections per symbol
	active  atomic.Int64   // sum of refs; the generator idles at zero
	wake    chan struct{}
	handler http.Handler
	budget  *budget
	stats   counters
	frames  sync.Pool // *frame
	bufs    sync.Pool // *[]byte for REST bodies

	keys atomic.Pointer[map[string]struct{}]

	// runtime knobs
	errorsIn200 atomic.Bool
	latency     atomic.Int64  // time.Duration
	failRate    atomic.Uint64 // float64 bits
	resetRate   atomic.Uint64 // float64 bits
	eventRate   atomic.Uint64 // float64 bits

	faultMu  sync.Mutex
	faultRng *rand.Rand

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // generator and Start's serve goroutine
	wsWG      sync.WaitGroup // WebSocket handlers

	mu      sync.Mutex // guards the fields below; taken before any conn.mu
	closed  bool
	httpSrv *http.Server
	url     string
	nextID  uint64
	conns   map[uint64]*conn   // open WebSocket connections
	byKey   map[string][]*conn // authenticated, oldest first; closing ones stay until unregistered
}

// New validates opts and returns a Server whose generator is running.
func New(opts Options) (*Server, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:     o,
		log:      o.Logger,
		now:      o.Now,
		syms:     newUniverse(o.Symbols, o.Seed),
		wake:     make(chan struct{}, 1),
		budget:   newBudget(o.RESTRate, o.RESTBurst),
		faultRng: rand.New(rand.NewPCG(uint64(o.Seed), 0xfa17)),
		done:     make(chan struct{}),
		conns:    make(map[uint64]*conn),
		byKey:    make(map[string][]*conn),
	}
	s.frames.New = func() any { return &frame{b: make([]byte, 0, 1024)} }
	s.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	s.refs = make([]atomic.Int32, len(s.syms))
	s.bySym = make(map[string]*symbol, len(s.syms))
	for _, sym := range s.syms {
		s.bySym[sym.name] = sym
	}
	s.storeKeys(o.Keys)
	s.errorsIn200.Store(o.ErrorsIn200)
	s.latency.Store(int64(o.Latency))
	s.failRate.Store(math.Float64bits(o.FailRate))
	s.resetRate.Store(math.Float64bits(o.ResetRate))
	s.eventRate.Store(math.Float64bits(o.EventsPerSecond))
	s.handler = s.routes()
	s.wg.Add(1)
	go s.generate()
	return s, nil
}

// Handler returns the vendor's HTTP handler (REST and /v1/stream), for use
// with httptest.NewServer or an existing mux. Close the Server when done.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on addr (e.g. "127.0.0.1:0"), serves in the background
// until Close, and returns the base URL (http://127.0.0.1:port).
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("marketsim: listen: %w", err)
	}
	srv, err := s.bind(ln, true)
	if err != nil {
		_ = ln.Close()
		return "", err
	}
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("marketsim: serve failed", "err", err)
		}
	}()
	return s.URL(), nil
}

// Serve serves on ln until Close, then returns nil.
func (s *Server) Serve(ln net.Listener) error {
	srv, err := s.bind(ln, false)
	if err != nil {
		return err
	}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("marketsim: serve: %w", err)
	}
	return nil
}

func (s *Server) bind(ln net.Listener, background bool) (*http.Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.httpSrv != nil {
		return nil, ErrServing
	}
	s.httpSrv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.url = baseURLOf(ln.Addr())
	if background {
		s.wg.Add(1)
	}
	return s.httpSrv, nil
}

// baseURLOf turns a listener address into http://host:port, with an
// unspecified host (0.0.0.0, ::) replaced by the loopback address.
func baseURLOf(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// URL returns the listener's base URL (http://127.0.0.1:port) once Start
// or Serve has been called, otherwise "". Options.PublicURL changes the
// links the vendor writes, not this.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// StreamURL returns the WebSocket URL (ws://127.0.0.1:port/v1/stream), or ""
// before Start or Serve.
func (s *Server) StreamURL() string {
	u := s.URL()
	if u == "" {
		return ""
	}
	return "ws" + u[len("http"):] + "/v1/stream"
}

// Symbols returns the symbol universe in its configured order.
func (s *Server) Symbols() []string { return append([]string(nil), s.opts.Symbols...) }

// Close stops the server: the listener of Start/Serve, every WebSocket
// (1001 "server shutting down", abruptly after a short grace) and the
// generator. It waits for every goroutine it started and is safe to call
// twice.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		srv := s.httpSrv
		conns := s.connList()
		s.mu.Unlock()
		close(s.done)

		for _, c := range conns {
			c.shutdown(closeShutdown)
		}
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if e := srv.Shutdown(ctx); e != nil {
				err = fmt.Errorf("marketsim: shutdown: %w", e)
				_ = srv.Close()
			}
			cancel()
		}
		wsDone := make(chan struct{})
		go func() { s.wsWG.Wait(); close(wsDone) }()
		t := time.NewTimer(closeGraceTimeout)
		select {
		case <-wsDone:
		case <-t.C:
			s.mu.Lock()
			conns = s.connList()
			s.mu.Unlock()
			for _, c := range conns {
				_ = c.ws.CloseNow()
			}
			<-wsDone
		}
		t.Stop()
		s.wg.Wait()
	})
	return err
}

// connList returns the open connections, oldest first. s.mu must be held.
func (s *Server) connList() []*conn {
	out := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, c)
	}
	sortConns(out)
	return out
}

// SetKeys replaces the valid keys (key rotation). REST requests and
// WebSocket auth with a removed key are refused from now on; WebSocket
// connections already authenticated with it stay open, as with most
// vendors, which check the key only at auth (call DropAll as well to
// simulate a revocation that kills streams).
func (s *Server) SetKeys(keys ...string) error {
	k, err := checkKeys(keys)
	if err != nil {
		return err
	}
	s.storeKeys(k)
	s.budget.keep(*s.keys.Load())
	s.log.Info("marketsim: keys rotated", "keys", len(k))
	return nil
}

func (s *Server) storeKeys(keys []string) {
	m := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		m[k] = struct{}{}
	}
	s.keys.Store(&m)
}

func (s *Server) validKey(k string) bool {
	if k == "" {
		return false
	}
	_, ok := (*s.keys.Load())[k]
	return ok
}

// keyTag is a short fingerprint of a key for logs: never the key itself.
func keyTag(k string) string {
	h := sha256.Sum256([]byte(k))
	return hex.EncodeToString(h[:4])
}

// SetErrorsIn200 switches the "errors in 200" mode at run time.
func (s *Server) SetErrorsIn200(on bool) { s.errorsIn200.Store(on) }

// SetLatency sets the delay added to every HTTP answer.
func (s *Server) SetLatency(d time.Duration) error {
	if d < 0 {
		return badOption("Latency", "must not be negative")
	}
	s.latency.Store(int64(d))
	return nil
}

// SetFailRate sets the probability (0–1) of an injected 503.
func (s *Server) SetFailRate(p float64) error {
	if err := checkRate("FailRate", p); err != nil {
		return err
	}
	s.failRate.Store(math.Float64bits(p))
	return nil
}

// SetResetRate sets the probability (0–1) of an injected connection reset.
func (s *Server) SetResetRate(p float64) error {
	if err := checkRate("ResetRate", p); err != nil {
		return err
	}
	s.resetRate.Store(math.Float64bits(p))
	return nil
}

// SetEventsPerSecond changes the data rate per subscribed symbol.
func (s *Server) SetEventsPerSecond(r float64) error {
	if err := checkEventsPerSecond(r); err != nil {
		return err
	}
	s.eventRate.Store(math.Float64bits(r))
	return nil
}

// SetRESTLimit changes the per-key REST budget, with the meaning of
// Options.RESTRate and RESTBurst (0 = default, negative rate = unlimited).
func (s *Server) SetRESTLimit(rate float64, burst int) error {
	rate, burst, err := restLimit(rate, burst)
	if err != nil {
		return err
	}
	s.budget.set(rate, burst)
	return nil
}

// DropAll closes every WebSocket connection abruptly, without a close
// frame, as a network failure would ("drop now" fault injection). It
// returns the number of connections dropped.
func (s *Server) DropAll() int {
	s.mu.Lock()
	conns := s.connList()
	s.mu.Unlock()
	n := 0
	for _, c := range conns {
		if c.shutdown(closeDropped) {
			n++
		}
		_ = c.ws.CloseNow()
	}
	if n > 0 {
		s.log.Info("marketsim: dropped all connections", "count", n)
	}
	return n
}

// InjectFrame sends b as one text frame, verbatim, to every authenticated
// WebSocket connection, in order with its data frames ("garbage frame"
// fault injection: truncated JSON, binary noise, unexpected shapes, to
// exercise a client's parser). It returns the number of connections that
// got it.
func (s *Server) InjectFrame(b []byte) int {
	s.mu.Lock()
	conns := s.connList()
	s.mu.Unlock()
	n := 0
	for _, c := range conns {
		c.mu.Lock()
		if c.authed && c.enqueueLocked(&frame{b: bytes.Clone(b)}) {
			n++
		}
		c.mu.Unlock()
	}
	return n
}

func (s *Server) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.faultRng.Float64() < p
}
