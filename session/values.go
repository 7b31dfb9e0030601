package session

import (
	"context"
	"time"
)

// MaxValueKeyLen and MaxValueBytes bound what a Values store keeps under
// one key.
const (
	MaxValueKeyLen = 200
	MaxValueBytes  = 64 << 10
)

// Values is implemented by stores that also keep small values for app
// code next to the sessions, so that whatever several replicas must share
// lives where the sessions do: the one-time WebSocket tickets
// (POST /auth/ws-ticket) and per-user app data such as the example
// watchlist. memstore and redisstore implement it.
//
// Keys are app-chosen strings of 1 to MaxValueKeyLen bytes in a namespace
// of their own (they never collide with session records); values are at
// most MaxValueBytes. Like record keys, value keys that derive from a
// secret must be hashes of it.
type Values interface {
	// SetValue stores val under key, replacing any value; ttl > 0 is its
	// time to live, 0 keeps it until deleted. ErrInvalidArgument for a
	// bad key, an oversized value or ttl < 0.
	SetValue(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// GetValue returns the value stored under key, or ErrNotFound.
	GetValue(ctx context.Context, key string) ([]byte, error)
	// TakeValue returns the value stored under key and deletes it in one
	// atomic step, so of two concurrent callers (on any replicas) only
	// one gets it; the other gets ErrNotFound.
	TakeValue(ctx context.Context, key string) ([]byte, error)
	// DeleteValue removes the value; an absent key is not an error.
	DeleteValue(ctx context.Context, key string) error
}

// ValidValue reports whether key and val are within the limits of Values.
func ValidValue(key string, val []byte, ttl time.Duration) bool {
	return key != "" && len(key) <= MaxValueKeyLen && len(val) <= MaxValueBytes && ttl >= 0
}
