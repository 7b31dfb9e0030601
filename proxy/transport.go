package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/tickgate/tickgate/secrets"
)

// newTransport returns the default vendor transport: a clone of
// http.DefaultTransport with every timeout explicit. responseHeader is at
// least the longest upstream timeout, so that the per-request deadline is
// what normally fires.
func newTransport(responseHeader time.Duration, rootCAs *x509.CertPool) *http.Transport {
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
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: rootCAs}
	t.ForceAttemptHTTP2 = true
	return t
}

// retryTransport sends one request to the vendor and, when the vendor
// refuses the key (401/403, also when reported inside a 200 body), asks
// the secrets cache for fresh values and sends the request once more
// with them. This is how a key rotated in the secrets store takes effect
// without a restart or a failed user request.
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
	fresh := make([]secrets.Value, len(st.keys))
	changed := false
	for i, ks := range u.keys {
		v, ierr := t.p.secrets.Invalidate(ctx, ks.secret, st.keys[i])
		switch {
		case ierr != nil:
			if ctx.Err() == nil {
				t.p.log.LogAttrs(ctx, slog.LevelWarn, "upstream refused the key; re-reading it failed",
					slog.String("upstream", u.name), slog.String("secret", ks.secret), slog.Int("status", res.StatusCode),
					slog.String("err", st.safeErr(ierr)))
			}
			return res, nil
		case v.IsZero():
			v = st.keys[i]
		case !validHeaderValue(v.Reveal()):
			t.p.log.LogAttrs(ctx, slog.LevelError, "upstream key unusable",
				slog.String("upstream", u.name), slog.String("secret", ks.secret), slog.String("err", errBadKey.Error()))
			return res, nil
		}
		if !v.Equal(st.keys[i]) {
			changed = true
		}
		fresh[i] = v
	}
	secretAttr := slog.String("secret", u.account)
	if len(u.keys) > 1 {
		secretAttr = slog.Any("secrets", secretNames(u))
	}
	switch {
	case !changed:
		t.p.log.LogAttrs(ctx, slog.LevelWarn, "upstream refused the key; no newer value",
			slog.String("upstream", u.name), secretAttr, slog.Int("status", res.StatusCode))
		return res, nil
	case st.noRetry:
		t.p.log.LogAttrs(ctx, slog.LevelWarn, "upstream refused the key; new value read, request body too large to retry",
			slog.String("upstream", u.name), secretAttr)
		return res, nil
	}
	t.p.log.LogAttrs(ctx, slog.LevelInfo, "upstream refused the key; retrying with the new value",
		slog.String("upstream", u.name), secretAttr)
	drain(res)
	// Scrub old and new values from now on: the vendor may echo either.
	st.scrub = u.scrubberFor(append(slices.Clip(st.keys), fresh...)...)
	st.keys = fresh
	st.keyVersion = t.p.keyVersion(u)
	retry := req.Clone(ctx)
	if st.body != nil {
		retry.Body = io.NopCloser(bytes.NewReader(st.body))
	}
	st.inject(retry)
	return t.attempt(st, retry)
}

func secretNames(u *upstream) []string {
	out := make([]string, len(u.keys))
	for i, ks := range u.keys {
		out[i] = ks.secret
	}
	return out
}

// attempt sends req once, after the account's cool-down and budget allow
// it, looks for an error inside a small 200 body when the upstream is
// configured for that, and records the metrics of the attempt.
func (t *retryTransport) attempt(st *state, req *http.Request) (*http.Response, error) {
	if err := t.p.admit(req.Context(), st); err != nil {
		return nil, err
	}
	st.attempts++
	start := time.Now()
	res, err := t.p.base.RoundTrip(req)
	if err == nil {
		st.inspectBody(res)
	}
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
