package app

import (
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tickgate/tickgate/apierr"
	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/guard"
	"github.com/tickgate/tickgate/logging"
	"github.com/tickgate/tickgate/session"
)

// Role and per-user network checks (BRIEF sections 5 and 7: scoped
// tokens, per-key IP restrictions). Roles come with the session (users
// setting or OIDC roles claim); routes and feeds ask for them in the YAML.
// Every denial is a 403 JSON error before anything is forwarded or
// upgraded, an audit line and a count in tickgate_guard_denials_total.

// Denial codes (README "Roles and per-user networks").
const (
	codeForbiddenRole = "forbidden_role"
	// The network rules' code: a user's networks deny like guard's.
	codeForbiddenNetwork = guard.CodeForbiddenNetwork
)

// deny answers 403 code, writes the audit line and counts the denial
// under scope.
func (a *App) deny(w http.ResponseWriter, r *http.Request, scope, code, message string, attrs ...slog.Attr) {
	a.metrics.GuardDenials.WithLabelValues(scope, code).Inc()
	attrs = append(attrs, logging.Audit(), slog.String("code", code),
		slog.String("client_ip", a.ips.ClientIPString(r)), slog.String("method", r.Method),
		slog.String("request_id", RequestID(r.Context())))
	if s, ok := session.FromContext(r.Context()); ok {
		attrs = append(attrs, slog.String("user", s.User))
	}
	a.log.LogAttrs(r.Context(), slog.LevelWarn, "request denied: "+scope, attrs...)
	apierr.Respond(w, http.StatusForbidden, code, message)
}

// requireRouteRoles refuses /api/{upstream}/... requests whose method and
// path match an upstream route with roles the session lacks. It runs
// behind requireSession. The path is decoded as the proxy decodes it; a
// path that does not decode is left to the proxy, which refuses it (404).
func (a *App) requireRouteRoles(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		// Split the path exactly as the proxy does (proxy.splitAPIPath),
		// so both judge the same upstream and the same vendor path.
		p, _ := strings.CutPrefix(r.URL.EscapedPath(), "/api/")
		name, rest, found := strings.Cut(p, "/")
		u, ok := a.cfg.File.Upstreams[name]
		if !ok || !found {
			return next(c)
		}
		rest = "/" + rest
		path, err := url.PathUnescape(rest)
		if err != nil {
			return next(c)
		}
		needs := u.RouteRoles(r.Method, path)
		if len(needs) == 0 {
			return next(c)
		}
		s, ok := session.FromContext(r.Context())
		if !ok { // mounted behind requireSession; fail closed all the same
			apierr.Respond(c.Response(), http.StatusUnauthorized, "no_session", "no valid session; log in")
			return nil
		}
		for _, roles := range needs {
			if !s.HasAnyRole(roles) {
				a.deny(c.Response(), r, "route", codeForbiddenRole,
					"your account's roles do not allow this request",
					slog.String("upstream", name), slog.Any("needs_one_of", roles))
				return nil
			}
		}
		return next(c)
	}
}

// requireFeedRoles refuses a WebSocket upgrade to a feed with roles the
// session holds none of (403 before the upgrade, as for a foreign
// Origin).
func (a *App) requireFeedRoles(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		name := c.Param("feed")
		f, ok := a.cfg.File.Feeds[name]
		if !ok || len(f.Roles) == 0 {
			return next(c)
		}
		s, ok := session.FromContext(r.Context())
		if !ok { // mounted behind requireSession; fail closed all the same
			apierr.Respond(c.Response(), http.StatusUnauthorized, "no_session", "no valid session; log in")
			return nil
		}
		if !f.Access(s.Roles).Allowed {
			a.deny(c.Response(), r, "feed", codeForbiddenRole,
				"your account's roles do not include this feed",
				slog.String("feed", name), slog.Any("needs_one_of", f.FeedRoleNames()))
			return nil
		}
		return next(c)
	}
}

// feedAccess is relay.Config.Access: the session's symbol limit and
// allowlist on a feed.
func (a *App) feedAccess(s *session.Session, feed string) config.FeedAccess {
	return a.cfg.File.Feeds[feed].Access(s.Roles)
}

// userNetworkAllowed reports whether user may be served from the
// request's client address (TICKGATE_USER_NETWORKS); users not listed
// may be served from anywhere.
func (a *App) userNetworkAllowed(r *http.Request, user string) bool {
	nets, listed := a.cfg.Settings.UserNetworks[user]
	if !listed {
		return true
	}
	ip := guard.ClientIPFrom(r.Context())
	if !ip.IsValid() {
		ip = a.ips.ClientIP(r)
	}
	return inPrefixes(ip, nets)
}

func inPrefixes(ip netip.Addr, nets []netip.Prefix) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	for _, p := range nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// requireUserNetwork refuses requests of a session whose user has an IP
// allowlist that the client address is outside of. It runs after the
// session is loaded, on every route a session reaches, so a session taken
// elsewhere (a stolen cookie) is useless outside the user's networks.
func (a *App) requireUserNetwork(next echo.HandlerFunc) echo.HandlerFunc {
	if len(a.cfg.Settings.UserNetworks) == 0 {
		return next
	}
	return func(c echo.Context) error {
		r := c.Request()
		if s, ok := session.FromContext(r.Context()); ok && !a.userNetworkAllowed(r, s.User) {
			a.deny(c.Response(), r, "user", codeForbiddenNetwork,
				"your account may not be used from this network", slog.String("path", r.URL.Path))
			return nil
		}
		return next(c)
	}
}

// authorizeLogin is session.Config.AuthorizeLogin: a user with an IP
// allowlist logs in only from inside it. It runs after the credentials
// were accepted, so the answer tells nothing to someone without them.
func (a *App) authorizeLogin(r *http.Request, user string) error {
	if a.userNetworkAllowed(r, user) {
		return nil
	}
	a.metrics.GuardDenials.WithLabelValues("user", codeForbiddenNetwork).Inc()
	a.log.LogAttrs(r.Context(), slog.LevelWarn, "login denied: user network", logging.Audit(),
		slog.String("code", codeForbiddenNetwork), slog.String("user", user),
		slog.String("client_ip", a.ips.ClientIPString(r)), slog.String("request_id", RequestID(r.Context())))
	return apierr.New(http.StatusForbidden, codeForbiddenNetwork, "your account may not be used from this network")
}
