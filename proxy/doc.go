// Package proxy forwards browser REST calls under /api/{upstream}/ to
// market-data vendors, adding the vendor key on the server and keeping it
// out of everything the browser receives (DESIGN section 4).
//
// [Proxy] is an http.Handler for the whole /api/ tree. Session, CSRF and
// rate-limit middleware run before it; it does the rest on an
// httputil.ReverseProxy with a Rewrite function (not Director, whose
// ordering let a client's Connection header delete injected headers).
//
// # Requests
//
// The path after /api/{upstream} is decoded first, then checked, then
// matched against the upstream's route patterns ("*" one segment, "**"
// the rest): encoded slashes, backslashes and dots, double encoding,
// dot and empty segments, semicolons, control characters and paths over
// 2 KiB are refused with 404 not_found, a path open only to other methods
// with 405 method_not_allowed. The upstream URL is built from the checked
// path alone, joined to the base URL's path. The client's query is
// forwarded without the key parameter; a query with a bad escape, a
// control character or a semicolon, and a request asking for a protocol
// upgrade, get 400 bad_request.
//
// The browser's cookies, Authorization, Proxy-Authorization, Referer,
// Origin, Forwarded, X-Forwarded-*, X-Real-IP and friends, Sec-* headers,
// Range, hop-by-hop headers (also those named in Connection), method and
// URL override headers (X-HTTP-Method-Override, X-Original-URL and the
// like, which would lead many servers past the route allowlist) and any
// header or query parameter named like the key slot are removed; then the
// upstream's configured headers and the key are set (query:<param>,
// header:<name> or bearer). A key, or a configured header, holding CR, LF,
// NUL or another control character is refused with 502 upstream_config
// and the secret's name in the log.
//
// # Responses
//
// Set-Cookie, Access-Control-*, HSTS, CSP, Clear-Site-Data, Refresh and
// other headers that would act on tickgate's origin are dropped; headers
// tickgate's middleware already set (security headers, X-Request-Id,
// X-RateLimit-*) win over the vendor's; a header whose name or value holds
// the key is removed, except Link and Content-Location, whose vendor URLs
// are rewritten like body URLs. 1xx interim answers and trailers from the
// vendor are never passed on (ReverseProxy would copy both unscrubbed). A
// body without Content-Type is sent as application/octet-stream, so that
// no browser sniffs vendor HTML onto tickgate's origin.
//
// A Location under the upstream's base URL becomes /api/{upstream}/...
// without the key parameter, so a browser following the redirect comes
// back through the proxy. A redirect anywhere else, or one carrying the key
// outside the key parameter, is refused with 502 upstream_redirect; on a
// non-redirect answer (201 Created) such a Location is only dropped.
// Redirects are never followed by the proxy itself.
//
// Bodies are streamed through a scrubber that rewrites absolute vendor
// URLs (pagination links such as next_url, also JSON-escaped as
// "http:\/\/..." or with "\u0026") to /api/{upstream}/... without the
// key parameter, then replaces every remaining occurrence of the key, raw,
// URL-encoded or JSON-escaped, with "[redacted]", across read boundaries
// (it holds back only the few bytes that could start a key). The first
// 32 KiB are read before the headers are sent: a body that ends there gets
// an exact Content-Length, a larger one is sent chunked and never held in
// memory as a whole. Past MaxResponseBytes (default 10 MiB, counted after
// decompression) the answer is 502 upstream_too_large, or the stream is
// cut if the headers had gone out.
//
// Compression: the browser's Accept-Encoding is not forwarded, so Go's
// transport asks for gzip and decompresses before the scrubber (a
// scrubber cannot see a key inside compressed bytes). When an upstream's
// configured headers set Accept-Encoding (some vendors insist), the proxy
// decodes gzip and deflate itself and refuses other encodings with 502
// upstream_error. Browsers receive identity bodies.
//
// # Vendor errors
//
// 401 or 403: the key is invalidated in the secrets cache; if a new value
// appears the request is sent once more with it (bodies up to 64 KiB are
// buffered for this; larger ones are not retried). A refusal that
// persists becomes 502 upstream_auth, never the vendor's body. 429 becomes
// 429 upstream_rate_limited with the vendor's Retry-After; 5xx becomes 502
// upstream_error. Other statuses pass through with scrubbed bodies. A
// request over the upstream's timeout (default 15s) gets 504
// upstream_timeout, an unreachable vendor 502 upstream_unavailable; a
// browser that went away gets nothing and is not logged as a failure.
//
// # Logs and metrics
//
// Log lines name the upstream, method, checked path, status and duration,
// never the query or the upstream URL (Go's *url.Error quotes it, key
// included). tickgate_upstream_requests_total{upstream,code} counts every
// attempt toward a vendor.
//
// # Protecting the vendor account
//
// A vendor account is an upstream's first secret; upstreams sharing it
// share its budget and cool-down. Before every call to the vendor the
// account's [Budget] (a token bucket per window of config.Budget, in
// memory by default, in Redis with package proxy/redisbudget) must give a
// token, or the request waits up to the budget's queue and is then
// refused with 429 upstream_budget, Retry-After and X-RateLimit-*. After
// a vendor 429 no call goes out for that account until the vendor's
// Retry-After has passed (429 upstream_rate_limited). Identical
// concurrent GET or HEAD requests (same method, checked path, query
// without the key and forwarded headers; cookies, Authorization and
// Accept-Encoding are never forwarded, so never part of it) share one
// vendor call, and with cache_ttl a 200 answer to a GET is kept, bounded
// by the vendor's Cache-Control, Expires and Age, 4096 answers and 32 MiB
// at most. Only complete, scrubbed answers of at most 128 KiB are shared;
// neither kind of sharing spends a token.
//
// # Example
//
//	p, err := proxy.New(proxy.Config{
//		Upstreams: file.Upstreams,
//		Secrets:   cache,
//		Logger:    logger,
//		Metrics:   m,
//	})
//	if err != nil {
//		return err
//	}
//	defer p.Close()
//	e.Any("/api/:upstream/*", echo.WrapHandler(p), requireSession, csrf)
package proxy
