package marketsim

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them; compare
// with errors.Is.
var (
	// ErrNoKeys means Options.Keys (or SetKeys) was empty: a vendor without
	// a single valid key would refuse everything.
	ErrNoKeys = errors.New("marketsim: at least one api key is required")
	// ErrBadKey means a key is empty, too long, or contains spaces, commas
	// or control characters. The error names the key's position, never its
	// value.
	ErrBadKey = errors.New("marketsim: invalid api key")
	// ErrBadSymbol means a symbol of Options.Symbols is malformed or
	// repeated.
	ErrBadSymbol = errors.New("marketsim: invalid symbol")
	// ErrBadOption means an Options field (or a runtime knob) is out of
	// range; the error names the field.
	ErrBadOption = errors.New("marketsim: invalid option")
	// ErrClosed is returned by Serve and Start after Close.
	ErrClosed = errors.New("marketsim: server closed")
	// ErrServing is returned by Serve and Start when the server already
	// serves a listener.
	ErrServing = errors.New("marketsim: server already serving")

	// errBadMessage and its wrappers describe a client WebSocket message
	// that cannot be understood. Their text is sent to the client.
	errBadMessage = errors.New("invalid message")
	// errBadCursor is a /v1/symbols cursor that this server did not issue.
	errBadCursor = errors.New("invalid cursor")
)
