package guard

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tickgate/tickgate/apierr"
	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/metrics"
)

// Config configures New. Only Rules comes from the YAML file; every zero
// value is a safe default.
type Config struct {
	// Rules is the guard section of the configuration file.
	Rules config.Guard
	// Resolver finds client addresses when the request context has none
	// from IPResolver.Middleware (default: trust no proxy).
	Resolver *IPResolver
	// Stores makes the stores of every limiter the Guard builds (route,
	// WebSocket, and those from Limiter and LoginLimiter); nil means
	// MemoryStore.
	Stores StoreFactory
	// Logger receives denials (audit) and store outages (default:
	// discarded).
	Logger *slog.Logger
	// Metrics counts rate-limit rejections (scope route:<pattern>,
	// ws_connect, ws_conns_ip); nil counts nothing.
	Metrics *metrics.Metrics
	// Denials counts network denials; labels: scope (global, route,
	// feed), reason (forbidden_network, forbidden_country). Nil counts
	// nothing.
	Denials CounterVec
	// StoreErrors counts requests decided by a failure policy; labels:
	// limiter, policy. Nil counts nothing.
	StoreErrors CounterVec
	// Exempt are exact paths the network rules never refuse, e.g.
	// /healthz and /readyz, which load balancers probe from their own
	// addresses. A path spelled with escapes is never exempt.
	Exempt []string
	// FeedOf names the feed a request opens, "" for none (default: the
	// {feed} of /ws/{feed}).
	FeedOf func(*http.Request) string
	// GeoReload is how often the geo database file is checked for a new
	// version (default DefaultGeoReload; negative: never).
	GeoReload time.Duration
	// RetryStoreAfter is passed to every limiter (see LimiterOptions).
	RetryStoreAfter time.Duration
}

// Guard applies the guard section of the configuration: global, per-route
// and per-feed network rules, per-route limits, WebSocket limits per
// address, and the failure policies of the limiters it builds. Create it
// with New; Close it after the server stopped.
type Guard struct {
	cfg       Config
	log       *slog.Logger
	denials   CounterVec
	geo       *GeoDB
	global    *Policy
	routes    []*route // most specific first
	feeds     map[string]*Policy
	exempt    map[string]bool
	ws        *WSGuard
	defPolicy FailurePolicy
	loginPol  FailurePolicy
	closers   []interface{ Close() }
}

type route struct {
	pattern   string
	base      string // pattern without "*"
	prefix    bool
	score     int
	rules     *Policy
	limiter   *Limiter
	scope     string // "route:" + pattern
	bySession bool
}

func (rt *route) matches(path string) bool {
	if !rt.prefix {
		return path == rt.pattern
	}
	return strings.HasPrefix(path, rt.base) || path+"/" == rt.base
}

// New compiles cfg.Rules, opens the geo database when a rule needs it,
// and builds the route and WebSocket limiters. Errors name the setting
// at fault.
func New(cfg Config) (_ *Guard, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Resolver == nil {
		cfg.Resolver = NewIPResolver(nil)
	}
	if cfg.FeedOf == nil {
		cfg.FeedOf = feedFromPath
	}
	if cfg.Stores == nil {
		cfg.Stores = MemoryStore
	}
	r := cfg.Rules
	g := &Guard{
		cfg:     cfg,
		log:     cfg.Logger,
		denials: counterOrNil(cfg.Denials),
		feeds:   map[string]*Policy{},
		exempt:  map[string]bool{},
	}
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	for _, p := range cfg.Exempt {
		g.exempt[p] = true
	}
	if g.defPolicy, err = policyOf(r.RedisFailure.Default, FailOpen, "guard.redis_failure.default"); err != nil {
		return nil, err
	}
	if g.loginPol, err = policyOf(r.RedisFailure.Login, FailClosed, "guard.redis_failure.login"); err != nil {
		return nil, err
	}
	if r.UsesGeo() {
		if strings.TrimSpace(r.Geo.Database) == "" {
			return nil, fmt.Errorf("%w: guard.geo.database: needed by the country rules", ErrInvalidConfig)
		}
		g.geo, err = OpenGeoDB(r.Geo.Database, GeoOptions{Reload: cfg.GeoReload, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("guard.geo.database: %w", err)
		}
		g.closers = append(g.closers, g.geo)
	}
	g.global, err = NewPolicy(config.NetworkRules{
		Allow: r.Allow, Deny: r.Deny,
		AllowCountries: r.Geo.AllowCountries, DenyCountries: r.Geo.DenyCountries,
	}, g.geo)
	if err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	for pattern, rr := range r.Routes {
		if !config.ValidRoutePattern(pattern) {
			return nil, fmt.Errorf("%w: guard.routes.%s: not a route pattern", ErrInvalidConfig, pattern)
		}
		rt := &route{pattern: pattern, base: strings.TrimSuffix(pattern, "*"), scope: "route:" + pattern}
		rt.prefix = rt.base != pattern
		rt.score = 2 * len(strings.TrimSuffix(rt.base, "/"))
		if !rt.prefix {
			rt.score++
		}
		if rt.rules, err = NewPolicy(rr.NetworkRules, g.geo); err != nil {
			return nil, fmt.Errorf("guard.routes.%s: %w", pattern, err)
		}
		if len(rr.Limit) > 0 {
			switch rr.By {
			case "", "ip":
			case "session":
				rt.bySession = true
			default:
				return nil, fmt.Errorf("%w: guard.routes.%s.by: %q is not ip or session", ErrInvalidConfig, pattern, rr.By)
			}
			pol, err := policyOf(rr.RedisFailure, g.defPolicy, "guard.routes."+pattern+".redis_failure")
			if err != nil {
				return nil, err
			}
			if rt.limiter, err = g.newLimiter("route:"+pattern, rr.Limit, pol); err != nil {
				return nil, fmt.Errorf("guard.routes.%s.limit: %w", pattern, err)
			}
		}
		g.routes = append(g.routes, rt)
	}
	sort.Slice(g.routes, func(i, j int) bool { return g.routes[i].score > g.routes[j].score })
	for name, rules := range r.Feeds {
		if g.feeds[name], err = NewPolicy(rules, g.geo); err != nil {
			return nil, fmt.Errorf("guard.feeds.%s: %w", name, err)
		}
	}
	connects := r.WS.ConnectsPerIP
	if len(connects) == 0 {
		connects, _ = config.ParseLimit(config.DefaultWSConnectsPerIP)
	}
	conns := r.WS.ConnsPerIP
	if conns == 0 {
		conns = config.DefaultWSConnsPerIP
	}
	g.ws, err = NewWSGuard(connects, conns, g.limiterOptions("ws_connect", g.defPolicy), cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("guard.ws.connects_per_ip: %w", err)
	}
	g.closers = append(g.closers, g.ws)
	return g, nil
}

func policyOf(s string, def FailurePolicy, setting string) (FailurePolicy, error) {
	p, err := ParseFailurePolicy(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", setting, err)
	}
	if p == PolicyDefault {
		p = def
	}
	return p, nil
}

func (g *Guard) limiterOptions(name string, pol FailurePolicy) LimiterOptions {
	return LimiterOptions{
		Name:            name,
		Stores:          g.cfg.Stores,
		OnStoreError:    pol,
		RetryStoreAfter: g.cfg.RetryStoreAfter,
		Logger:          g.log,
		StoreErrors:     g.cfg.StoreErrors,
	}
}

func (g *Guard) newLimiter(name string, l config.Limit, pol FailurePolicy) (*Limiter, error) {
	lim, err := NewLimiterWith(l, g.limiterOptions(name, pol))
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, lim)
	return lim, nil
}

// Limiter builds a request limiter named name ("ip", "session") on the
// Guard's stores with guard.redis_failure.default. Guard.Close closes it.
func (g *Guard) Limiter(name string, l config.Limit) (*Limiter, error) {
	return g.newLimiter(name, l, g.defPolicy)
}

// LoginLimiter builds the login limiter on the Guard's stores with
// guard.redis_failure.login (closed unless set). Guard.Close closes it.
func (g *Guard) LoginLimiter(l config.Limit) (*LoginLimiter, error) {
	ll, err := NewLoginLimiterWith(l, g.limiterOptions("login", g.loginPol))
	if err != nil {
		return nil, err
	}
	g.closers = append(g.closers, ll)
	return ll, nil
}

// WS returns the WebSocket guard (guard.ws).
func (g *Guard) WS() *WSGuard { return g.ws }

// route returns the most specific route matching path for which sets
// is true, or nil. Rules and limits are chosen separately, so a limit on
// a sub-path does not drop the network rules of the pattern above it,
// nor network rules on a sub-path its limit.
func (g *Guard) route(path string, sets func(*route) bool) *route {
	for _, rt := range g.routes {
		if sets(rt) && rt.matches(path) {
			return rt
		}
	}
	return nil
}

func hasRules(rt *route) bool { return !rt.rules.Empty() }
func hasLimit(rt *route) bool { return rt.limiter != nil }

// Network is middleware that refuses, with 403 forbidden_network or
// forbidden_country, a client the global rules, the rules of the most
// specific matching route that sets network rules, or the opened feed's
// rules do not allow. Put it right after
// IPResolver.Middleware, before sessions: a refused client never reaches
// authentication. Paths in Config.Exempt pass.
func (g *Guard) Network(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.Admit(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// Admit is Network for one request: it reports whether r may proceed,
// and when it may not, it has answered 403, logged and counted the
// denial.
func (g *Guard) Admit(w http.ResponseWriter, r *http.Request) bool {
	// Exempt under its own spelling only: "/health%7A" decodes to
	// /healthz, but a router matching the escaped path sends it
	// elsewhere.
	if r.URL.RawPath == "" && g.exempt[r.URL.Path] {
		return true
	}
	addr := ClientIPFrom(r.Context())
	if !addr.IsValid() {
		addr = g.cfg.Resolver.ClientIP(r)
	}
	if d := g.global.Check(addr); !d.Allowed {
		g.deny(w, r, addr, "global", d)
		return false
	}
	if rt := g.route(r.URL.Path, hasRules); rt != nil {
		if d := rt.rules.Check(addr); !d.Allowed {
			g.deny(w, r, addr, "route", d)
			return false
		}
	}
	if len(g.feeds) > 0 {
		if p := g.feeds[g.cfg.FeedOf(r)]; p != nil {
			if d := p.Check(addr); !d.Allowed {
				g.deny(w, r, addr, "feed", d)
				return false
			}
		}
	}
	return true
}

var denialMessages = map[string]string{
	CodeForbiddenNetwork: "access from this network is not allowed",
	CodeForbiddenCountry: "access from this country is not allowed",
}

func (g *Guard) deny(w http.ResponseWriter, r *http.Request, addr netip.Addr, scope string, d Decision) {
	if g.denials != nil {
		g.denials.WithLabelValues(scope, d.Code).Inc()
	}
	g.log.Warn("request denied by network rules", "audit", true, "client_ip", addr.String(),
		"reason", d.Code, "rule", d.Rule, "country", d.Country, "scope", scope, "method", logText(r.Method, 16), "path", logText(r.URL.Path, maxLoggedPath))
	apierr.Respond(w, http.StatusForbidden, d.Code, denialMessages[d.Code])
}

// RouteLimits is middleware applying the limit of the most specific
// guard.routes pattern that matches the request and sets a limit (none:
// it passes). Routes
// limited by session take the bucket from sessionKey, falling back to the
// client address when it returns ""; put RouteLimits after the session is
// loaded. Refusals are 429 rate_limited with the contract's headers,
// counted under scope route:<pattern>.
func (g *Guard) RouteLimits(sessionKey KeyFunc) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sess := ""
			if sessionKey != nil {
				sess = sessionKey(r)
			}
			if l, scope, key := g.RouteLimit(r, sess); l != nil && !Enforce(w, r, l, scope, key, g.cfg.Metrics, g.log) {
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RouteLimit returns the limiter of the most specific guard.routes
// pattern that matches r's path and sets a limit, the scope to count it under
// (route:<pattern>) and the bucket key for Enforce; l is nil when no
// route limit applies. A route limited by session uses sessionKey, or the
// client address when sessionKey is "" (no session).
func (g *Guard) RouteLimit(r *http.Request, sessionKey string) (l *Limiter, scope, key string) {
	rt := g.route(r.URL.Path, hasLimit)
	if rt == nil {
		return nil, "", ""
	}
	if rt.bySession && sessionKey != "" {
		return rt.limiter, rt.scope, "s:" + sessionKey
	}
	return rt.limiter, rt.scope, g.ipKey(r)
}

// Limited reports whether any guard.routes pattern sets a limit.
func (g *Guard) Limited() bool {
	for _, rt := range g.routes {
		if rt.limiter != nil {
			return true
		}
	}
	return false
}

func (g *Guard) ipKey(r *http.Request) string {
	addr := ClientIPFrom(r.Context())
	if !addr.IsValid() {
		addr = g.cfg.Resolver.ClientIP(r)
	}
	return "ip:" + LimitKey(addr)
}

// maxLoggedPath bounds the request path in denial and rate-limit log
// lines: the path is the client's choice, and a refused flood must not
// write 64 KiB lines.
const maxLoggedPath = 256

// logText is s cut to at most n bytes (on a rune boundary), marked with
// "..." when cut.
func logText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// feedFromPath is the {feed} of the contract's /ws/{feed}.
func feedFromPath(r *http.Request) string {
	name, ok := strings.CutPrefix(r.URL.Path, "/ws/")
	if !ok || strings.Contains(name, "/") {
		return ""
	}
	return name
}

// Close closes the limiters the Guard built and stops watching the geo
// database. Safe twice.
func (g *Guard) Close() {
	for i := len(g.closers) - 1; i >= 0; i-- {
		g.closers[i].Close()
	}
	g.closers = nil
}
