package session

import (
	"context"
	"fmt"
	"log/slog"
)

// Events carries "this session has ended" announcements between the
// replicas that share a Store, so that each closes the session's
// WebSockets at once rather than at its next periodic check
// (session/redisstore implements it with Redis pub/sub). Delivery may be
// at-most-once: a replica cut off from the bus misses events, and its
// periodic check of watched sessions, which reads the Store, catches
// those within CheckInterval of the Store answering again.
type Events interface {
	// Publish announces that the session stored under key has ended.
	Publish(ctx context.Context, key string) error
	// Subscribe calls fn with every announced key, including this
	// replica's own, until stop is called or ctx is done. fn must return
	// quickly; stop waits for any call in progress.
	Subscribe(ctx context.Context, fn func(key string)) (stop func())
}

// UserIndex is implemented by stores that index sessions by user
// (memstore and redisstore), which RevokeUser needs.
type UserIndex interface {
	// DeleteUser deletes every session of user and returns the keys of
	// those it deleted (on an error, those deleted so far). An empty user
	// is ErrInvalidArgument.
	DeleteUser(ctx context.Context, user string) ([]string, error)
}

// Revoke ends the session stored under key at once: its record is deleted,
// its watchers here fire, and, with Config.Events, every other replica is
// told to fire its own (otherwise they notice within CheckInterval).
func (m *Manager) Revoke(ctx context.Context, key string) error {
	if err := m.store.Delete(ctx, key); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	m.end(key)
	if err := m.announce(ctx, key); err != nil {
		m.warnAnnounce(ctx, 1, err)
	}
	return nil
}

// RevokeUser ends every session of user ("log out everywhere", or an
// account being disabled) through the Store's per-user index: the records
// are deleted, and their WebSockets close with 4001 here and, with
// Config.Events, on every replica. It returns how many sessions it ended.
//
// A session whose login runs concurrently may survive; call again to be
// sure. On a store error the sessions already deleted are still ended and
// counted. The error wraps ErrNoUserIndex when the Store does not
// implement UserIndex, and ErrInvalidArgument for an empty user.
func (m *Manager) RevokeUser(ctx context.Context, user string) (int, error) {
	if user == "" {
		return 0, fmt.Errorf("revoke user's sessions: %w", ErrInvalidArgument)
	}
	idx, ok := m.store.(UserIndex)
	if !ok {
		return 0, fmt.Errorf("revoke user's sessions: %w", ErrNoUserIndex)
	}
	keys, err := idx.DeleteUser(ctx, user)
	for _, k := range keys {
		m.end(k)
	}
	for i, k := range keys {
		if perr := m.announce(ctx, k); perr != nil {
			// The bus is failing: the rest would fail alike, each after a
			// timeout. Other replicas' checks see the records gone.
			m.warnAnnounce(ctx, len(keys)-i, perr)
			break
		}
	}
	result := "success"
	if err != nil {
		result = "error"
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "sessions revoked",
		slog.Bool("audit", true), slog.String("user", user),
		slog.Int("sessions", len(keys)), slog.String("result", result))
	if err != nil {
		return len(keys), fmt.Errorf("revoke user's sessions: %w", err)
	}
	return len(keys), nil
}

// announce tells the other replicas that the session under key has ended.
// The announcement is worth finishing even when the request that caused
// it is gone, so ctx's cancellation is ignored; a timeout bounds it.
func (m *Manager) announce(ctx context.Context, key string) error {
	if m.events == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeOpTimeout)
	defer cancel()
	return m.events.Publish(ctx, key)
}

func (m *Manager) warnAnnounce(ctx context.Context, sessions int, err error) {
	m.log.WarnContext(ctx, "session: could not tell other replicas that a session ended; they notice at their next check",
		"sessions", sessions, "err", err)
}

// onEvent handles an announcement from any replica (this one included):
// the session's local watchers fire. Nothing is deleted; the announcing
// replica did that.
func (m *Manager) onEvent(key string) {
	if n := m.end(key); n > 0 {
		m.log.Debug("session: ended by an announcement; closing its connections", "connections", n)
	}
}
