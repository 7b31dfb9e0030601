package session

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound: the store has no live record for the key, or the
	// session has ended (logged out, revoked, expired).
	ErrNotFound = errors.New("session: not found")
	// ErrExists: Store.Create was given a key that is already stored.
	ErrExists = errors.New("session: key already exists")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("session: store closed")
	// ErrInvalidArgument: a store was given an empty key or a
	// non-positive time to live.
	ErrInvalidArgument = errors.New("session: invalid argument")

	// ErrNoUserIndex: Manager.RevokeUser needs a Store that implements
	// UserIndex (memstore and redisstore both do). It wraps
	// errors.ErrUnsupported.
	ErrNoUserIndex = fmt.Errorf("session: the store has no per-user index: %w", errors.ErrUnsupported)

	// ErrInvalidConfig is wrapped by NewManager's validation errors.
	ErrInvalidConfig = errors.New("session: invalid config")
	// ErrInvalidUsers is wrapped by errors from parsing the users setting.
	ErrInvalidUsers = errors.New("invalid users")
	// ErrInvalidHash: a password hash is not an argon2id PHC string with
	// acceptable parameters.
	ErrInvalidHash = errors.New("invalid password hash")
	// ErrInvalidUsername: a user name is empty, too long, or has
	// characters outside [A-Za-z0-9._@-].
	ErrInvalidUsername = errors.New("invalid user name")
	// ErrInvalidRole: a role is not 1 to 32 characters of [a-z0-9_-]
	// starting with a letter or digit, or a user has too many.
	ErrInvalidRole = errors.New("invalid role")
	// ErrEmptyPassword: HashPassword was given an empty password.
	ErrEmptyPassword = errors.New("empty password")
)
