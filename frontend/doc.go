// Package frontend is tickgate's demo browser app: one HTML page, one
// stylesheet and one ES module, embedded in the binary with go:embed and
// served by [Handler]. It is the example a team copies when it puts its own
// web app in front of tickgate (DESIGN 6), so it shows the browser's half of
// the contract with no framework and no build step.
//
// # What the page does
//
//   - Sign-in: POST /auth/login with JSON and X-CSRF: 1; 401 and 429 (with
//     the Retry-After wait) are shown in words.
//   - Quote lookup: GET /api/demo/v1/quote/{SYMBOL} through the REST proxy
//     (or the server's own quote route, below); the vendor key never
//     reaches the browser.
//   - Live ticker: a WebSocket to /ws/demo (or the server's own feeds,
//     below; wss: under HTTPS) speaking the messages of DESIGN 1.5, one
//     table row per symbol (data-symbol), subscribe and unsubscribe, price
//     changes marked up or down, the connection state shown (live, vendor
//     feed reconnecting, reconnecting in N s); reconnect with exponential
//     backoff and jitter after checking the session; close 4001 means the
//     session is over (no reconnect), 4008 waits 30 s longer, 1013 at
//     least 5 s.
//   - Session expiry: a countdown to idle expiry from /auth/session, a
//     "still here?" notice shortly before it (answered with a WebSocket
//     ping, which counts as activity), and the login form when it ends.
//   - Logout: POST /auth/logout with X-CSRF: 1.
//   - SSO: with [HandlerWith] and Options.SSOLoginPath, the page's <html>
//     carries data-sso-login and the sign-in view shows "Sign in with
//     SSO", a plain link to that path (tickgate's GET /auth/oidc/login).
//
// # The server's configuration
//
// index.html's <html> element carries data-feeds="demo" and
// data-quote-path="/api/demo/v1/quote/{symbol}"; [HandlerWith] rewrites
// them from [Options] (Feeds, QuotePath, with [QuotePathFor] to find a
// quote route among an upstream's routes), so the same app.js serves any
// set of upstreams and feeds. With several feeds the ticker offers a
// choice; with none, or no quote route, that part of the page is hidden.
//
// Nothing is kept in web storage; the session cookie is HttpOnly and the
// page never sees it.
//
// # Content Security Policy
//
// The page works under [ContentSecurityPolicy]: no inline script or style,
// no style attributes, no string evaluation. Views switch with the hidden
// attribute and looks with CSS classes; text from the network is placed
// with textContent only. The tests enforce these rules on the embedded
// files.
//
// # Serving
//
// [Handler] answers GET and HEAD for "/", "/index.html", "/app.js" and
// "/app.css" with their content types, a strong ETag (If-None-Match gives
// 304) and Cache-Control: no-cache. Any other path is a 404 and any other
// method a 405, both as JSON error bodies from package apierr.
//
//	mux := http.NewServeMux()
//	mux.Handle("/", frontend.Handler()) // it answers 405 itself, in JSON
//
// With Echo, register it as the catch-all after the /auth, /api and /ws
// routes: e.Any("/*", echo.WrapHandler(frontend.Handler())).
package frontend
