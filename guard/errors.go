package guard

import "errors"

var (
	// ErrInvalidConfig is wrapped by every error New and the limiter
	// constructors return for a configuration they cannot use.
	ErrInvalidConfig = errors.New("guard: invalid configuration")
	// ErrStoreUnavailable is returned by a fail-closed Limiter whose store
	// cannot answer (e.g. Redis is unreachable); a fail-open Limiter
	// decides on its in-memory, per-replica fallback instead and marks
	// the Result Degraded.
	ErrStoreUnavailable = errors.New("guard: rate-limit store unavailable")
	// ErrTooManyConnects refuses a WebSocket because its client address
	// opened too many in the current window.
	ErrTooManyConnects = errors.New("guard: too many new WebSocket connections from this address")
	// ErrTooManyConns refuses a WebSocket because its client address
	// already holds the maximum number open at once.
	ErrTooManyConns = errors.New("guard: too many open WebSocket connections from this address")
)
