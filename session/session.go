package session

import (
	"context"
	"log/slog"
	"slices"
	"time"
)

// Session is the authenticated browser session a request carries. The
// [Manager]'s middleware puts it in the request context; handlers read it
// with [FromContext].
type Session struct {
	// Key identifies the session in the Store: the hex SHA-256 of the
	// session id in the cookie. It is opaque and, like the id, never
	// logged, printed or sent anywhere; use it as a map or limiter key.
	Key string
	// User is the authenticated user name.
	User string
	// Roles are the user's roles when the session began (local users:
	// the users setting; OIDC: the roles claim), sorted. Nil: none.
	Roles []string
	// CreatedAt is when the user logged in.
	CreatedAt time.Time
	// IdleExpiresAt is when the session ends without further activity:
	// min(last activity + idle timeout, ExpiresAt).
	IdleExpiresAt time.Time
	// ExpiresAt is the absolute end of the session (CreatedAt + maximum
	// lifetime), whatever the activity.
	ExpiresAt time.Time
}

// String names the user only, so that printing a Session never shows its
// Key.
func (s Session) String() string { return "session(user=" + s.User + ")" }

// LogValue keeps the Key out of structured logs.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", s.User))
}

// HasRole reports whether the session holds role.
func (s *Session) HasRole(role string) bool { return slices.Contains(s.Roles, role) }

// HasAnyRole reports whether the session holds one of roles; an empty
// list requires nothing and is always true.
func (s *Session) HasAnyRole(roles []string) bool {
	if len(roles) == 0 {
		return true
	}
	for _, r := range roles {
		if s.HasRole(r) {
			return true
		}
	}
	return false
}

type ctxKey struct{}

// NewContext returns a copy of ctx that carries s.
func NewContext(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// FromContext returns the session ctx carries, if any.
func FromContext(ctx context.Context) (*Session, bool) {
	s, ok := ctx.Value(ctxKey{}).(*Session)
	return s, ok && s != nil
}
