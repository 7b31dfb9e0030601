package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

// newTransport returns the default vendor transport: a clone of
// http.DefaultTransport with every timeout explicit. responseHeader is at
// least the longest upstream timeout, so that the per-request deadline is
// what normally fires.
func newTransport(responseHeader time.Duration) *http.Transport {
	t, ok := http.DefaultTransport.(*http.Transport)
	if ok {
		t = t.Clone()
	} else {
		t = &http.Transport{}
	}
	t.Proxy = nil // an HTTP_PROXY would see plain-http URLs, key included
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = responseHeader
	t.ExpectContinueTimeout = time.Second
	t.IdleConnTimeout = 90 * time.Second
	// Go's default of 2 idle connections per host makes most requests
	// dial under load (DESIGN section 8).
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.MaxResponseHeaderBytes = 64 << 10
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	t.ForceAttemptHTTP2 = true
	return t
}

// retryTransport sends one request to the vendor and, when the vendor
// refuses the key (401/403), asks the secrets cache for a fresh value and
// sends the request once more with it. This is how a key rotated in the
// secrets store takes effect without a restart or a failed user request.
type retryTransport struct{ p *Proxy }

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st := stateFrom(req.Context())
	if st == nil {
		return nil, errors.New("proxy: request without forwarding state")
	}
	res, err := t.attempt(st, req)
	if err != nil || (res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusForbidden) {
		return res, err
	}
	ctx := req.Context()
	u := st.u
	fresh, ierr := t.p.secrets.Invalidate(ctx, u.secret, st.key)
	switch {
	case ierr != nil:
		if ctx.Err() == nil {
			t.p.log.LogAttrs(ctx, slog.LevelWarn, "upstream refused the key; re-reading it failed",
				slog.String("upstream", u.name), slog.String("secret", u.secret), slog.Int("status", res.StatusCode),
				slog.String("err", st.safeErr(ierr)))
		}
		return res, nil
	case fresh.Equal(st.key) || fresh.IsZero():
		t.p.log.LogAttrs(ctx, slog.LevelWarn, "upstream refused the key; no newer value",
			slog.String("upstream", u.name), slog.String("secret", u.secret), slog.Int("status", res.StatusCode))
		return res, nil
	case !validHeaderValue(fresh.Reveal()):
		t.p.log.LogAttrs(ctx, slog.LevelError, "upstream key unusable",
			slog.String("upstream", u.name), slog.String("secret", u.secret), slog.String("err", errBadKey.Error()))
		return res, nil
	case st.noRetry:
		t.p.log.LogAttrs(ctx, slog.LevelWarn, "upstream refused the key; new value read, request body too large to retry",
			slog.String("upstream", u.name), slog.String("secret", u.secret))
		return res, nil
	}
	t.p.log.LogAttrs(ctx, slog.LevelInfo, "upstream refused the key; retrying with the new value",
		slog.String("upstream", u.name), slog.String("secret", u.secret))
	drain(res)
	// Scrub both values from now on: the vendor may echo either.
	st.scrub = u.scrubberFor(st.key, fresh)
	st.key = fresh
	retry := req.Clone(ctx)
	if st.body != nil {
		retry.Body = io.NopCloser(bytes.NewReader(st.body))
	}
	st.inject(retry)
	return t.attempt(st, retry)
}

// attempt sends req once and records the metrics of that attempt.
func (t *retryTransport) attempt(st *state, req *http.Request) (*http.Response, error) {
	st.attempts++
	start := time.Now()
	res, err := t.p.base.RoundTrip(req)
	st.u.duration.Observe(time.Since(start).Seconds())
	code := ""
	switch {
	case err == nil:
		code = strconv.Itoa(res.StatusCode)
	case errors.Is(context.Cause(req.Context()), errUpstreamTimeout) || isTimeout(err):
		code = "timeout"
	case req.Context().Err() != nil:
		code = "canceled"
	default:
		code = "error"
	}
	t.p.m.UpstreamRequests.WithLabelValues(st.u.name, code).Inc()
	return res, err
}

// drain discards a small body whose length is known, so the connection
// can be reused, and closes it. A body of unknown length is only closed:
// reading it could wait for a slow vendor until the timeout.
func drain(res *http.Response) {
	if res.ContentLength >= 0 && res.ContentLength <= 16<<10 {
		_, _ = io.CopyN(io.Discard, res.Body, res.ContentLength)
	}
	_ = res.Body.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
