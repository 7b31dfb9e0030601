package proxy

import (
	"context"
	"crypto/x509"
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

// keyVersions is implemented by Secrets that know which version of a
// secret they hold (*secrets.Cache with AWS Secrets Manager). Its version
// id, never the value, goes on the upstream access log line as
// key_version, so that vendor usage can be traced to a key generation.
type keyVersions interface {
	Version(name string) (secrets.Version, bool)
}

var _ keyVersions = (*secrets.Cache)(nil)

// Config configures a Proxy. Zero values of optional fields are safe
// defaults.
type Config struct {
	// Upstreams by name, as in the YAML file; /api/{name}/... reaches one.
	Upstreams map[string]config.Upstream
	// Secrets provides the vendor keys. Required.
	Secrets Secrets
	// Logger receives one line per forwarded request (debug when it went
	// well, warn when the upstream failed) with the upstream name, method,
	// path without query, status and duration, and key_version when
	// Secrets knows the keys' versions (*secrets.Cache on Secrets
	// Manager): the version ids, never the values. Nil discards.
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
	// RootCAs verifies the vendors' certificates when Transport is nil:
	// the system roots plus a corporate CA (TICKGATE_UPSTREAM_CA_FILE).
	// Nil means the system roots. Verification stays on and TLS 1.2
	// stays the minimum either way.
	RootCAs *x509.CertPool
	// Budgets makes the Budget of each vendor account (first secret) whose
	// upstreams set a budget. Nil means NewMemoryBudget, which counts in
	// this process only: replicas sharing a key need a shared store.
	Budgets func(config.Budget) (Budget, error)
	// Now is the clock of budgets, cool-downs after a vendor 429 and the
	// cache. Nil means time.Now. Waiting in a budget queue uses real time.
	Now func() time.Time
}

// Proxy forwards /api/{upstream}/{path...} to vendors with their key
// added, and scrubs the key out of what comes back. It is safe for
// concurrent use.
type Proxy struct {
	ups      map[string]*upstream
	secrets  Secrets
	versions keyVersions // nil: the secrets have no versions
	log      *slog.Logger
	m        *metrics.Metrics
	base     http.RoundTripper
	rp       *httputil.ReverseProxy

	copyBufs sync.Pool // *[]byte of copyBufSize, for the ReverseProxy
	readBufs sync.Pool // *[]byte, for scrubReader input

	now     func() time.Time
	flights flights // identical GETs in flight
	cache   cache   // short-lived GET answers
}

const copyBufSize = 32 << 10

// upstream is a config.Upstream compiled for forwarding.
type upstream struct {
	name     string
	prefix   string   // "/api/{name}"
	base     *url.URL // scheme and host
	baseStr  string   // scheme://host/path without trailing slash
	basePath string   // base path without trailing slash
	keys     []keySlot
	slots    []string    // every key slot name, for stripping and scrubbing
	headers  http.Header // config headers, canonical names
	routes   []route
	timeout  time.Duration
	maxBytes int64
	duration prometheus.Observer

	account  string        // first secret: budgets and cool-downs are per account
	budget   Budget        // nil: no budget
	queue    time.Duration // how long a request may wait for a budget token
	cool     *atomic.Int64 // Unix ns until which the vendor said 429; shared per account
	coalesce bool
	cacheTTL time.Duration
	errBody  *bodyErrorRule // nil: trust the HTTP status

	scrub atomic.Pointer[keyedScrubber] // for the last keys seen
}

// keySlot is one secret and where it goes.
type keySlot struct {
	secret  string
	kind    string // query, header or bearer
	name    string // query parameter or header name
	nameEsc string // name, query-escaped
}

type keyedScrubber struct {
	keys []string
	s    *scrubber
}

func (ks *keyedScrubber) matches(keys []secrets.Value) bool {
	if len(ks.keys) != len(keys) {
		return false
	}
	for i, k := range keys {
		if ks.keys[i] != k.Reveal() {
			return false
		}
	}
	return true
}

// scrubberFor returns the scrubber for the given key values, cached for
// the common case of the upstream's current keys.
func (u *upstream) scrubberFor(keys ...secrets.Value) *scrubber {
	if ks := u.scrub.Load(); ks != nil && ks.matches(keys) {
		return ks.s
	}
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = k.Reveal()
	}
	s := newScrubber(u.prefix, u.baseStr, u.slots[0], vals...)
	s.slots = u.slots
	if len(keys) == len(u.keys) {
		u.scrub.Store(&keyedScrubber{keys: vals, s: s})
	}
	return s
}

// New validates cfg and returns a Proxy. Errors wrap ErrInvalidConfig and
// name the upstream and field, never a secret.
func New(cfg Config) (*Proxy, error) {
	if cfg.Secrets == nil {
		return nil, fmt.Errorf("%w: Secrets is required", ErrInvalidConfig)
	}
	versions, _ := cfg.Secrets.(keyVersions)
	p := &Proxy{
		ups:      make(map[string]*upstream, len(cfg.Upstreams)),
		secrets:  cfg.Secrets,
		log:      cfg.Logger,
		m:        cfg.Metrics,
		base:     cfg.Transport,
		now:      cfg.Now,
		versions: versions,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.m == nil {
		p.m = metrics.Discard()
	}
	if p.now == nil {
		p.now = time.Now
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
	if err := p.setupAccounts(names, cfg); err != nil {
		return nil, err
	}
	if p.base == nil {
		p.base = newTransport(maxTimeout, cfg.RootCAs)
	}
	p.flights.m = make(map[string]*flight)
	p.cache.init(p.now)
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

// setupAccounts gives upstreams that share a first secret (one vendor
// account) one budget and one cool-down. Budgets set on several of them
// must describe the same bucket; an upstream without a budget uses the
// account's, since the vendor counts its calls too.
func (p *Proxy) setupAccounts(names []string, cfg Config) error {
	type account struct {
		spec  config.Budget
		owner string
		b     Budget
		cool  atomic.Int64
	}
	accounts := map[string]*account{}
	for _, name := range names {
		u := p.ups[name]
		acc := accounts[u.account]
		if acc == nil {
			acc = &account{}
			accounts[u.account] = acc
		}
		spec := cfg.Upstreams[name].Budget
		switch {
		case spec.IsZero():
		case acc.owner == "":
			acc.spec, acc.owner = spec, name
		case !acc.spec.SameBucket(spec):
			return fmt.Errorf("%w: upstreams.%s.budget: upstreams %s and %s share the secret %s but set different budgets",
				ErrInvalidConfig, name, acc.owner, name, u.account)
		}
	}
	newBudget := cfg.Budgets
	if newBudget == nil {
		newBudget = func(b config.Budget) (Budget, error) { return NewMemoryBudget(b, p.now) }
	}
	for _, name := range names {
		u := p.ups[name]
		acc := accounts[u.account]
		u.cool = &acc.cool
		if acc.owner == "" {
			continue
		}
		if acc.b == nil {
			b, err := newBudget(acc.spec)
			if err != nil {
				return fmt.Errorf("%w: upstreams.%s.budget: %w", ErrInvalidConfig, acc.owner, err)
			}
			if b == nil {
				return fmt.Errorf("%w: upstreams.%s.budget: Budgets returned nil", ErrInvalidConfig, acc.owner)
			}
			acc.b = b
		}
		u.budget = acc.b
		u.queue = acc.spec.Queue.Std()
		if own := cfg.Upstreams[name].Budget; !own.IsZero() {
			u.queue = own.Queue.Std()
		}
	}
	return nil
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
	if c.Preset != "" && !slices.Contains(config.UpstreamPresets(), c.Preset) {
		return nil, bad("preset", "%q is not a known preset (%s)", c.Preset, strings.Join(config.UpstreamPresets(), ", "))
	}
	if len(c.Keys) > 0 && c.Key != (config.KeyRef{}) {
		return nil, bad("keys", "set key or keys, not both")
	}
	c = c.Resolved()
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
		timeout:  c.Timeout.Std(),
		maxBytes: c.MaxResponseBytes,
		headers:  make(http.Header, len(c.Headers)),
		coalesce: c.CoalesceEnabled(),
		cacheTTL: c.CacheTTL.Std(),
	}
	u.baseStr = base.Scheme + "://" + base.Host + u.basePath
	refs := c.KeyRefs()
	for i, k := range refs {
		field := "key"
		if len(refs) > 1 {
			field = fmt.Sprintf("keys[%d]", i)
		}
		if k.Secret == "" {
			return nil, bad(field+".secret", "required")
		}
		ks := keySlot{secret: k.Secret}
		ks.kind, ks.name = k.KeySlot()
		ks.nameEsc = url.QueryEscape(ks.name)
		switch {
		case ks.kind == "bearer":
		case ks.kind == "query" && ks.name != "" && !strings.ContainsAny(ks.name, " \t\r\n&=#?;%+") && validHeaderValue(ks.name):
		case ks.kind == "header" && validToken(ks.name) && !isHopByHop(ks.name) && ks.name != "Host" && ks.name != "Content-Length":
		default:
			return nil, bad(field+".placement", "%q is not query:<param>, header:<name> or bearer", k.Placement)
		}
		for _, prev := range u.keys {
			if prev.kind == "query" && ks.kind == "query" && strings.EqualFold(prev.name, ks.name) ||
				prev.kind != "query" && ks.kind != "query" && equalHeaderName(prev.name, ks.name) {
				return nil, bad(field+".placement", "%q is used by another key", k.Placement)
			}
		}
		u.keys = append(u.keys, ks)
		u.slots = append(u.slots, ks.name)
	}
	u.account = u.keys[0].secret
	for h, v := range c.Headers {
		ch := http.CanonicalHeaderKey(h)
		switch {
		case !validToken(h):
			return nil, bad("headers", "%q is not a valid header name", h)
		case !validHeaderValue(v):
			return nil, bad("headers", "%q has a value with CR, LF, NUL or another control character", h)
		case isHopByHop(ch) || ch == "Host" || ch == "Content-Length":
			return nil, bad("headers", "%q cannot be set per upstream", h)
		}
		for _, ks := range u.keys {
			if ks.kind != "query" && equalHeaderName(ch, ks.name) {
				return nil, bad("headers", "%q is where the key goes", h)
			}
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
	if u.cacheTTL < 0 {
		return nil, bad("cache_ttl", "must not be negative")
	}
	if b := c.Budget; !b.IsZero() && (len(b.Rate) == 0 || b.Queue < 0) {
		return nil, bad("budget", "needs a rate (N/duration) and a queue that is not negative")
	}
	if !c.ErrorInBody.IsZero() {
		rule, err := compileBodyErrorRule(c.ErrorInBody)
		if err != nil {
			return nil, bad("error_in_body", "%v", err)
		}
		u.errBody = rule
	}
	if len(c.Routes) == 0 {
		return nil, bad("routes", "at least one route is required")
	}
	for i, r := range c.Routes {
		cr := route{methods: r.Methods, cacheTTL: -1, maxBody: r.MaxBodyBytes}
		switch {
		case cr.maxBody < 0:
			return nil, bad(fmt.Sprintf("routes[%d].max_body_bytes", i), "must not be negative")
		case cr.maxBody == 0:
			cr.maxBody = DefaultMaxBodyBytes
		}
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
		if r.CacheTTL != nil {
			if cr.cacheTTL = r.CacheTTL.Std(); cr.cacheTTL < 0 {
				return nil, bad(fmt.Sprintf("routes[%d].cache_ttl", i), "must not be negative")
			}
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
	u        *upstream
	path     string // decoded, checked, matched
	query    string // client query without the key parameters
	keys     []secrets.Value
	scrub    *scrubber
	body     []byte // buffered request body, for a retry after 401/403
	noRetry  bool   // the body was too large to buffer
	cacheTTL time.Duration
	flight   *flight // set on the request that makes a shared vendor call
	shareKey string
	served   string // "cache" or "coalesced" when no vendor call was made for it

	reader     *scrubReader // response body, once there is one
	code       string       // error code answered, if any
	cause      error        // why, for the log
	clientGone bool
	attempts   int
	bodyError  int          // status a vendor reported inside a 200 body
	keyVersion string       // version ids of the keys used, "" when unversioned
	maxBody    int64        // request body limit
	bodyOver   *atomic.Bool // set when the request body went past maxBody (by the transport's writer)
}

func stateFrom(ctx context.Context) *state {
	st, _ := ctx.Value(stateKey{}).(*state)
	return st
}

// ServeHTTP handles the whole /api/ tree: it parses /api/{name}/{rest}
// from the escaped path, checks the path and method against the
// upstream's routes and forwards the request, or answers it from the
// cache or from an identical request already on its way to the vendor.
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
	rt, allow := findRoute(u.routes, r.Method, clean)
	if rt == nil {
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
	maxBody := bodyLimit(rt, r.Method)
	if hasBody(r) && (maxBody == 0 || r.ContentLength > maxBody) {
		p.refuse(w, r, name, "request body too large", bodyTooLarge(maxBody, r.Method))
		return
	}
	query, ok := filterQuery(r.URL.RawQuery, u.slots...)
	if !ok {
		p.refuse(w, r, name, "bad query", apierr.New(http.StatusBadRequest, "bad_request", "invalid query string"))
		return
	}
	keys, secret, err := p.keysFor(r.Context(), u)
	if err != nil {
		if r.Context().Err() != nil {
			return // client gone
		}
		p.log.LogAttrs(r.Context(), slog.LevelError, "upstream key unavailable",
			slog.String("upstream", u.name), slog.String("secret", secret), slog.String("err", err.Error()))
		apierr.Write(w, apierr.Wrap(err, http.StatusBadGateway, "upstream_config", "the upstream is not configured correctly"))
		return
	}
	st := &state{u: u, path: clean, query: query, keys: keys, scrub: u.scrubberFor(keys...), cacheTTL: u.cacheTTL}
	st.keyVersion = p.keyVersion(u)
	st.maxBody = maxBody
	if rt.cacheTTL >= 0 {
		st.cacheTTL = rt.cacheTTL
	}
	if key, ok := p.shareKey(r, st); ok {
		p.serveShared(w, r, st, key, start)
		return
	}
	p.forward(w, r, r.Context(), st, start)
}

// keysFor reads the upstream's secrets; on failure it names the secret.
func (p *Proxy) keysFor(ctx context.Context, u *upstream) ([]secrets.Value, string, error) {
	keys := make([]secrets.Value, len(u.keys))
	for i, ks := range u.keys {
		k, err := p.secrets.Get(ctx, ks.secret)
		if err == nil && !validHeaderValue(k.Reveal()) {
			err = errBadKey
		}
		if err != nil {
			return nil, ks.secret, err
		}
		keys[i] = k
	}
	return keys, "", nil
}

// keyVersion returns the version ids of u's secrets as the cache holds
// them now, comma-separated in key order ("" for a secret without one),
// or "" when none has a version.
func (p *Proxy) keyVersion(u *upstream) string {
	if p.versions == nil {
		return ""
	}
	var ids []string
	found := false
	for _, ks := range u.keys {
		v, ok := p.versions.Version(ks.secret)
		if ok && v.ID != "" {
			found = true
		}
		ids = append(ids, v.ID)
	}
	if !found {
		return ""
	}
	return strings.Join(ids, ",")
}

// forward sends the request to the vendor. base is the context of the
// vendor call: the request's own, or one that outlives it while other
// requests wait for the same answer.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, base context.Context, st *state, start time.Time) {
	r2 := *r
	if hasBody(r) {
		st.bodyOver = new(atomic.Bool)
		r2.Body = &limitedBody{rc: r.Body, left: st.maxBody, over: st.bodyOver}
	}
	if err := st.bufferBody(&r2); err != nil {
		if errors.Is(err, errBodyTooLarge) {
			p.refuse(w, r, st.u.name, "request body too large", bodyTooLarge(st.maxBody, r.Method))
			return
		}
		if r.Context().Err() == nil {
			p.refuse(w, r, st.u.name, "unreadable body", apierr.New(http.StatusBadRequest, "bad_request", "could not read the request body"))
		}
		return
	}
	ctx, cancel := context.WithTimeoutCause(base, st.u.timeout, errUpstreamTimeout)
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
	if st.served != "" {
		attrs = append(attrs, slog.String("served", st.served))
	}
	if st.keyVersion != "" {
		attrs = append(attrs, slog.String("key_version", st.keyVersion))
	}
	if st.bodyError != 0 {
		attrs = append(attrs, slog.Int("status_in_body", st.bodyError))
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
