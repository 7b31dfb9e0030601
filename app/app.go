// Package app assembles tickgate: it builds the Echo instance, the
// middleware order and the routes from a configuration. It is what
// cmd/tickgate serves and what end-to-end tests start.
//
// # Middleware order
//
// Outermost first: request id, panic recovery, access log and metrics
// (observe); security headers; client address (guard); then Echo routes.
// Every route but the health checks passes the guard's network rules
// (global, per route, per feed: 403 before authentication) and is rate
// limited per client IP; the session middleware loads the cookie's
// session; /api and /ws require one and are rate limited per session;
// the guard.routes limit of the path applies next; state-changing
// requests need X-CSRF: 1. Logins are throttled per IP and per username
// (successful ones refunded), and a WebSocket upgrade passes the guard's
// per-address admission before the relay serves it.
package app

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tickgate/tickgate/apierr"
	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/guard"
	"github.com/tickgate/tickgate/metrics"
	"github.com/tickgate/tickgate/proxy"
	"github.com/tickgate/tickgate/relay"
	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/oidc"
)

// Config is everything App needs; cmd/tickgate builds it from the
// environment.
type Config struct {
	Settings config.Settings
	File     config.File
	Secrets  *secrets.Cache
	Users    *session.Users
	Store    session.Store
	// SessionEvents tell the replicas sharing Store when a session ends
	// (the Redis store); nil for one process. Close the App before them.
	SessionEvents session.Events
	Logger        *slog.Logger
	// Registry is served on the admin listener; nil creates a fresh one.
	Registry *prometheus.Registry
	// Metrics are the collectors registered on Registry; nil registers
	// new ones there.
	Metrics *metrics.Metrics
	// SessionCheckInterval overrides how often watched sessions are checked
	// for expiry (tests shorten it).
	SessionCheckInterval time.Duration
	// LimitStores makes the buckets of every rate limit: nil keeps them
	// in this process; cmd/tickgate passes the Redis backend's Store
	// (TICKGATE_LIMIT_STORE=redis) so that replicas share limits.
	LimitStores guard.StoreFactory
	// GeoReload is how often the guard.geo database file is checked for
	// a new version (default guard.DefaultGeoReload; negative: never).
	GeoReload time.Duration
	// NewOIDC, when set, builds the OpenID Connect login (GET
	// /auth/oidc/login and /auth/oidc/callback; see oidc.go); the App
	// closes it.
	NewOIDC NewOIDCFunc
	// Budgets makes the vendor budgets (proxy.Config.Budgets): nil keeps
	// them in this process; cmd/tickgate passes the Redis backend's
	// (TICKGATE_LIMIT_STORE=redis) so that replicas sharing a vendor key
	// spend one budget.
	Budgets func(config.Budget) (proxy.Budget, error)
	// UpstreamCAs verifies vendor certificates (REST and WebSocket):
	// the system roots plus TICKGATE_UPSTREAM_CA_FILE. Nil: system roots.
	UpstreamCAs *x509.CertPool
	// FeedSharing, when set, shares each feed's upstream connection with
	// the other replicas through Redis (relay.Sharing); cmd/tickgate sets
	// it with TICKGATE_SESSION_STORE=redis. nil: this process connects on
	// its own.
	FeedSharing *relay.Sharing
}

// App is a configured tickgate.
type App struct {
	cfg      Config
	log      *slog.Logger
	reg      *prometheus.Registry
	metrics  *metrics.Metrics
	ips      *guard.IPResolver
	sessions *session.Manager
	proxy    *proxy.Proxy
	relay    *relay.Relay
	guard    *guard.Guard
	loginLim *guard.LoginLimiter
	oidc     *oidc.Login
	handler  http.Handler
	draining chan struct{}
}

// New builds the application. It does not listen; see Handler.
func New(cfg Config) (*App, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Secrets == nil || cfg.Store == nil || cfg.Users == nil {
		return nil, errors.New("app: Secrets, Store and Users are required")
	}
	a := &App{cfg: cfg, log: cfg.Logger, reg: cfg.Registry, draining: make(chan struct{})}
	a.metrics = cfg.Metrics
	if a.metrics == nil {
		a.metrics = metrics.New(cfg.Registry)
	}
	for name := range cfg.File.Feeds {
		a.metrics.InitFeeds(name)
	}
	for name := range cfg.File.Upstreams {
		a.metrics.InitUpstreams(name)
	}
	a.ips = guard.NewIPResolver(cfg.Settings.TrustedProxies)
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()

	ipLimit := cfg.Settings.LimitIP
	if len(cfg.File.Limits.IP) > 0 {
		ipLimit = cfg.File.Limits.IP
	}
	sessLimit := cfg.Settings.LimitSession
	if len(cfg.File.Limits.Session) > 0 {
		sessLimit = cfg.File.Limits.Session
	}
	// One guard holds every limiter, on the configured stores, and the
	// network rules; closing it closes them.
	g, err := newGuard(cfg, a)
	if err != nil {
		return nil, err
	}
	a.guard = g
	ipLim, err := g.Limiter("ip", ipLimit)
	if err != nil {
		return nil, fmt.Errorf("limits.ip: %w", err)
	}
	sessLim, err := g.Limiter("session", sessLimit)
	if err != nil {
		return nil, fmt.Errorf("limits.session: %w", err)
	}
	loginLim, err := g.LoginLimiter(cfg.Settings.LimitLogin)
	if err != nil {
		return nil, fmt.Errorf("TICKGATE_LIMIT_LOGIN: %w", err)
	}
	a.loginLim = loginLim

	a.sessions, err = session.NewManager(session.Config{
		Store:          cfg.Store,
		Events:         cfg.SessionEvents,
		Users:          cfg.Users,
		Idle:           cfg.Settings.SessionIdle,
		Max:            cfg.Settings.SessionMax,
		Secure:         a.ips.IsHTTPS,
		ClientIP:       a.ips.ClientIPString,
		LoginLimiter:   loginLim,
		AuthorizeLogin: a.authorizeLogin,
		AllowedOrigins: cfg.Settings.PublicOrigins,
		CheckInterval:  cfg.SessionCheckInterval,
		Logger:         a.log,
		Metrics:        a.metrics,
	})
	if err != nil {
		return nil, err
	}
	if err := a.setupOIDC(); err != nil {
		return nil, err
	}
	a.proxy, err = proxy.New(proxy.Config{
		Upstreams: cfg.File.Upstreams,
		Secrets:   cfg.Secrets,
		Logger:    a.log,
		Metrics:   a.metrics,
		Budgets:   cfg.Budgets,
		RootCAs:   cfg.UpstreamCAs,
	})
	if err != nil {
		return nil, err
	}
	a.relay, err = relay.New(relay.Config{
		Feeds:          cfg.File.Feeds,
		Secrets:        cfg.Secrets,
		Sessions:       a.sessions,
		AllowedOrigins: cfg.Settings.PublicOrigins,
		MaxSymbols:     cfg.Settings.WSMaxSymbols,
		MaxConns:       cfg.Settings.WSMaxConns,
		Access:         a.feedAccess,
		AllowNoOrigin:  fromTicket,
		Logger:         a.log,
		Metrics:        a.metrics,
		RootCAs:        cfg.UpstreamCAs,
		Sharing:        cfg.FeedSharing,
	})
	if err != nil {
		return nil, err
	}

	perIP := a.limit(ipLim, "ip", clientIPKey)
	perSession := a.limit(sessLim, "session", sessionKey)
	perRoute := a.routeLimit
	loadSession := echo.WrapMiddleware(func(next http.Handler) http.Handler { return a.sessions.Middleware(noteUser(next)) })
	requireSession := echo.WrapMiddleware(a.sessions.Require)
	csrf := echo.WrapMiddleware(a.sessions.RequireCSRF)

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = a.errorHandler
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if ri := infoFrom(c.Request().Context()); ri != nil {
				ri.route = c.Path()
			}
			return next(c)
		}
	})
	// Network rules (global, route, feed) come before everything else
	// but the route pattern above, which the access log and metrics use.
	e.Use(a.network)

	// Fixed routes take every method and answer 405 themselves, so the
	// catch-all page route cannot turn a wrong method into a 404.
	e.Any("/healthz", onlyGet(func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}))
	e.Any("/readyz", onlyGet(a.readyz))

	auth := e.Group("/auth", perIP, loadSession, perRoute)
	auth.Any("/login", echo.WrapHandler(http.HandlerFunc(a.sessions.Login)), a.loginLimits, csrf)
	auth.Any("/session", echo.WrapHandler(http.HandlerFunc(a.sessions.Info)), a.requireUserNetwork)
	auth.Any("/ws-ticket", a.issueTicket, requireSession, a.requireUserNetwork, perSession, csrf)
	auth.Any("/logout", echo.WrapHandler(http.HandlerFunc(a.sessions.Logout)), csrf)
	a.oidcRoutes(auth)

	api := echo.WrapHandler(a.proxy)
	e.Any("/api/:upstream/*", api, perIP, loadSession, requireSession, a.requireUserNetwork, a.requireRouteRoles, perSession, perRoute, csrf)
	e.Any("/api/:upstream", api, perIP, loadSession, requireSession, a.requireUserNetwork, a.requireRouteRoles, perSession, perRoute, csrf)
	e.Any("/ws/:feed", onlyGet(echo.WrapHandler(a.relay)), perIP, loadSession, a.redeemTicket, requireSession, a.requireUserNetwork, a.requireFeedRoles, perSession, perRoute, a.admitWS)

	// App-owned routes: example_watchlist.go shows how to write one
	// (README "Add your own route").
	appRoutes := e.Group("/app", perIP, loadSession, requireSession, a.requireUserNetwork, perSession, perRoute, csrf)
	if err := a.registerWatchlist(appRoutes); err != nil {
		return nil, fmt.Errorf("app routes: %w", err)
	}

	// The demo page is the catch-all; Any keeps its 405 answers JSON.
	e.Any("/*", echo.WrapHandler(a.page()), perIP, perRoute)

	a.handler = observe(a.log, a.metrics, a.ips, trustedPeers(cfg.Settings.TrustedProxies),
		newAnomalyWatch(cfg.Settings.Anomaly, a.log, a.metrics, time.Now),
		securityHeaders(cfg.Settings.PublicOrigins, a.ips.IsHTTPS,
			deadlines(
				requireHTTPS(a.ips, cfg.Settings.PublicOrigins,
					a.ips.Middleware(e)))))
	ok = true
	return a, nil
}

// Handler is the public HTTP handler.
func (a *App) Handler() http.Handler { return a.handler }

// AdminHandler serves /metrics and the pprof profiles under
// /debug/pprof/ (and is what TICKGATE_ADMIN_ADDR listens with). It must
// never be exposed on the public listener.
func (a *App) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// Drain makes /readyz answer 503 so load balancers stop sending traffic.
func (a *App) Drain() {
	select {
	case <-a.draining:
	default:
		close(a.draining)
	}
}

// CloseStreams closes every browser WebSocket with 1001 and the upstream
// connections. Call it after the HTTP server stopped accepting.
func (a *App) CloseStreams() {
	if a.relay != nil {
		a.relay.Close()
	}
}

// Close releases everything New created. Safe twice.
func (a *App) Close() {
	a.CloseStreams()
	if a.proxy != nil {
		a.proxy.Close()
	}
	a.closeOIDC()
	if a.sessions != nil {
		a.sessions.Close()
	}
	if a.guard != nil {
		a.guard.Close()
	}
}

func (a *App) readyz(c echo.Context) error {
	w := c.Response()
	select {
	case <-a.draining:
		apierr.Respond(w, http.StatusServiceUnavailable, "not_ready", "shutting down")
		return nil
	default:
	}
	if names := a.cfg.File.SecretNames(); !a.cfg.Secrets.Loaded(names...) {
		apierr.Respond(w, http.StatusServiceUnavailable, "not_ready", "secrets not loaded")
		return nil
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := a.sessions.Ready(ctx); err != nil {
		a.log.Warn("readiness: session store not answering", "err", err)
		apierr.Respond(w, http.StatusServiceUnavailable, "not_ready", "session store not answering")
		return nil
	}
	body := map[string]any{"status": "ready"}
	if warnings := a.keyAgeWarnings(); len(warnings) > 0 {
		body["warnings"] = warnings
	}
	return c.JSON(http.StatusOK, body)
}

// keyAgeWarnings names the vendor keys past or near their maximum age
// (TICKGATE_SECRET_MAX_AGE). Still ready: an old key works, it only
// should be rotated. Version ids stay in the log, off this public route.
func (a *App) keyAgeWarnings() []string {
	var out []string
	for _, k := range a.cfg.Secrets.Ages(secrets.AgePolicy{Max: a.cfg.Settings.SecretMaxAge}) {
		switch k.State {
		case secrets.AgeExpired:
			out = append(out, fmt.Sprintf("vendor key %s is %d days old, past the maximum of %d; rotate it", k.Name, int(k.Age.Hours()/24), int(a.cfg.Settings.SecretMaxAge.Hours()/24)))
		case secrets.AgeExpiring:
			out = append(out, fmt.Sprintf("vendor key %s is %d days old, near the maximum of %d; rotate it", k.Name, int(k.Age.Hours()/24), int(a.cfg.Settings.SecretMaxAge.Hours()/24)))
		}
	}
	return out
}

// onlyGet answers 405 for methods other than GET and HEAD.
func onlyGet(h echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if m := c.Request().Method; m != http.MethodGet && m != http.MethodHead {
			c.Response().Header().Set("Allow", "GET, HEAD")
			apierr.Respond(c.Response(), http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
			return nil
		}
		return h(c)
	}
}

// errorHandler turns Echo's own errors (unknown route, wrong method) into
// contract JSON bodies.
func (a *App) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			apierr.Respond(c.Response(), http.StatusNotFound, "not_found", "no such route")
		case http.StatusMethodNotAllowed:
			apierr.Respond(c.Response(), http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
		default:
			msg := strings.ToLower(http.StatusText(he.Code))
			apierr.Respond(c.Response(), he.Code, strings.ReplaceAll(msg, " ", "_"), msg)
		}
		return
	}
	a.log.Error("handler error", "request_id", RequestID(c.Request().Context()), "err", err)
	apierr.Write(c.Response(), err)
}
