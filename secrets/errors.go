package secrets

import "errors"

var (
	// ErrNotFound means the provider has no secret of that name.
	ErrNotFound = errors.New("secret not found")
	// ErrEmpty means the secret exists but its value is empty.
	ErrEmpty = errors.New("secret is empty")
	// ErrNotLoaded means the cache was asked for a secret it was not told to load.
	ErrNotLoaded = errors.New("secret not loaded")
)
