package oidc

import "errors"

var (
	// ErrInvalidConfig is wrapped by New's validation errors.
	ErrInvalidConfig = errors.New("oidc: invalid config")
	// ErrDiscovery: New could not read or accept the provider's discovery
	// document (unreachable issuer, issuer mismatch, no S256 PKCE).
	ErrDiscovery = errors.New("oidc: provider discovery failed")
)
