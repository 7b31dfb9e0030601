package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/tickgate/tickgate/apierr"
	"github.com/tickgate/tickgate/config"
)

// Middleware loads the session named by the request's cookie (the cookie
// name of the request's scheme) and puts it in the request context. A
// missing, malformed, unknown or expired cookie just means no session: the
// request goes on, and Require decides. An expired record is deleted and
// its watchers fire.
//
// Activity is recorded by writing LastSeen to the store, at most once per
// TouchEvery, and never for Passive requests (GET /auth/session).
//
// When the store fails, the request is answered 503
// session_store_unavailable with Retry-After and the cookie is kept: the
// session may well be valid, and fails closed until the store is back.
func (m *Manager) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.load(r)
		if err != nil {
			m.storeUnavailable(w, r, err)
			return
		}
		if s != nil {
			r = r.WithContext(NewContext(r.Context(), s))
		}
		next.ServeHTTP(w, r)
	})
}

// load returns r's session, nil for none, or a store error.
func (m *Manager) load(r *http.Request) (*Session, error) {
	key, ok := m.requestKey(r)
	if !ok {
		return nil, nil
	}
	ctx := r.Context()
	rec, err := m.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := m.now()
	if reason := m.expired(rec, now); reason != "" {
		m.expire(ctx, rec, reason, true, slog.String("client_ip", m.clientIP(r)))
		return nil, nil
	}
	if !m.passive(r) {
		rec, err = m.touch(ctx, rec, now)
		if errors.Is(err, ErrNotFound) {
			return nil, nil // ended between Get and Touch
		}
		if err != nil {
			// The request is authenticated; only the idle deadline
			// did not move. Say so and go on.
			m.log.WarnContext(ctx, "session: record activity", "user", rec.User, "err", err)
		}
	}
	return m.toSession(rec), nil
}

// touch writes now as rec's LastSeen when the stored one is at least
// TouchEvery old, and returns the record as stored.
func (m *Manager) touch(ctx context.Context, rec Record, now time.Time) (Record, error) {
	if now.Sub(rec.LastSeen) < m.touchEvery {
		return rec, nil
	}
	next := rec
	next.LastSeen = now
	if err := m.store.Touch(ctx, rec.Key, now, m.ttl(next, now)); err != nil {
		if errors.Is(err, ErrNotFound) {
			m.end(rec.Key)
		}
		return rec, err
	}
	m.noteRecord(next)
	return next, nil
}

// Touch records activity for the session stored under key: browser control
// messages on a WebSocket count as activity (pushed data does not). It is
// throttled like the middleware, so calling it per message is cheap. It
// returns ErrNotFound when the session has ended (the caller closes with
// 4001) and a wrapped store error when the store fails.
func (m *Manager) Touch(ctx context.Context, key string) error {
	now := m.now()
	if rec, ok := m.cachedRecord(key); ok && m.expired(rec, now) == "" && now.Sub(rec.LastSeen) < m.touchEvery {
		return nil
	}
	rec, err := m.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		m.end(key)
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	if reason := m.expired(rec, now); reason != "" {
		m.expire(ctx, rec, reason, true)
		return ErrNotFound
	}
	rec, err = m.touch(ctx, rec, now)
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	m.noteRecord(rec)
	return nil
}

// Require answers 401 no_session unless the request context has a session
// (put there by Middleware).
func (m *Manager) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := FromContext(r.Context()); !ok {
			writeNoSession(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// RequireCSRF refuses state-changing requests (methods other than GET,
// HEAD and OPTIONS) with 403 csrf unless they carry exactly "X-CSRF: 1",
// any Origin header is an allowed origin, and any Sec-Fetch-Site header is
// same-origin or none. A cross-site form cannot set a custom header, and a
// cross-site fetch that sets one needs a CORS preflight we never grant;
// Origin and Sec-Fetch-Site catch what is left (e.g. sibling subdomains).
// https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html
func (m *Manager) RequireCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !safeMethod(r.Method) && !m.csrfOK(r) {
			writeCSRF(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func safeMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// csrfOK checks the CSRF rules of RequireCSRF, logging a refusal.
func (m *Manager) csrfOK(r *http.Request) bool {
	reason := m.csrfProblem(r)
	if reason == "" {
		return true
	}
	m.log.LogAttrs(r.Context(), slog.LevelWarn, "csrf check failed",
		slog.Bool("audit", true), slog.String("reason", reason),
		slog.String("method", r.Method), slog.String("client_ip", m.clientIP(r)))
	return false
}

func (m *Manager) csrfProblem(r *http.Request) string {
	if v := r.Header.Values("X-CSRF"); len(v) != 1 || v[0] != "1" {
		return "missing_header"
	}
	if v := r.Header.Values("Origin"); len(v) > 0 {
		if len(v) != 1 {
			return "origin"
		}
		o, err := config.NormalizeOrigin(v[0])
		if err != nil || !m.origins[o] {
			return "origin"
		}
	}
	if v := r.Header.Values("Sec-Fetch-Site"); len(v) > 0 {
		if len(v) != 1 || (v[0] != "same-origin" && v[0] != "none") {
			return "sec_fetch_site"
		}
	}
	return ""
}

// storeUnavailable answers 503 and logs the cause.
func (m *Manager) storeUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	m.log.ErrorContext(r.Context(), "session store unavailable", "err", err)
	apierr.Write(w, &apierr.Error{
		Status:     http.StatusServiceUnavailable,
		Code:       "session_store_unavailable",
		Message:    "the session store is unavailable; try again shortly",
		RetryAfter: storeRetryAfter,
		Err:        err,
	})
}

func writeNoSession(w http.ResponseWriter) {
	apierr.Respond(w, http.StatusUnauthorized, "no_session", "no valid session; log in")
}

func writeCSRF(w http.ResponseWriter) {
	apierr.Respond(w, http.StatusForbidden, "csrf",
		`request refused by CSRF protection: send "X-CSRF: 1" from an allowed origin`)
}
