// Package session is tickgate's browser sessions and local users: the
// cookie a browser holds instead of a vendor key (BRIEF §7, DESIGN 1.4).
//
// # Sessions
//
// A [Manager] issues a session at login: a 256-bit random id from
// crypto/rand, sent once in the cookie and never stored, logged or
// compared; the [Store] keeps only its SHA-256 (the [Session.Key]). The
// cookie is __Host-tickgate (HttpOnly, Secure, SameSite=Strict, Path=/, no
// Domain) when the browser talks HTTPS, and tickgate (HttpOnly,
// SameSite=Strict) on plain HTTP, which the app allows only on loopback or
// behind a trusted proxy. Every login gets a new id and ends the session
// the browser presented, so a planted cookie is worthless (session
// fixation).
//
// A session ends at the first of:
//
//   - the idle deadline, min(last activity + Idle, ExpiresAt): 30m of
//     inactivity by default. Activity is any request through
//     [Manager.Middleware] except the passive GET /auth/session, and
//     WebSocket control messages ([Manager.Touch]); writes to the store are
//     throttled to one per TouchEvery;
//   - the absolute deadline, ExpiresAt = login + Max (12h by default);
//   - logout, [Manager.Revoke] or [Manager.RevokeUser] (every session of
//     a user, through the store's per-user index, [UserIndex]).
//
// A session is valid strictly before its deadlines. The Manager checks the
// deadlines itself on every lookup; the Store's time to live only reclaims
// memory.
//
// # Routes
//
// [Manager.Login], [Manager.Info] and [Manager.Logout] are the handlers of
// POST /auth/login, GET /auth/session and POST /auth/logout;
// [Manager.Middleware] loads the session into the request context
// ([FromContext]), [Manager.Require] answers 401 no_session without one,
// and [Manager.RequireCSRF] answers 403 csrf to a state-changing request
// without "X-CSRF: 1", from a foreign Origin, or with a cross-site
// Sec-Fetch-Site. Errors use the contract's JSON body (package apierr). A
// failing store answers 503 session_store_unavailable and never clears the
// cookie: it fails closed without logging anyone out.
//
// # Login throttling
//
// [Manager.Login] asks the LoginLimiter (a window per client IP and per
// user name, shared by replicas on Redis) and then applies a growing
// delay of its own: after LoginBackoffFree failures in a row (3), each
// further failure of an address or a name doubles the wait before its
// next attempt (1s, 2s, 4s… up to 5m), answered 429 too_many_attempts
// with Retry-After before any password work, and alike for unknown names.
// A success clears the name's delay. Other login methods (session/oidc)
// start sessions with [Manager.Establish], the same code path a password
// login ends in.
//
// # Watches
//
// Long-lived connections call [Manager.Watch] with their session's key and
// close (WebSocket code 4001) when the channel closes: at once on logout,
// revocation or an expiry this Manager notices, and within CheckInterval
// (1s) on any other expiry or on deletion by another replica sharing the
// store. One goroutine checks all watched sessions; [Manager.Close] stops
// it.
//
// # Replicas
//
// Replicas sharing a store (session/redisstore) also share [Events]: the
// Manager that ends a session (logout, revocation, idle or absolute
// expiry) announces its key, and every Manager, on receiving it, fires its
// local watchers without touching the store, so the session's WebSockets
// close on every replica within moments. Announcements may be lost (Redis
// pub/sub is at-most-once, e.g. while a replica reconnects); the periodic
// check, which reads the store, is the backstop. A store failure never
// ends a session: the check then judges by the deadlines of the record it
// last read.
//
// # Stores
//
// [Store] speaks keys and deadlines, never HTTP. session/memstore keeps
// records in memory for one process; a Redis store serves several
// replicas. Package sessiontest is the conformance suite every store runs.
// Stores that implement [Values] also keep small values for app code next
// to the sessions (the one-time WebSocket tickets, per-user app data), so
// replicas sharing the store share them too.
//
// # Users
//
// Local accounts are name:hash pairs from TICKGATE_USERS ([ParseUsers];
// commas inside the PHC parameters are handled) or TICKGATE_USERS_FILE
// ([ParseUsersFile]). Hashes are argon2id PHC strings with OWASP's
// parameters ([HashPassword], behind `tickgate hash-password`).
// [Users.Verify] compares in constant time and spends the same argon2id
// work on unknown users, so the answer time does not reveal who exists.
//
// # Roles
//
// A user may hold roles (name:hash:role1|role2; OIDC: a claim), which the
// session keeps ([Session.Roles], [Record.Roles]) from login to its end;
// the app checks them against the roles routes and feeds ask for.
// [Config.AuthorizeLogin] can refuse a user whose credentials were right
// (the per-user IP allowlists) before any session starts.
//
// # Logs
//
// Login success and failure, logout, session expiry and CSRF refusals are
// logged with the attribute audit=true, with the user (only when it is a
// real user: an unknown name may be a password typed in the wrong field)
// and the client IP. Passwords, cookies, session ids and keys are never
// logged.
//
//	m, err := session.NewManager(session.Config{
//		Store:          store,
//		Users:          users,
//		AllowedOrigins: []string{"https://app.example.com"},
//		Secure:         func(r *http.Request) bool { return r.TLS != nil },
//		LoginLimiter:   loginLimiter,
//		Events:         redisStore, // nil for one process
//		Logger:         logger,
//	})
//	if err != nil { ... }
//	defer m.Close()
//	handler := m.Middleware(mux)
package session
