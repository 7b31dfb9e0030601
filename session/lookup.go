package session

import (
	"context"
	"errors"
	"fmt"
)

// SessionByKey returns the live session stored under key (a Session.Key)
// as Middleware would load it for a request carrying its cookie: an
// expired record ends (its watchers fire, the audit line is written) and
// the access counts as activity. It lets a credential other than the
// cookie, bound to a session, stand for it (the one-time WebSocket
// tickets). ErrNotFound when there is no live session; a wrapped store
// error when the store fails (answer 503, as the middleware does).
func (m *Manager) SessionByKey(ctx context.Context, key string) (*Session, error) {
	if key == "" {
		return nil, ErrNotFound
	}
	rec, err := m.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load session: %w", err)
	}
	now := m.now()
	if reason := m.expired(rec, now); reason != "" {
		m.expire(ctx, rec, reason, true)
		return nil, ErrNotFound
	}
	rec, err = m.touch(ctx, rec, now)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		m.log.WarnContext(ctx, "session: record activity", "user", rec.User, "err", err)
	}
	return m.toSession(rec), nil
}
