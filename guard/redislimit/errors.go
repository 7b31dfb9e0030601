package redislimit

import "errors"

// ErrInvalidConfig is wrapped by every error New returns for a Config it
// cannot use. Its messages never contain the URL (it may hold a password).
var ErrInvalidConfig = errors.New("redislimit: invalid configuration")
