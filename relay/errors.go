package relay

import "errors"

var (
	// ErrClosed is returned after Close: the relay serves no new sockets.
	ErrClosed = errors.New("relay: closed")
	// ErrUnavailable means a feed cannot be served now (its key is
	// missing or refused); browsers get close 1013.
	ErrUnavailable = errors.New("relay: feed unavailable")
	// ErrAuthFailed means the vendor refused the key (auth failure
	// message, or 401/403 at the handshake).
	ErrAuthFailed = errors.New("relay: upstream refused the key")
	// ErrAuthTimeout means the vendor did not answer the auth message in
	// time.
	ErrAuthTimeout = errors.New("relay: upstream auth timed out")
	// ErrBusy means the vendor refused the connection because the key
	// already has as many connections as it may.
	ErrBusy = errors.New("relay: upstream has too many connections for this key")
	// ErrUpstreamLost means the upstream connection ended.
	ErrUpstreamLost = errors.New("relay: upstream connection lost")
	// errNoKey means the feed's secret could not be read.
	errNoKey = errors.New("relay: upstream key unavailable")
	// ErrInvalidConfig is wrapped by New's validation errors.
	ErrInvalidConfig = errors.New("relay: invalid config")
)
