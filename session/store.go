package session

import (
	"context"
	"time"
)

// Record is what a Store keeps for one session. It holds no secret: the
// session id itself is never stored, only its hash (Key).
type Record struct {
	// Key is the hex SHA-256 of the session id.
	Key string
	// User is the user name.
	User string
	// Roles are the user's roles, sorted; nil or empty for none. Stores
	// return nil for none.
	Roles []string
	// CreatedAt is the login time.
	CreatedAt time.Time
	// LastSeen is the last recorded activity; the idle deadline is
	// LastSeen + idle timeout.
	LastSeen time.Time
	// ExpiresAt is the absolute deadline.
	ExpiresAt time.Time
}

// Store keeps session records keyed by the hash of the session id. It
// speaks keys and deadlines, never HTTP: cookies belong to the Manager.
//
// Every record has a time to live; once it has passed, the record is gone
// (Get returns ErrNotFound). The Manager sets it to the time left until the
// nearer of the idle and absolute deadlines and still checks both deadlines
// itself, so a store's clock only decides when memory is reclaimed.
//
// Times must round-trip with at least millisecond precision. Error texts
// must not contain keys. Implementations are safe for concurrent use; the
// conformance suite in package sessiontest checks all of this.
type Store interface {
	// Create stores rec under rec.Key for ttl. It returns ErrExists when
	// the key is already stored and ErrInvalidArgument for an empty key or
	// a ttl <= 0.
	Create(ctx context.Context, rec Record, ttl time.Duration) error
	// Get returns the record stored under key, or ErrNotFound.
	Get(ctx context.Context, key string) (Record, error)
	// Touch sets the record's LastSeen and resets its time to live to
	// ttl. It never creates a record: ErrNotFound when key is absent.
	Touch(ctx context.Context, key string, lastSeen time.Time, ttl time.Duration) error
	// Delete removes the record; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// Ping reports whether the store answers (ErrClosed after Close).
	Ping(ctx context.Context) error
	// Close releases the store's resources; it is safe to call twice.
	Close() error
}

// MultiGetter is implemented by stores that read many records in one round
// trip (a Redis pipeline). The Manager uses it, when present, for its
// periodic check of watched sessions.
type MultiGetter interface {
	// GetMany returns the live records among keys; absent keys are
	// simply missing from the map.
	GetMany(ctx context.Context, keys []string) (map[string]Record, error)
}
