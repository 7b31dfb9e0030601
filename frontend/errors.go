package frontend

import "errors"

// ErrAssetMissing means a file the page needs is not in the embedded set.
// It can only happen in a broken build; Handler then answers 500 instead of
// panicking.
var ErrAssetMissing = errors.New("frontend: embedded asset missing")
