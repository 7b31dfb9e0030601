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
//   - Quote lookup: GET /api/demo/v1/quote/{SYMBOL} through the REST proxy;
//     the vendor key never reaches the browser.
//   - Live ticker: a WebSocket to /ws/demo (wss: under HTTPS) speaking the
//     messages of DESIGN 1.5, one table row per symbol (data-symbol),
//     subscribe and unsubscribe, reconnect with exponential backoff and
//     jitter; close 4001 means the session is over, 4008 waits longer,
//     1013 retries later.
//   - Session expiry: a countdown to idle expiry from /auth/session, a
//     "still here?" notice shortly before it (answered with a WebSocket
//     ping, which counts as activity), and the login form when it ends.
//   - Logout: POST /auth/logout with X-CSRF: 1.
//   - SSO: with [HandlerWith] and Options.SSOLoginPath, the page's <html>
//     carries data-sso-login and the sign-in view shows "Sign in with
//     SSO", a plain link to that path (tickgate's GET /auth/oidc/login).
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
