// Package guard protects every route before its handler runs: it decides
// the client's address (believing X-Forwarded-For only from trusted
// proxies), applies rate limits with the X-RateLimit-* headers of the
// contract, and throttles logins.
//
// # Client address
//
// [IPResolver] uses the TCP peer unless the peer is inside a trusted proxy
// CIDR; then it walks X-Forwarded-For from the right and takes the first
// address that is not itself a trusted proxy. Header-only key functions,
// such as go-limiter's httplimit.IPKeyFunc, are spoofable and not used.
// Rate-limit keys group IPv6 clients by /64 and treat IPv4-mapped IPv6
// addresses as IPv4.
//
// # Rate limits
//
// A [Limiter] enforces one or two windows (burst and sustained) on
// go-limiter stores; [RateLimit] is the net/http middleware.
package guard
