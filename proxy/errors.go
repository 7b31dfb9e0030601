package proxy

import "errors"

// ErrInvalidConfig is wrapped by every error New returns for a bad Config.
var ErrInvalidConfig = errors.New("proxy: invalid configuration")

// Causes kept in apierr.Error.Err for the log; never sent to a client.
var (
	errUpstreamTimeout = errors.New("upstream did not answer in time")
	errTooLarge        = errors.New("upstream response is larger than the limit")
	errBadKey          = errors.New("secret value contains CR, LF, NUL or another control character")
	errRedirectHost    = errors.New("upstream redirected outside its base URL")
	errRedirectKey     = errors.New("upstream redirect carries the key outside the key parameter")
	errSwitchProtocol  = errors.New("upstream tried to switch protocols")
	errEncoding        = errors.New("upstream response has an unsupported Content-Encoding")
	errCoolingDown     = errors.New("the vendor answered 429 for this key; waiting for its Retry-After")
	errBudget          = errors.New("the key's budget toward the vendor has no token left")
	errNoWaiters       = errors.New("every client waiting for this answer went away")
)
