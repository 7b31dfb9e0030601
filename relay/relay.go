package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/tickgate/tickgate/apierr"
	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/logging"
	"github.com/tickgate/tickgate/metrics"
	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/session"
)

// Secrets reads vendor keys. *secrets.Cache implements it.
type Secrets interface {
	Get(ctx context.Context, name string) (secrets.Value, error)
	// Invalidate is called when the vendor refused stale; it returns the
	// value to use now (re-read, or already changed by another caller).
	Invalidate(ctx context.Context, name string, stale secrets.Value) (secrets.Value, error)
}

// Sessions tells the relay when a browser session ends and records its
// activity. *session.Manager implements it.
type Sessions interface {
	// Watch returns a channel closed when the session ends (logout,
	// revocation, idle or absolute expiry). stop releases the watch.
	Watch(key string) (ended <-chan struct{}, stop func())
	// Touch records activity: browser control messages count as activity,
	// pushed data does not. An error wrapping session.ErrNotFound means
	// the session has ended.
	Touch(ctx context.Context, key string) error
}

// DialFunc opens an upstream WebSocket; websocket.Dial has this shape.
type DialFunc func(ctx context.Context, url string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error)

// Config configures a Relay. A zero field takes the default in its comment.
type Config struct {
	// Feeds are served under /ws/{name}.
	Feeds map[string]config.Feed
	// Secrets reads the feeds' vendor keys. Required when a feed
	// authenticates.
	Secrets Secrets
	// Sessions watches browser sessions. Required.
	Sessions Sessions
	// AllowedOrigins are the full origins browsers use, e.g.
	// "https://app.example.com". An upgrade whose Origin header is not one
	// of them (compared case-insensitively, default ports ignored) or has
	// none is refused with 403 before the upgrade. Required.
	AllowedOrigins []string

	// MaxSymbols is the number of distinct symbols one session may
	// subscribe on a feed across its sockets (default 50); a feed's own
	// MaxSymbols overrides it for that feed.
	MaxSymbols int
	// MaxFeedSymbols is the number of distinct symbols one feed holds
	// upstream for all sessions together (default 1000); a feed's own
	// MaxFeedSymbols, or its adapter's lower per-connection cap, overrides
	// it. Above it subscribes get too_many_symbols, so browsers cannot
	// make the relay subscribe the vendor to unbounded symbols.
	MaxFeedSymbols int
	// MaxConns is the number of sockets one session may have open across
	// feeds (default 5). One more is accepted and closed at once with 4008.
	MaxConns int
	// ControlRate is the number of browser messages per second one socket
	// may send, with a burst of as many (default 10). Above it: close 4008.
	ControlRate int
	// ReadLimit is the largest browser frame in bytes (default 4096).
	// Larger: close 1009.
	ReadLimit int64
	// QueueSize is how many data messages wait for one browser before they
	// are conflated to the latest per symbol (default 256).
	QueueSize int
	// SendWindow is how many bytes may be on the way to one browser
	// unconfirmed (default 256 KiB). Past it the browser's data waits in
	// its queue, conflating, until the browser answers a ping (browsers
	// answer as they read); one that confirms nothing for WriteTimeout is
	// closed with 4008. Keeping the unread bytes bounded leaves room in the
	// socket buffers for that close frame.
	SendWindow int64
	// PingInterval is the time between pings to each browser and to each
	// vendor (default 20s). A peer that does not answer within the next
	// interval is dropped.
	PingInterval time.Duration
	// WriteTimeout bounds every socket write (default 5s). A browser that
	// does not take a frame in that time is dropped as a slow client.
	WriteTimeout time.Duration
	// Linger keeps a symbol subscribed upstream this long after its last
	// browser left, so a page reload does not cost an unsubscribe and a
	// subscribe (default 2s; negative: unsubscribe at once).
	Linger time.Duration
	// ReconnectMin and ReconnectMax bound the upstream reconnect backoff
	// (defaults 500ms and 30s; exponential with jitter).
	ReconnectMin time.Duration
	ReconnectMax time.Duration
	// DialTimeout bounds an upstream dial plus its authentication
	// (default 10s).
	DialTimeout time.Duration
	// UpstreamReadLimit is the largest vendor frame in bytes (default 1 MiB).
	UpstreamReadLimit int64

	// Logger receives connection and subscription events; never a key,
	// a session key or a URL with a query. Default: discard.
	Logger *slog.Logger
	// Metrics receives the tickgate_ws_* series. Default metrics.Discard().
	Metrics *metrics.Metrics
	// AllowNoOrigin, when set, reports whether an upgrade request with
	// no Origin header at all may proceed. Browsers always send Origin on
	// a WebSocket handshake, so a request without one is a non-browser
	// client (a mobile app); tickgate allows it only when the session came
	// from a one-time ticket, never from an (ambient) cookie. nil: refused.
	AllowNoOrigin func(r *http.Request) bool
	// Access, when set, gives a session's symbol limit and allowlist on
	// a feed (its roles; see access.go). nil: every session gets the
	// feed's limit and every symbol.
	Access func(s *session.Session, feed string) config.FeedAccess
	// RootCAs verifies the vendors' certificates with the default Dial:
	// the system roots plus a corporate CA (TICKGATE_UPSTREAM_CA_FILE).
	// Nil means the system roots.
	RootCAs *x509.CertPool
	// Dial opens upstream connections; tests set it. Default websocket.Dial
	// with an HTTP client that requires TLS 1.2, uses HTTP/1.1 and never
	// follows redirects (a redirect could carry the key elsewhere).
	Dial DialFunc
	// Sharing, when set, shares each feed's upstream connections with the
	// other replicas through Redis (cluster.go). nil: this process
	// connects on its own.
	Sharing *Sharing
}

func (c *Config) setDefaults() error {
	var errs []string
	def := func(v *int, d int, name string) {
		if *v == 0 {
			*v = d
		} else if *v < 0 {
			errs = append(errs, name+" must not be negative")
		}
	}
	defDur := func(v *time.Duration, d time.Duration, name string) {
		if *v == 0 {
			*v = d
		} else if *v < 0 {
			errs = append(errs, name+" must not be negative")
		}
	}
	def(&c.MaxSymbols, 50, "MaxSymbols")
	def(&c.MaxFeedSymbols, 1000, "MaxFeedSymbols")
	def(&c.MaxConns, 5, "MaxConns")
	def(&c.ControlRate, 10, "ControlRate")
	def(&c.QueueSize, 256, "QueueSize")
	defDur(&c.PingInterval, 20*time.Second, "PingInterval")
	defDur(&c.WriteTimeout, 5*time.Second, "WriteTimeout")
	defDur(&c.ReconnectMin, 500*time.Millisecond, "ReconnectMin")
	defDur(&c.ReconnectMax, 30*time.Second, "ReconnectMax")
	defDur(&c.DialTimeout, 10*time.Second, "DialTimeout")
	switch {
	case c.Linger == 0:
		c.Linger = 2 * time.Second
	case c.Linger < 0:
		c.Linger = 0
	}
	switch {
	case c.SendWindow == 0:
		c.SendWindow = 256 << 10
	case c.SendWindow < 0:
		errs = append(errs, "SendWindow must not be negative")
	}
	switch {
	case c.ReadLimit == 0:
		c.ReadLimit = 4096
	case c.ReadLimit < 0:
		errs = append(errs, "ReadLimit must not be negative")
	}
	switch {
	case c.UpstreamReadLimit == 0:
		c.UpstreamReadLimit = 1 << 20
	case c.UpstreamReadLimit < 0:
		errs = append(errs, "UpstreamReadLimit must not be negative")
	}
	if c.ReconnectMax < c.ReconnectMin {
		errs = append(errs, "ReconnectMax must not be below ReconnectMin")
	}
	if c.Sessions == nil {
		errs = append(errs, "Sessions is required")
	}
	if c.Sharing != nil {
		sh := *c.Sharing
		if err := sh.setDefaults(); err != nil {
			errs = append(errs, err.Error())
		}
		c.Sharing = &sh
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = metrics.Discard()
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(errs, "; "))
	}
	return nil
}

// Relay serves browser WebSockets under /ws/{feed} and multiplexes them
// onto one authenticated upstream connection per feed.
type Relay struct {
	cfg       Config
	log       *slog.Logger
	hubs      map[string]*hub
	origins   map[string]bool
	patterns  []string // AcceptOptions.OriginPatterns, defence in depth
	dial      DialFunc
	transport *http.Transport
	client    *http.Client

	ctx    context.Context // cancelled by Close after every browser left
	cancel context.CancelFunc

	bufs sync.Pool // *[]byte encode buffers for data messages

	mu     sync.Mutex
	closed bool
	conns  map[string]*sessionState // session key → its sockets' shared state
	wg     sync.WaitGroup           // ServeHTTP calls past the checks

	closeOnce sync.Once
}

// New checks cfg and returns a Relay. Upstream connections open when the
// first browser connects to a feed.
func New(cfg Config) (*Relay, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	r := &Relay{
		cfg:     cfg,
		log:     cfg.Logger,
		hubs:    make(map[string]*hub, len(cfg.Feeds)),
		origins: make(map[string]bool, len(cfg.AllowedOrigins)),
		conns:   make(map[string]*sessionState),
		dial:    cfg.Dial,
	}
	if len(cfg.AllowedOrigins) == 0 {
		return nil, fmt.Errorf("%w: AllowedOrigins is required (the origins browsers use, e.g. https://app.example.com)", ErrInvalidConfig)
	}
	for _, o := range cfg.AllowedOrigins {
		n, ok := normalizeOrigin(o)
		if !ok {
			return nil, fmt.Errorf("%w: AllowedOrigins: %q is not an origin like https://app.example.com", ErrInvalidConfig, o)
		}
		r.origins[n] = true
		r.patterns = append(r.patterns, originPattern(n))
	}
	for _, name := range slices.Sorted(mapKeys(cfg.Feeds)) {
		f := cfg.Feeds[name]
		ad, err := newAdapter(f)
		if err != nil {
			return nil, fmt.Errorf("%w: feed %s: %w", ErrInvalidConfig, name, err)
		}
		if ad.authMode != authNone && cfg.Secrets == nil {
			return nil, fmt.Errorf("%w: feed %s: Secrets is required to authenticate upstream", ErrInvalidConfig, name)
		}
		if f.MaxSymbols < 0 || f.MaxFeedSymbols < 0 || f.BatchWindow < 0 {
			return nil, fmt.Errorf("%w: feed %s: max_symbols, max_feed_symbols and batch_window must not be negative", ErrInvalidConfig, name)
		}
		r.hubs[name] = newHub(r, name, f, ad)
	}
	if r.dial == nil {
		r.transport = http.DefaultTransport.(*http.Transport).Clone()
		r.transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}, RootCAs: cfg.RootCAs}
		r.transport.ForceAttemptHTTP2 = false
		r.transport.DisableKeepAlives = true
		r.client = &http.Client{
			Transport: r.transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
		r.dial = websocket.Dial
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// ServeHTTP upgrades GET /ws/{feed} (the feed is the last path segment).
// Before the upgrade it answers with a JSON error: 401 no_session without
// a session in the request context, 403 origin for a missing or foreign
// Origin, 404 not_found for an unknown feed, 426 upgrade_required for a
// request that is not a WebSocket handshake, 503 shutting_down after
// Close. A session over MaxConns is upgraded and closed with 4008 (a
// browser cannot read the status of a refused upgrade; it can read a close
// code); a feed that cannot be served is upgraded and closed with 1013.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	sess, ok := session.FromContext(req.Context())
	if !ok {
		apierr.Respond(w, http.StatusUnauthorized, "no_session", "sign in first")
		return
	}
	// Exactly one Origin: a request carrying several is not from a browser.
	// None at all only when AllowNoOrigin says so (a ticket, not a cookie).
	noOriginOK := len(req.Header.Values("Origin")) == 0 && r.cfg.AllowNoOrigin != nil && r.cfg.AllowNoOrigin(req)
	if !noOriginOK && (len(req.Header.Values("Origin")) != 1 || !r.originAllowed(req.Header.Get("Origin"))) {
		r.log.WarnContext(req.Context(), "ws upgrade refused: origin not allowed", logging.Audit(), "user", sess.User, "origin", trimForLog(req.Header.Get("Origin")))
		apierr.Respond(w, http.StatusForbidden, "origin", "this origin may not open WebSockets here")
		return
	}
	name := feedName(req)
	h := r.hubs[name]
	if h == nil {
		apierr.Respond(w, http.StatusNotFound, "not_found", "unknown feed")
		return
	}
	if !headerHasToken(req.Header, "Upgrade", "websocket") || req.Method != http.MethodGet {
		w.Header().Set("Upgrade", "websocket")
		apierr.Respond(w, http.StatusUpgradeRequired, "upgrade_required", "this URL speaks WebSocket")
		return
	}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		apierr.Respond(w, http.StatusServiceUnavailable, "shutting_down", "the server is shutting down")
		return
	}
	st := r.conns[sess.Key]
	if st == nil {
		st = &sessionState{}
		r.conns[sess.Key] = st
	}
	over := st.conns >= r.cfg.MaxConns
	if !over {
		st.conns++
	}
	r.wg.Add(1)
	r.mu.Unlock()
	defer r.wg.Done()
	if !over {
		defer r.release(sess.Key)
	}

	conn, err := websocket.Accept(w, req, &websocket.AcceptOptions{OriginPatterns: r.patterns})
	if err != nil {
		r.log.Info("ws upgrade failed", "feed", name, "user", sess.User, "err", err)
		return // Accept has answered
	}
	conn.SetReadLimit(r.cfg.ReadLimit)
	if over {
		r.log.WarnContext(req.Context(), "ws refused: too many connections", logging.Audit(), "feed", name, "user", sess.User, "code", int(closePolicy), "limit", r.cfg.MaxConns)
		_ = conn.Close(closePolicy, "too many connections")
		return
	}
	c := newClient(r, h, conn, sess, st)
	c.setAccess(sess, name)
	// The socket's audit lines carry the upgrade request's id.
	c.logCtx = context.WithoutCancel(req.Context())
	c.run()
}

// sessionState is what a session's sockets share: their count and the
// control message budget.
type sessionState struct {
	conns int // guarded by Relay.mu

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// allow is a token bucket of rate messages per second, with a burst of as
// many, shared by the session's sockets.
func (s *sessionState) allow(now time.Time, rate float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last.IsZero() {
		s.tokens = rate
	} else if now.After(s.last) {
		s.tokens = min(rate, s.tokens+now.Sub(s.last).Seconds()*rate)
	}
	if now.After(s.last) {
		s.last = now
	}
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

func (r *Relay) release(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.conns[key]; st != nil {
		if st.conns--; st.conns <= 0 {
			delete(r.conns, key)
		}
	}
}

// Close closes every browser socket with 1001, then the upstream
// connections, and waits for every goroutine of the relay. New upgrades
// get 503. Safe to call twice.
func (r *Relay) Close() {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		for _, h := range r.hubs {
			h.closeClients()
		}
		r.wg.Wait()
		r.cancel()
		for _, h := range r.hubs {
			h.wait()
		}
		if r.transport != nil {
			r.transport.CloseIdleConnections()
		}
	})
}

func (r *Relay) getBuf() *[]byte {
	if bp, ok := r.bufs.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, 4096)
	return &b
}

func (r *Relay) putBuf(bp *[]byte) {
	if cap(*bp) <= maxKeptBuffer {
		r.bufs.Put(bp)
	}
}

// Ready reports, per feed, whether it can serve browsers now: true when
// its upstream is authenticated, or not yet needed (upstreams connect on
// the first browser); false while it reconnects or its key is refused.
func (r *Relay) Ready() map[string]bool {
	out := make(map[string]bool, len(r.hubs))
	for name, h := range r.hubs {
		out[name] = h.ready()
	}
	return out
}

// feedName is the last segment of the request path, or the {feed} path
// value of a net/http pattern.
func feedName(req *http.Request) string {
	if v := req.PathValue("feed"); v != "" {
		return v
	}
	p := req.URL.Path
	return p[strings.LastIndexByte(p, '/')+1:]
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// normalizeOrigin is config.NormalizeOrigin with a bool.
func normalizeOrigin(o string) (string, bool) {
	n, err := config.NormalizeOrigin(o)
	return n, err == nil
}

// originAllowed reports whether the Origin header o is one of the allowed
// origins. A missing Origin ("" ) or "null" (sandboxed frames, file://) is
// refused: browsers always send Origin on a WebSocket upgrade.
func (r *Relay) originAllowed(o string) bool {
	n, ok := normalizeOrigin(o)
	return ok && r.origins[n]
}

// originPattern escapes an origin for coder/websocket's path.Match
// patterns ("[" of an IPv6 host is a pattern character).
func originPattern(origin string) string {
	var b strings.Builder
	for _, c := range origin {
		if strings.ContainsRune(`*?[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// trimForLog bounds a browser-supplied value before it is logged.
func trimForLog(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
