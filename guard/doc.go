// Package guard protects every route before its handler runs: it decides
// the client's address (believing X-Forwarded-For only from trusted
// proxies), refuses networks and countries the configuration excludes,
// applies rate limits with the X-RateLimit-* headers of the contract,
// limits WebSocket connections per address, and throttles logins.
//
// # Client address
//
// [IPResolver] uses the TCP peer unless the peer is inside a trusted proxy
// CIDR; then it walks X-Forwarded-For from the right and takes the first
// address that is not itself a trusted proxy. Header-only key functions,
// such as go-limiter's httplimit.IPKeyFunc, are spoofable and not used.
// Rate-limit keys group IPv6 clients by /64 and treat IPv4-mapped IPv6
// addresses as IPv4 ([LimitKey]).
//
// # Network rules
//
// A [Policy] holds CIDR allow and deny lists and country allow or deny
// lists; countries come from a MaxMind-format database ([GeoDB]), re-read
// when the file changes. [Guard.Network] applies the global rules, the
// matching route's and the opened feed's before authentication: a refused
// client gets 403 forbidden_network or forbidden_country, an audit log
// line and a counter increment. [Guard.Admit] is the same check for
// routers with their own middleware type (the app's Echo chain). The relay
// can ask a feed's Policy directly with Allowed.
//
// # Rate limits
//
// A [Limiter] enforces one or two windows (burst and sustained) on
// go-limiter stores made by a [StoreFactory]: [MemoryStore] per process,
// or guard/redislimit for limits shared by replicas. A request refused by
// one window is not charged to the others. [RateLimit] is the net/http
// middleware and [Enforce] its body for one request; [Guard.RouteLimits]
// (or [Guard.RouteLimit] per request) adds the per-route limits of the
// configuration, keyed by session or by address. When several limits
// apply, the headers describe the one closest to refusing; Reset is
// always a future Unix second and Retry-After at least 1.
//
// # When the store fails
//
// Each limiter has a [FailurePolicy]: fail open (request and WebSocket
// limits, by default: market data keeps flowing, each replica applying
// the limit on its own in memory, so that a flood which slows the store
// down does not switch the limit off) or fail closed (logins, by default;
// requests get 503 rate_limit_unavailable). An outage is
// logged once when it starts and once when it ends, every request it
// decides is counted, and the store is not asked again for
// RetryStoreAfter, so an unreachable Redis costs one timeout per second
// rather than one per request.
//
// # Logins
//
// [LoginLimiter] spends one attempt per client address and one per user
// name. A request context from [WithLoginAttempt] records what it spent,
// so that a successful login can be refunded ([LoginLimiter.Refund]: only
// failures count) and the answer can carry the login limit's headers
// ([LoginAttempt.Result]).
//
// # WebSockets
//
// [WSGuard.Admit] limits new connections per address per window (a
// Limiter) and open connections per address (a [ConnCounter]); the relay
// closes refused sockets with 4008.
//
// # Example
//
//	g, err := guard.New(guard.Config{Rules: file.Guard, Resolver: ips, Stores: stores})
//	ipLim, err := g.Limiter("ip", settings.LimitIP)
//	handler := ips.Middleware(g.Network(routes)) // routes use RateLimit(ipLim, ...) and g.RouteLimits(sessionKey)
package guard
