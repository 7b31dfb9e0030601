package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickgate/tickgate/apierr"
	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/metrics"
	"github.com/tickgate/tickgate/secrets"
)

// Defaults for zero config.Upstream fields.
const (
	DefaultTimeout          = 15 * time.Second
	DefaultMaxResponseBytes = 10 << 20
)

// Secrets is what the proxy needs from the secrets cache; *secrets.Cache
// satisfies it. Invalidate is called with the value a vendor refused and
// returns the value to use now (a different one when the key rotated).
type Secrets interface {
	Get(ctx context.Context, name string) (secrets.Value, error)
	Invalidate(ctx context.Context, name string, stale secrets.Value) (secrets.Value, error)
}

var _ Secrets = (*secrets.Cache)(nil)

// Config configures a Proxy. Zero values of optional fields are safe
// defaults.
type Config struct {
	// Upstreams by name, as in the YAML file; /api/{name}/... reaches one.
	Upstreams map[string]config.Upstream
	// Secrets provides the vendor keys. Required.
	Secrets Secrets
	// Logger receives one line per forwarded request (debug when it went
	// well, warn when the upstream failed) with the upstream name, method,
	// path without query, status and duration. Nil discards.
	Logger *slog.Logger
	// Metrics receives tickgate_upstream_requests_total{upstream,code} (one
	// per attempt toward the vendor) and the upstream latency. Nil means
	// metrics.Discard().
	Metrics *metrics.Metrics
	// Transport carries requests to the vendors. Nil means a clone of
	// http.DefaultTransport with explicit dial, TLS and response-header
	// timeouts, 256 idle connections per host, TLS 1.2 at least, and no
	// proxy from the environment (HTTP_PROXY would see the key in plain
	// http URLs): set a Transport with Proxy configured to use an egress
	// proxy. It must not follow redirects (an http.RoundTripper does not).
	Transport http.RoundTripper
}

// Proxy forwards /api/{upstream}/{path...} to vendors with their key
// added, and scrubs the key out of what comes back. It is safe for
// concurrent use.
type Proxy struct {
	ups     map[string]*upstream
	secrets Secrets
	log     *slog.Logger
	m       *metrics.Metrics
	base    http.RoundTripper
	rp      *httputil.ReverseProxy

	copyBufs sync.Pool // *[]byte of copyBufSize, for the ReverseProxy
	readBufs sync.Pool // *[]byte, for scrubReader input
}

const copyBufSize = 32 << 10

// upstream is a config.Upstream compiled for forwarding.
type upstream struct {
	name     string
	prefix   string   // "/api/{name}"
	base     *url.URL // scheme and host
	baseStr  string   // scheme://host/path without trailing slash
	basePath string   // base path without trailing slash
	secret   string
	kind     string      // query, header or bearer
	slot     string      // query parameter or header name
	slotEsc  string      // slot, query-escaped
	headers  http.Header // config headers, canonical names
	routes   []route
	timeout  time.Duration
	maxBytes int64
	duration prometheus.Observer

	scrub atomic.Pointer[keyedScrubber] // for the last key seen
}

type keyedScrubber struct {
	key string
	s   *scrubber
}

// scrubberFor returns the scrubber for the given key values, cached for
// the common case of one current key.
func (u *upstream) scrubberFor(keys ...secrets.Value) *scrubber {
	if len(keys) == 1 {
		k := keys[0].Reveal()
		if ks := u.scrub.Load(); ks != nil && ks.key == k {
			return ks.s
		}
		s := newScrubber(u.prefix, u.baseStr, u.slot, k)
		u.scrub.Store(&keyedScrubber{key: k, s: s})
		return s
	}
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = k.Reveal()
	}
	return newScrubber(u.prefix, u.baseStr, u.slot, vals...)
}

// New validates cfg and returns a Proxy. Errors wrap ErrInvalidConfig and
// name the upstream and field, never a secret.
func New(cfg Config) (*Proxy, error) {
	if cfg.Secrets == nil {
		return nil, fmt.Errorf("%w: Secrets is required", ErrInvalidConfig)
	}
	p := &Proxy{
		ups:     make(map[string]*upstream, len(cfg.Upstreams)),
		secrets: cfg.Secrets,
		log:     cfg.Logger,
		m:       cfg.Metrics,
		base:    cfg.Transport,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.m == nil {
		p.m = metrics.Discard()
	}
	var errs []error
	maxTimeout := DefaultTimeout
	names := make([]string, 0, len(cfg.Upstreams))
	for name := range cfg.Upstreams {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		u, err := compileUpstream(name, cfg.Upstreams[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		u.duration = p.m.UpstreamDuration.WithLabelValues(name)
		maxTimeout = max(maxTimeout, u.timeout)
		p.ups[name] = u
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if p.base == nil {
		p.base = newTransport(maxTimeout)
	}
	p.copyBufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	p.readBufs.New = func() any { b := make([]byte, 0, readSize+4<<10); return &b }
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      &retryTransport{p: p},
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		// ReverseProxy's own log lines may quote a *url.Error, whose text
		// holds the URL with the key: discard them, we log ourselves.
		ErrorLog:   log.New(io.Discard, "", 0),
		BufferPool: (*copyPool)(p),
	}
	return p, nil
}

// copyPool lends the ReverseProxy its copy buffers.
type copyPool Proxy

func (c *copyPool) Get() []byte { return *(c.copyBufs.Get().(*[]byte)) }
func (c *copyPool) Put(b []byte) {
	if cap(b) == copyBufSize {
		b = b[:copyBufSize]
		c.copyBufs.Put(&b)
	}
}

// Close closes idle connections to the vendors. The Proxy keeps working.
func (p *Proxy) Close() {
	if c, ok := p.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func compileUpstream(name string, c config.Upstream) (*upstream, error) {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: upstreams.%s.%s: %s", ErrInvalidConfig, name, field, fmt.Sprintf(format, args...))
	}
	if !validName(name) {
		return nil, fmt.Errorf("%w: upstream name %q must be lower-case letters, digits, - or _", ErrInvalidConfig, name)
	}
	base, err := url.Parse(c.BaseURL)
	switch {
	case err != nil || base.Host == "" || base.User != nil || base.RawQuery != "" || base.ForceQuery || base.Fragment != "" || base.RawPath != "" || base.Opaque != "":
		return nil, bad("base_url", "%q is not a URL like https://api.vendor.com", c.BaseURL)
	case base.Scheme == "https":
	case base.Scheme == "http" && config.IsLoopbackHost(base.Hostname()):
	default:
		return nil, bad("base_url", "%q: only https, or http to a loopback host", c.BaseURL)
	}
	u := &upstream{
		name:     name,
		prefix:   "/api/" + name,
		base:     &url.URL{Scheme: base.Scheme, Host: base.Host},
		basePath: strings.TrimSuffix(base.Path, "/"),
		secret:   c.Key.Secret,
		timeout:  c.Timeout.Std(),
		maxBytes: c.MaxResponseBytes,
		headers:  make(http.Header, len(c.Headers)),
	}
	u.baseStr = base.Scheme + "://" + base.Host + u.basePath
	if u.secret == "" {
		return nil, bad("key.secret", "required")
	}
	u.kind, u.slot = c.Key.KeySlot()
	u.slotEsc = url.QueryEscape(u.slot)
	switch {
	case u.kind == "bearer":
	case u.kind == "query" && u.slot != "" && !strings.ContainsAny(u.slot, " \t\r\n&=#?;%+") && validHeaderValue(u.slot):
	case u.kind == "header" && validToken(u.slot) && !isHopByHop(u.slot):
	default:
		return nil, bad("key.placement", "%q is not query:<param>, header:<name> or bearer", c.Key.Placement)
	}
	for h, v := range c.Headers {
		ch := http.CanonicalHeaderKey(h)
		switch {
		case !validToken(h):
			return nil, bad("headers", "%q is not a valid header name", h)
		case !validHeaderValue(v):
			return nil, bad("headers", "%q has a value with CR, LF, NUL or another control character", h)
		case isHopByHop(ch) || ch == "Host" || ch == "Content-Length":
			return nil, bad("headers", "%q cannot be set per upstream", h)
		case u.kind != "query" && equalHeaderName(ch, u.slot):
			return nil, bad("headers", "%q is where the key goes", h)
		}
		u.headers[ch] = []string{v} // len == cap: Add on a request copies
	}
	switch {
	case u.timeout < 0:
		return nil, bad("timeout", "must not be negative")
	case u.timeout == 0:
		u.timeout = DefaultTimeout
	}
	switch {
	case u.maxBytes < 0:
		return nil, bad("max_response_bytes", "must not be negative")
	case u.maxBytes == 0:
		u.maxBytes = DefaultMaxResponseBytes
	}
	if len(c.Routes) == 0 {
		return nil, bad("routes", "at least one route is required")
	}
	for i, r := range c.Routes {
		cr := route{methods: r.Methods}
		if len(cr.methods) == 0 {
			cr.methods = []string{http.MethodGet, http.MethodHead}
		}
		for _, m := range cr.methods {
			if !validToken(m) || m != strings.ToUpper(m) {
				return nil, bad(fmt.Sprintf("routes[%d].methods", i), "%q is not an HTTP method in upper case", m)
			}
		}
		if len(r.Paths) == 0 {
			return nil, bad(fmt.Sprintf("routes[%d].paths", i), "at least one path pattern is required")
		}
		for _, pat := range r.Paths {
			if why := config.ValidatePattern(pat); why != "" {
				return nil, bad(fmt.Sprintf("routes[%d].paths", i), "%q %s", pat, why)
			}
			cr.patterns = append(cr.patterns, compilePattern(pat))
		}
		u.routes = append(u.routes, cr)
	}
	return u, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// stateKey carries a request's *state through the ReverseProxy.
type stateKey struct{}

// state is what one forwarded request knows; only its handler goroutine
// touches it.
type state struct {
	u       *upstream
	path    string // decoded, checked, matched
	query   string // client query without the key parameter
	key     secrets.Value
	scrub   *scrubber
	body    []byte // buffered request body, for a retry after 401/403
	noRetry bool   // the body was too large to buffer

	reader     *scrubReader // response body, once there is one
	code       string       // error code answered, if any
	cause      error        // why, for the log
	clientGone bool
	attempts   int
}

func stateFrom(ctx context.Context) *state {
	st, _ := ctx.Value(stateKey{}).(*state)
	return st
}

// ServeHTTP handles the whole /api/ tree: it parses /api/{name}/{rest}
// from the escaped path, checks the path and method against the
// upstream's routes and forwards the request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name, rest, _ := splitAPIPath(r.URL.EscapedPath())
	u := p.ups[name]
	if u == nil {
		p.refuse(w, r, name, "", apierr.New(http.StatusNotFound, "not_found", "unknown upstream"))
		return
	}
	clean, why := checkPath(rest)
	if why != "" {
		p.refuse(w, r, name, why, apierr.New(http.StatusNotFound, "not_found", "path not found"))
		return
	}
	if ok, allow := matchRoute(u.routes, r.Method, clean); !ok {
		if allow == nil {
			p.refuse(w, r, name, "path not in the allowlist", apierr.New(http.StatusNotFound, "not_found", "path not found"))
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		p.refuse(w, r, name, "method not allowed", apierr.New(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed for this path"))
		return
	}
	if _, ok := r.Header["Upgrade"]; ok {
		p.refuse(w, r, name, "upgrade requested", apierr.New(http.StatusBadRequest, "bad_request", "protocol upgrades are not supported here"))
		return
	}
	query, ok := filterQuery(r.URL.RawQuery, u.slot)
	if !ok {
		p.refuse(w, r, name, "bad query", apierr.New(http.StatusBadRequest, "bad_request", "invalid query string"))
		return
	}
	key, err := p.secrets.Get(r.Context(), u.secret)
	if err == nil && !validHeaderValue(key.Reveal()) {
		err = errBadKey
	}
	if err != nil {
		if r.Context().Err() != nil {
			return // client gone
		}
		p.log.LogAttrs(r.Context(), slog.LevelError, "upstream key unavailable",
			slog.String("upstream", u.name), slog.String("secret", u.secret), slog.String("err", err.Error()))
		apierr.Write(w, apierr.Wrap(err, http.StatusBadGateway, "upstream_config", "the upstream is not configured correctly"))
		return
	}
	st := &state{u: u, path: clean, query: query, key: key, scrub: u.scrubberFor(key)}
	r2 := *r
	if err := st.bufferBody(&r2); err != nil {
		if r.Context().Err() == nil {
			p.refuse(w, r, name, "unreadable body", apierr.New(http.StatusBadRequest, "bad_request", "could not read the request body"))
		}
		return
	}
	ctx, cancel := context.WithTimeoutCause(r.Context(), u.timeout, errUpstreamTimeout)
	defer cancel()
	rw := &responseWriter{w: w, h: make(http.Header)}
	defer p.finish(r.Context(), st, r.Method, rw, start)
	p.rp.ServeHTTP(rw, r2.WithContext(context.WithValue(ctx, stateKey{}, st)))
}

// splitAPIPath splits /api/{name}/{rest}; rest keeps its leading slash.
func splitAPIPath(p string) (name, rest string, ok bool) {
	p, ok = strings.CutPrefix(p, "/api/")
	if !ok {
		return "", "", false
	}
	i := strings.IndexByte(p, '/')
	if i < 0 {
		return p, "", true
	}
	return p[:i], p[i:], true
}

// refuse answers a request the proxy will not forward.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, name, why string, e *apierr.Error) {
	if len(name) > 64 {
		name = name[:64] + "…" // client-supplied for an unknown upstream
	}
	p.log.LogAttrs(r.Context(), slog.LevelDebug, "api request refused",
		slog.String("upstream", name), slog.String("method", r.Method),
		slog.Int("status", e.Status), slog.String("code", e.Code), slog.String("reason", why))
	apierr.Write(w, e)
}

// finish logs a forwarded request: upstream name, method, checked path
// (never the query or the upstream URL), status and duration.
func (p *Proxy) finish(ctx context.Context, st *state, method string, rw *responseWriter, start time.Time) {
	level := slog.LevelDebug
	msg := "upstream request"
	status := rw.status
	var cut error
	if st.reader != nil && st.reader.err != nil && st.reader.err != io.EOF && st.reader.err != io.ErrClosedPipe {
		cut = st.reader.err
	}
	switch {
	case st.clientGone || (status == 0 && ctx.Err() != nil):
		msg, status = "client went away before the answer", 499
	case cut != nil && ctx.Err() != nil:
		msg = "client went away during the answer"
	case cut != nil:
		level, msg = slog.LevelWarn, "upstream response cut"
	case st.code == "upstream_config":
		level = slog.LevelError
	case st.code != "":
		level = slog.LevelWarn
	}
	if !p.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("upstream", st.u.name),
		slog.String("method", method),
		slog.String("path", st.path),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
	}
	if st.attempts > 1 {
		attrs = append(attrs, slog.Int("attempts", st.attempts))
	}
	if st.code != "" {
		attrs = append(attrs, slog.String("code", st.code))
	}
	if st.cause != nil {
		attrs = append(attrs, slog.String("err", st.safeErr(st.cause)))
	}
	if cut != nil {
		attrs = append(attrs, slog.String("cut", st.safeErr(cut)))
	}
	p.log.LogAttrs(ctx, level, msg, attrs...)
}

// safeErr is err's text for the log: a *url.Error is unwrapped (its text
// quotes the URL, query and key included), any key form is redacted, and
// anything that still looks like a URL is cut off.
func (st *state) safeErr(err error) string {
	var ue *url.Error
	for errors.As(err, &ue) {
		err = ue.Err
	}
	if err == nil {
		return ""
	}
	s := st.scrub.redactString(err.Error())
	s = strings.ReplaceAll(s, st.u.baseStr, "["+st.u.name+"]")
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[:i] + "…"
	}
	return s
}
