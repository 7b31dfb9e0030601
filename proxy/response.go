package proxy

import (
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tickgate/tickgate/apierr"
)

// primeBytes is how much of a body is read before the headers are sent:
// a body that ends within it gets an exact Content-Length, and one past
// MaxResponseBytes within it gets a clean 502 instead of a cut stream.
const primeBytes = 32 << 10

// Client messages of the errors the proxy answers with.
const (
	msgTimeout     = "the upstream did not answer in time"
	msgUnavailable = "the upstream is unavailable"
	msgError       = "the upstream failed to answer the request"
	msgTooLarge    = "the upstream answer is too large"
	msgAuth        = "the upstream refused the server's credentials"
	msgRateLimited = "the upstream's rate limit was reached; retry later"
	msgRedirect    = "the upstream redirected to a location that cannot be followed"
)

// modifyResponse turns vendor errors into contract errors, cleans the
// headers and puts the body behind the size limit and the scrubber.
// Returning an error makes ReverseProxy close the body and call
// errorHandler, before anything is sent to the client. A request that
// others wait on shares the answer here, once it is complete.
func (p *Proxy) modifyResponse(res *http.Response) error {
	st := stateFrom(res.Request.Context())
	u := st.u
	switch code := res.StatusCode; {
	case code == http.StatusSwitchingProtocols:
		return apierr.Wrap(errSwitchProtocol, http.StatusBadGateway, "upstream_error", msgError)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		// Never the vendor body: it may echo the key in forms the
		// scrubber does not know.
		drain(res)
		return apierr.Wrap(fmt.Errorf("vendor answered %d", code), http.StatusBadGateway, "upstream_auth", msgAuth)
	case code == http.StatusTooManyRequests:
		drain(res)
		e := apierr.Wrap(fmt.Errorf("vendor answered %d", code), http.StatusTooManyRequests, "upstream_rate_limited", msgRateLimited)
		e.RetryAfter = p.coolDown(u, res.Header)
		return e
	case code >= 500:
		drain(res)
		return apierr.Wrap(fmt.Errorf("vendor answered %d", code), http.StatusBadGateway, "upstream_error", msgError)
	}
	if err := st.rewriteLocation(res); err != nil {
		if res.StatusCode >= 300 && res.StatusCode < 400 {
			drain(res)
			return apierr.Wrap(err, http.StatusBadGateway, "upstream_redirect", msgRedirect)
		}
		// Not a redirect (e.g. 201 Created): the answer stands, the
		// Location that cannot be mapped is dropped.
		res.Header.Del("Location")
	}
	st.filterResponseHeaders(res.Header)
	// Trailers would bypass the scrubber. The transport fills them in
	// when the body ends, so the scrubReader clears them again then.
	res.Trailer = nil

	h := res.Header
	if res.Request.Method == http.MethodHead || res.StatusCode == http.StatusNoContent ||
		res.StatusCode == http.StatusNotModified || res.StatusCode < 200 {
		// The length of a scrubbed body is unknown without reading it.
		h.Del("Content-Length")
		p.share(st, res, nil)
		return nil
	}
	if res.ContentLength > u.maxBytes && h.Get("Content-Encoding") == "" {
		drain(res)
		return apierr.Wrap(errTooLarge, http.StatusBadGateway, "upstream_too_large", msgTooLarge)
	}
	src, err := decode(res)
	if err != nil {
		drain(res)
		return apierr.Wrap(err, http.StatusBadGateway, "upstream_error", msgError)
	}
	sr := newScrubReader(st.scrub, &limitReader{r: src, n: u.maxBytes}, res.Body, &p.readBufs)
	sr.afterSource = func() { res.Trailer = nil }
	st.reader = sr
	res.Body = sr
	complete, err := sr.prime(primeBytes)
	if err == nil && !complete && st.flight != nil {
		if p.flights.wanted(st.flight) || st.cacheable(res) {
			// Others wait for this answer, or it may be cached: read on,
			// up to what a shared answer may hold.
			complete, err = sr.prime(maxSharedBytes)
		}
		if err == nil && !complete {
			// Too large to share: the others send their own requests
			// now, this one streams.
			p.flights.finish(st.flight, nil)
		}
	}
	if err != nil {
		if e := p.classify(res.Request.Context(), err); e != nil {
			return e
		}
		return err // the client is gone; errorHandler sees it too
	}
	if complete {
		res.ContentLength = int64(sr.buffered())
		h.Set("Content-Length", strconv.Itoa(sr.buffered()))
	} else {
		res.ContentLength = -1
		h.Del("Content-Length")
	}
	if _, ok := h["Content-Type"]; !ok {
		// Never let a browser sniff a vendor body into HTML on our origin.
		h.Set("Content-Type", "application/octet-stream")
	}
	if complete {
		p.share(st, res, sr.out[sr.off:])
	}
	return nil
}

// decode returns the body as identity bytes. Normally the transport has
// already decompressed gzip (the client's Accept-Encoding is not
// forwarded); a vendor that needs Accept-Encoding from the config gets
// its gzip or deflate decoded here so the scrubber sees plain bytes.
func decode(res *http.Response) (io.Reader, error) {
	enc := strings.ToLower(strings.TrimSpace(res.Header.Get("Content-Encoding")))
	res.Header.Del("Content-Encoding")
	switch enc {
	case "", "identity":
		return res.Body, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(res.Body)
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		return zr, nil
	case "deflate":
		zr, err := zlib.NewReader(res.Body)
		if err != nil {
			return nil, fmt.Errorf("deflate body: %w", err)
		}
		return zr, nil
	default:
		return nil, fmt.Errorf("%w: %q", errEncoding, enc)
	}
}

// classify turns a transport or body error into the client's answer; nil
// means the client is gone and nothing should be written.
func (p *Proxy) classify(ctx context.Context, err error) *apierr.Error {
	var ae *apierr.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(context.Cause(ctx), errUpstreamTimeout):
		return apierr.Wrap(errUpstreamTimeout, http.StatusGatewayTimeout, "upstream_timeout", msgTimeout)
	case ctx.Err() != nil:
		return nil
	case errors.Is(err, errTooLarge):
		return apierr.Wrap(err, http.StatusBadGateway, "upstream_too_large", msgTooLarge)
	case errors.As(err, &oe) && oe.Op == "dial":
		return apierr.Wrap(err, http.StatusBadGateway, "upstream_unavailable", msgUnavailable)
	case isTimeout(err):
		return apierr.Wrap(err, http.StatusGatewayTimeout, "upstream_timeout", msgTimeout)
	default:
		return apierr.Wrap(err, http.StatusBadGateway, "upstream_unavailable", msgUnavailable)
	}
}

// errorHandler answers for the ReverseProxy when the vendor could not be
// reached, a budget refused the call, or modifyResponse refused the
// vendor's answer. Requests waiting for the same answer get the same
// error.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	e := p.classify(r.Context(), err)
	if st.bodyOver != nil && st.bodyOver.Load() {
		// The client's body went past the limit while it was streamed:
		// the vendor saw at most the limit, the client gets 413.
		e = bodyTooLarge(st.maxBody, r.Method)
		e.Err = errBodyTooLarge
	}
	if e == nil {
		st.clientGone = true
		return
	}
	st.code, st.cause = e.Code, e.Err
	if st.cause == nil {
		st.cause = err
	}
	var force http.Header
	var rf *refusal
	if errors.As(err, &rf) {
		force = rf.header
	}
	a := errorAnswer(e, force)
	if st.flight != nil {
		p.flights.finish(st.flight, a)
	}
	// Headers of a vendor answer are never copied before this point;
	// start from a clean map anyway.
	clear(w.Header())
	writeAnswer(w, a, r.Method)
}

// retryAfter converts a vendor Retry-After (seconds or an HTTP date) to
// whole seconds, at least 1 when the vendor sent one, at most a day.
func retryAfter(v string, now time.Time) int {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	secs := 1
	if n, err := strconv.Atoi(v); err == nil {
		secs = n
	} else if t, err := http.ParseTime(v); err == nil {
		secs = int(t.Sub(now).Round(time.Second) / time.Second)
	}
	return min(max(secs, 1), 86400)
}

// vendorRetryAfter is how long the vendor asked to wait after a 429, in
// whole seconds: Retry-After, else X-RateLimit-Reset (Unix seconds, or
// seconds from now when small), else 1.
func vendorRetryAfter(h http.Header, now time.Time) int {
	if s := retryAfter(h.Get("Retry-After"), now); s > 0 {
		return s
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			if n > 1_000_000_000 {
				n -= now.Unix()
			}
			return int(min(max(n, 1), 86400))
		}
	}
	return 1
}

// filterResponseHeaders drops what must not reach the browser: cookies,
// CORS and other headers that would act on tickgate's origin, and any
// header holding a key. Link keeps working when the key only sat in the
// key parameter of vendor URLs (they are rewritten to /api/{name}/...).
func (st *state) filterResponseHeaders(h http.Header) {
next:
	for k, vv := range h {
		if dropResponseHeader(k) {
			delete(h, k)
			continue
		}
		ck := http.CanonicalHeaderKey(k)
		if st.scrub.containsKeyFold(k) {
			delete(h, k)
			continue
		}
		if ck == "Location" {
			continue // rewriteLocation made it safe
		}
		for i, v := range vv {
			if ck == "Link" || ck == "Content-Location" {
				nv := st.scrub.String(v)
				if strings.Count(nv, redacted) > strings.Count(v, redacted) {
					delete(h, k)
					continue next
				}
				vv[i] = nv
				continue
			}
			if st.scrub.containsKey(v) {
				delete(h, k)
				continue next
			}
		}
	}
}

func dropResponseHeader(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Set-Cookie", "Set-Cookie2", "Strict-Transport-Security", "Alt-Svc", "Clear-Site-Data", "Refresh",
		"Public-Key-Pins", "Public-Key-Pins-Report-Only", "Content-Security-Policy", "Content-Security-Policy-Report-Only",
		"Report-To", "Reporting-Endpoints", "Nel", "Www-Authenticate", "Proxy-Authenticate", "Accept-Ranges",
		"Timing-Allow-Origin", "Origin-Agent-Cluster", "Trailer", "Connection", "Keep-Alive", "Proxy-Connection",
		"Te", "Transfer-Encoding", "Upgrade":
		return true
	}
	return hasPrefixFold(k, "Access-Control-") || hasPrefixFold(k, "Cross-Origin-") || hasPrefixFold(k, "Sec-")
}

// rewriteLocation maps a Location under the upstream's base URL to the
// proxy's own path /api/{name}/..., without the key parameter, so that a
// browser following it comes back through the proxy. A Location anywhere
// else, or one that carries the key outside the key parameter, is an
// error: for a redirect the caller refuses the answer (following it would
// hand the browser the key or another host), otherwise it drops the
// header.
func (st *state) rewriteLocation(res *http.Response) error {
	locs := res.Header["Location"]
	if len(locs) == 0 {
		return nil
	}
	if len(locs) > 1 {
		return fmt.Errorf("%w: %d Location headers", errRedirectHost, len(locs))
	}
	loc, err := res.Request.URL.Parse(locs[0])
	if err != nil {
		return fmt.Errorf("%w: unparsable Location", errRedirectHost)
	}
	u := st.u
	path := loc.EscapedPath()
	rest, under := strings.CutPrefix(path, u.basePath)
	if !strings.EqualFold(loc.Scheme, u.base.Scheme) || !strings.EqualFold(loc.Host, u.base.Host) ||
		!under || (rest != "" && rest[0] != '/') {
		return errRedirectHost
	}
	var b strings.Builder
	b.WriteString(u.prefix)
	b.WriteString(rest)
	if q := removeParam(loc.RawQuery, u.slots...); q != "" {
		b.WriteByte('?')
		b.WriteString(q)
	}
	if loc.Fragment != "" {
		b.WriteByte('#')
		b.WriteString(loc.EscapedFragment())
	}
	out := b.String()
	if st.scrub.containsKey(out) || (loc.User != nil && st.scrub.containsKey(loc.User.String())) {
		return errRedirectKey
	}
	res.Header["Location"] = []string{out}
	return nil
}

// responseWriter stands between the ReverseProxy and the real writer. It
// keeps the proxied headers apart until the status is written, so that
//   - headers already set by tickgate's middleware (security headers,
//     X-Request-Id, X-RateLimit-*) win over the vendor's;
//   - 1xx interim answers from the vendor (103 Early Hints and the like,
//     which ReverseProxy would copy through unscrubbed) are dropped;
//   - the status is known for the log.
type responseWriter struct {
	w      http.ResponseWriter
	h      http.Header
	force  http.Header // replace what the middleware set (the budget's X-RateLimit-*)
	status int
}

func (rw *responseWriter) Header() http.Header { return rw.h }

func (rw *responseWriter) WriteHeader(code int) {
	if rw.status != 0 || code < 200 {
		return
	}
	rw.status = code
	dst := rw.w.Header()
	for k, vv := range rw.h {
		if _, set := dst[k]; !set {
			dst[k] = vv
		}
	}
	for k, vv := range rw.force {
		dst[k] = vv
	}
	rw.w.WriteHeader(code)
}

func (rw *responseWriter) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	return rw.w.Write(b)
}

// FlushError lets ReverseProxy stream (http.ResponseController finds it).
func (rw *responseWriter) FlushError() error {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(rw.w).Flush()
}
