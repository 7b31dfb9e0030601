package app

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/tickgate/tickgate/apierr"
	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/guard"
	"github.com/tickgate/tickgate/session"
)

// The guard's part of the middleware chain, as Echo middleware: the
// network rules of every route, the per-IP, per-session and per-route
// limits, login throttling and WebSocket admission. They call guard's
// net/http-level functions directly rather than through
// echo.WrapMiddleware, which would rebuild the handler chain on every
// request.

// newGuard builds the guard of cfg: the guard section of the file, the
// trusted proxies of the settings, and the limit stores (memory unless
// cfg.LimitStores says otherwise).
func newGuard(cfg Config, a *App) (*guard.Guard, error) {
	return guard.New(guard.Config{
		Rules:       cfg.File.Guard,
		Resolver:    a.ips,
		Stores:      cfg.LimitStores,
		Logger:      a.log,
		Metrics:     a.metrics,
		Denials:     a.metrics.GuardDenials,
		StoreErrors: a.metrics.RateLimitStoreErrs,
		// Load balancers probe these from their own addresses.
		Exempt:    []string{"/healthz", "/readyz"},
		GeoReload: cfg.GeoReload,
	})
}

// network refuses, with 403 forbidden_network or forbidden_country, a
// client the global, route or feed rules exclude, before anything else
// (sessions included) looks at the request.
//
// A /ws/{feed} path spelled with escapes ("/ws/de%6Do", "/ws/x%2Fdemo")
// is answered 404 here: the router matches the escaped path while the
// relay and the feed rules read the decoded one, and the two must name
// the same feed.
func (a *App) network(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Path() == "/ws/:feed" && c.Request().URL.Path != "/ws/"+c.Param("feed") {
			apierr.Respond(c.Response(), http.StatusNotFound, "not_found", "unknown feed")
			return nil
		}
		if !a.guard.Admit(c.Response(), c.Request()) {
			return nil
		}
		return next(c)
	}
}

// limit takes one token from l for the request's key(r) bucket; "" skips.
func (a *App) limit(l *guard.Limiter, scope string, key guard.KeyFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if k := key(r); k != "" && !guard.Enforce(c.Response(), r, l, scope, k, a.metrics, a.log) {
				return nil
			}
			return next(c)
		}
	}
}

// routeLimit applies the guard.routes limit matching the request, by
// session or by address; it runs after the session is loaded.
func (a *App) routeLimit(next echo.HandlerFunc) echo.HandlerFunc {
	if !a.guard.Limited() {
		return next
	}
	return func(c echo.Context) error {
		r := c.Request()
		if l, scope, key := a.guard.RouteLimit(r, sessionKey(r)); l != nil && !guard.Enforce(c.Response(), r, l, scope, key, a.metrics, a.log) {
			return nil
		}
		return next(c)
	}
}

func clientIPKey(r *http.Request) string { return guard.LimitKey(guard.ClientIPFrom(r.Context())) }

func sessionKey(r *http.Request) string {
	if s, ok := session.FromContext(r.Context()); ok {
		return s.Key
	}
	return ""
}

// loginLimits lets the login limiter describe the login's answer: a 429
// from it carries its X-RateLimit-* headers rather than the per-IP
// limit's, and an allowed attempt shows them when it is the tighter
// limit. A successful login is refunded: only failed attempts count.
func (a *App) loginLimits(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, att := guard.WithLoginAttempt(c.Request().Context())
		c.SetRequest(c.Request().WithContext(ctx))
		resp := c.Response()
		resp.Before(func() {
			h := resp.Header()
			res, ok := att.Result()
			if ok && res.Allowed && resp.Status == http.StatusOK {
				// Refunded below: the attempt did not count.
				res.Remaining = min(res.Remaining+1, res.Limit)
			}
			switch {
			case ok && (!res.Allowed || guard.Tighter(h, res.Remaining)):
				res.SetHeaders(h, time.Now())
			case !ok && resp.Status == http.StatusTooManyRequests:
				// Refused because the login store cannot answer: the
				// per-IP figures would say attempts remain.
				for _, name := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
					h.Del(name)
				}
			}
		})
		err := next(c)
		if resp.Status == http.StatusOK {
			// Not the request's context: the browser may hang up
			// right after the answer, and the refund must still land.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if rerr := a.loginLim.Refund(rctx, att); rerr != nil {
				a.log.Warn("login limiter: refund of a successful login failed", "request_id", RequestID(ctx), "err", rerr)
			}
			cancel()
		}
		return err
	}
}

// admitWS applies guard.ws to a WebSocket upgrade that the relay would
// accept (a session, an allowed Origin, a known feed, a real handshake):
// new connections per address per window and open connections per
// address. A refused upgrade is accepted and closed at once with 4008
// (1013 while a fail-closed limit cannot reach its store), because a
// browser cannot read the status of a refused handshake but can read a
// close code. Everything else is left to the relay's own answers, so an
// unauthenticated or cross-site request is never upgraded here.
func (a *App) admitWS(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if _, ok := session.FromContext(r.Context()); !ok || r.Method != http.MethodGet || !wsHandshake(r) {
			return next(c)
		}
		if _, ok := a.cfg.File.Feeds[c.Param("feed")]; !ok {
			return next(c)
		}
		origin, ok := a.allowedOrigin(r)
		if !ok {
			return next(c)
		}
		addr := guard.ClientIPFrom(r.Context())
		release, err := a.guard.WS().Admit(r.Context(), addr)
		if err != nil {
			a.refuseWS(c, origin, err)
			return nil
		}
		defer release()
		return next(c)
	}
}

// wsHandshake is the relay's test for a WebSocket handshake: an Upgrade
// header naming websocket on any of its lines. The Connection header is
// left to the WebSocket library, which reads all of its lines; reading
// only the first here would let "Connection: keep-alive" followed by
// "Connection: Upgrade" skip admission and still be upgraded.
func wsHandshake(r *http.Request) bool {
	for _, v := range r.Header.Values("Upgrade") {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "websocket") {
				return true
			}
		}
	}
	return false
}

// allowedOrigin returns the request's one Origin, normalised, when it is
// one of the public origins (the relay's rule).
func (a *App) allowedOrigin(r *http.Request) (string, bool) {
	vals := r.Header.Values("Origin")
	if len(vals) != 1 {
		return "", false
	}
	o, err := config.NormalizeOrigin(vals[0])
	if err != nil {
		return "", false
	}
	for _, allowed := range a.cfg.Settings.PublicOrigins {
		if n, err := config.NormalizeOrigin(allowed); err == nil && n == o {
			return o, true
		}
	}
	return "", false
}

// refuseWS upgrades and closes with the close code for err. origin has
// been checked against the public origins.
func (a *App) refuseWS(c echo.Context, origin string, err error) {
	code, reason := websocket.StatusCode(4008), "too many connections"
	switch {
	case errors.Is(err, guard.ErrStoreUnavailable):
		code, reason = websocket.StatusTryAgainLater, "connection limits cannot be checked now"
		a.log.Warn("ws refused: connection limit store unavailable", "client_ip", guard.ClientIPFrom(c.Request().Context()).String())
	case errors.Is(err, guard.ErrTooManyConnects), errors.Is(err, guard.ErrTooManyConns):
	default:
		return // ctx ended: the client went away
	}
	conn, aerr := websocket.Accept(c.Response(), c.Request(), &websocket.AcceptOptions{
		OriginPatterns: []string{originPattern(origin)},
	})
	if aerr != nil {
		return // Accept has answered
	}
	// Close waits for the browser's answer a few seconds at most.
	_ = conn.Close(code, reason)
}

// originPattern escapes an origin for coder/websocket's path.Match
// patterns ("[" of an IPv6 host is a pattern character).
func originPattern(origin string) string {
	var b strings.Builder
	for _, ch := range origin {
		if strings.ContainsRune(`*?[]\`, ch) {
			b.WriteByte('\\')
		}
		b.WriteRune(ch)
	}
	return b.String()
}
