package session

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/tickgate/tickgate/apierr"
)

// Establish starts a session for user, whom something other than
// [Manager.Login] has authenticated (an OpenID Connect provider, in
// session/oidc). It does what a successful password login does: it ends the
// session the request presented (session fixation), issues a new 256-bit
// id, stores only its hash, writes the "login" audit line (with method, e.g.
// "oidc", and the client IP), counts the login and sets the session cookie
// on w. It writes no body: the caller answers (a redirect, typically).
//
// user must pass [CheckUsername]; otherwise the error wraps
// ErrInvalidUsername. Every other error is an *apierr.Error ready for
// apierr.Write: 503 session_store_unavailable with Retry-After when the
// store cannot create the session (already logged, like the middleware's),
// 500 internal otherwise. On error no cookie is set.
func (m *Manager) Establish(w http.ResponseWriter, r *http.Request, user, method string) (*Session, error) {
	return m.EstablishWithRoles(w, r, user, method, nil)
}

// EstablishWithRoles is Establish for a user holding roles, which the
// session record keeps (sorted, duplicates dropped) for role checks on
// routes and feeds. An invalid role is an error wrapping ErrInvalidRole.
func (m *Manager) EstablishWithRoles(w http.ResponseWriter, r *http.Request, user, method string, roles []string) (*Session, error) {
	if err := CheckUsername(user); err != nil {
		return nil, fmt.Errorf("establish session: %w", err)
	}
	roles, err := normalizeRoles(slices.Clone(roles))
	if err != nil {
		return nil, fmt.Errorf("establish session: %w", err)
	}
	if m.authorize != nil {
		if err := m.authorize(r, user); err != nil {
			m.met.Logins.WithLabelValues("refused").Inc()
			return nil, err
		}
	}
	ctx := r.Context()
	// Session fixation: whatever session this browser presented ends now.
	if old, ok := m.requestKey(r); ok {
		if err := m.Revoke(ctx, old); err != nil {
			m.log.WarnContext(ctx, "session: delete previous session at login", "err", err)
		}
	}
	id, err := newID()
	if err != nil {
		m.met.Logins.WithLabelValues("error").Inc()
		return nil, apierr.Wrap(err, http.StatusInternalServerError, "internal", "internal error")
	}
	key, _ := keyOf(id)
	now := m.now()
	rec := Record{Key: key, User: user, Roles: roles, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(m.max)}
	if err := m.store.Create(ctx, rec, m.ttl(rec, now)); err != nil {
		m.met.Logins.WithLabelValues("error").Inc()
		m.log.ErrorContext(ctx, "session store unavailable", "err", err)
		return nil, &apierr.Error{
			Status:     http.StatusServiceUnavailable,
			Code:       "session_store_unavailable",
			Message:    "the session store is unavailable; try again shortly",
			RetryAfter: storeRetryAfter,
			Err:        fmt.Errorf("establish session: %w", err),
		}
	}
	m.met.Logins.WithLabelValues("success").Inc()
	m.log.LogAttrs(ctx, slog.LevelInfo, "login",
		slog.Bool("audit", true), slog.String("result", "success"),
		slog.String("method", method),
		slog.String("user", user), slog.String("client_ip", m.clientIP(r)))
	http.SetCookie(w, m.cookie(r, id, int(m.max/time.Second)))
	return m.toSession(rec), nil
}

// IsSecure reports whether the browser talks HTTPS to us for r, as
// Config.Secure decides. Login handlers outside this package use it so that
// their own cookies (e.g. the OIDC state cookie) follow the same scheme
// rules as the session cookie.
func (m *Manager) IsSecure(r *http.Request) bool { return m.secure(r) }

// ClientIP returns r's client address as Config.ClientIP decides, for the
// audit lines of login handlers outside this package.
func (m *Manager) ClientIP(r *http.Request) string { return m.clientIP(r) }
