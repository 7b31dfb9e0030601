// Package oidc is tickgate's login through an OpenID Connect provider
// (Keycloak, Okta, Entra ID, Google…), as an alternative to local users:
// the authorization code flow with PKCE, ending in an ordinary tickgate
// session (package session, DESIGN 1.4).
//
// # Flow
//
// [Login.Start] serves GET /auth/oidc/login. It draws a 256-bit state, a
// 256-bit nonce and a 256-bit PKCE verifier, seals them into the state
// cookie, and redirects (302) to the provider's authorization endpoint
// with the state, the nonce and the verifier's S256 challenge (RFC 7636).
//
// [Login.Callback] serves GET /auth/oidc/callback, the RedirectURL
// registered at the provider. It opens the state cookie, compares its
// state with the state parameter in constant time (login CSRF: the
// provider's answer must come back to the browser that started), refuses
// a state already used, exchanges the code with the verifier (a code
// stolen in transit is useless without it), verifies the ID token with
// go-oidc (signature by the provider's published keys, issuer, audience,
// expiry; azp when there are several audiences) and compares its nonce
// with the cookie's in constant time (a token minted for another login is
// refused). Then it takes the user name, checks it is allowed, and calls
// [Sessions.Establish] ([session.Manager.Establish]): the same session as
// a password login — the session the browser presented is ended
// (fixation), a new 256-bit id is issued, only its hash is stored, the
// login is audited and counted. The browser is redirected to "/" and
// never to a URL taken from the request (no open redirect).
//
// # State cookie
//
// The state lives in the browser, sealed with AES-256-GCM, rather than in
// server memory: any replica can finish a login another one started, with
// no shared store and nothing to clean up. The cookie is
// __Host-tickgate-oidc (Secure) under HTTPS and tickgate-oidc on plain
// HTTP (loopback), HttpOnly, Path=/, Max-Age 10 minutes, and
// SameSite=Lax: the provider's redirect back is a cross-site top-level
// GET, on which browsers send Lax cookies but not Strict ones. The state
// inside expires after 10 minutes whatever the cookie's Max-Age.
//
// The sealing key is derived from the client secret with argon2id (once,
// at New), salted with the client id, so replicas configured alike agree
// with no extra setting, and a state cookie — which anyone can obtain —
// is no fast oracle for guessing a weak client secret. The client id and
// redirect URL are bound in as associated data. Rotating the client
// secret voids the logins in flight (they start again).
//
// A state is single use: Callback clears the cookie whatever the outcome,
// and each process remembers the states of callbacks whose code the
// provider accepted until they expire, so a replayed callback URL and
// cookie are refused (400). Replayed to another replica, the provider
// refuses the code, which it accepts once (RFC 6749 §4.1.2), so that ends
// in 401. One browser runs one login at a time: starting a second replaces
// the first's cookie.
//
// The session cookie itself stays SameSite=Strict. After the redirect
// chain from the provider, a browser may not send it with the top-level
// request for "/"; it does send it with that page's own requests (the
// frontend's GET /auth/session), which is where it is needed.
//
// # Users
//
// The user name is the ID token claim Config.UsernameClaim ("email" by
// default, "preferred_username" is common) and must pass
// [session.CheckUsername] (1 to 64 characters of [A-Za-z0-9._@-]); a
// provider user whose value does not cannot log in (403) — choose a claim
// that fits. An email is accepted only with email_verified true (unless
// Config.InsecureAllowUnverifiedEmail). Who may log in: AllowedUsers,
// AllowedDomains (the verified email's domain), or, for a provider that
// itself limits who may use the client, AllowAnyUser; New refuses a
// configuration with none of them, because with a public provider every
// account in the world would get in.
//
// OIDC and local users share one name space: a provider user whose name
// is also a local user's is that user for tickgate (audit lines, per-user
// limits, revocation). Keep them apart, e.g. with email names and
// AllowedDomains.
//
// # Tokens
//
// tickgate calls no provider API on the user's behalf, so it keeps none
// of the tokens: the ID token is verified and dropped, the access and
// refresh tokens are never used. Nothing reaches the browser but the
// tickgate session cookie. The session lasts the tickgate session's own
// idle and absolute limits, not the ID token's expiry. Keeping tokens
// (encrypted, server-side) would need session records that carry data.
//
// # Logout
//
// POST /auth/logout ends the tickgate session as for local users. It
// does not end the user's session at the provider, so the next login may
// pass without a password prompt; [Login.EndSessionURL] gives the
// provider's end_session_endpoint for a frontend that wants that too.
//
// # Errors and logs
//
// Failures answer the contract's JSON error body: 400 oidc_state (state
// cookie or parameter missing, forged, expired or used), 401 oidc_failed
// (provider error, code exchange, ID token or nonce), 403 oidc_forbidden
// (the user may not log in, or the provider said access_denied), and the
// session store's 503 session_store_unavailable. Each writes a "login
// failed" line with audit=true, method=oidc, the code as result, a reason
// and the client IP, counted in tickgate_logins_total{result}. Success is
// the Manager's "login" line with method=oidc. Tokens, codes, states,
// nonces, verifiers, cookies and the client secret are never logged or
// sent: a token endpoint's error_description is left out of the logs
// because providers echo the code or the client secret in it.
//
//	login, err := oidc.New(ctx, oidc.Config{
//		IssuerURL:      "https://login.example.com/realms/tickgate",
//		ClientID:       "tickgate",
//		ClientSecret:   clientSecret, // secrets.Value from the secrets cache
//		RedirectURL:    "https://app.example.com/auth/oidc/callback",
//		AllowedDomains: []string{"example.com"},
//		Sessions:       manager,
//		Logger:         logger,
//	})
//	if err != nil { ... }
//	defer login.Close()
//	mux.HandleFunc("GET /auth/oidc/login", login.Start)
//	mux.HandleFunc("GET /auth/oidc/callback", login.Callback)
package oidc
