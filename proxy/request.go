package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/logging"
)

// maxRetryBody is the largest request body kept in memory so that the
// request can be sent again after a 401/403 and a key refresh; larger
// bodies are streamed and such requests are not retried.
const maxRetryBody = 64 << 10

// rewrite builds the upstream request. It runs after ReverseProxy removed
// the hop-by-hop headers (including those the client named in
// Connection) and Forwarded/X-Forwarded-*, so nothing the client sent can
// remove what is added here.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	st := stateFrom(pr.In.Context())
	out := pr.Out
	u := st.u
	out.URL = &url.URL{Scheme: u.base.Scheme, Host: u.base.Host, Path: u.basePath + st.path}
	out.Host = ""
	stripRequestHeaders(out.Header, u.slots...)
	// tickgate's request id follows the request to the vendor even when
	// the browser named X-Request-Id in Connection (which made
	// ReverseProxy drop the copy the middleware had set).
	if id := logging.RequestID(pr.In.Context()); id != "" {
		out.Header["X-Request-Id"] = []string{id}
	}
	for k, v := range u.headers {
		out.Header[k] = v
	}
	st.inject(out)
}

// inject puts the keys where the upstream wants them and sets the query.
func (st *state) inject(out *http.Request) {
	u := st.u
	if len(u.keys) == 1 && u.keys[0].kind == "query" {
		// The common case, without a second copy of the query.
		ks := u.keys[0]
		esc := url.QueryEscape(st.keys[0].Reveal())
		var b strings.Builder
		b.Grow(len(st.query) + len(ks.nameEsc) + len(esc) + 2)
		if st.query != "" {
			b.WriteString(st.query)
			b.WriteByte('&')
		}
		b.WriteString(ks.nameEsc)
		b.WriteByte('=')
		b.WriteString(esc)
		out.URL.RawQuery = b.String()
		return
	}
	q := st.query
	for i, ks := range u.keys {
		k := st.keys[i].Reveal()
		switch ks.kind {
		case "query":
			if q != "" {
				q += "&"
			}
			q += ks.nameEsc + "=" + url.QueryEscape(k)
		case "header":
			out.Header[ks.name] = []string{k}
		case "bearer":
			out.Header["Authorization"] = []string{"Bearer " + k}
		}
	}
	out.URL.RawQuery = q
}

// stripRequestHeaders removes what a browser sends that a vendor must not
// see, in any spelling of the name: hop-by-hop headers and those named in
// Connection (again: ReverseProxy did it, this keeps it true if the order
// ever changes), credentials and cookies, Referer and Origin, forwarding
// headers, browser metadata (Sec-*), tickgate's own CSRF header, the key
// slot (also with _ for -), Accept-Encoding (see doc.go) and Range (a
// byte range of a scrubbed body could reveal a key piece by piece).
func stripRequestHeaders(h http.Header, slots ...string) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				delFold(h, name)
			}
		}
	}
	for k := range h {
		if dropRequestHeader(k, slots...) {
			delete(h, k)
		}
	}
}

func dropRequestHeader(k string, slots ...string) bool {
	ck := http.CanonicalHeaderKey(k)
	switch ck {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Cookie", "Cookie2", "Authorization", "Proxy-Authorization", "Proxy-Authenticate",
		"Referer", "Origin", "Forwarded", "Via",
		"X-Real-Ip", "X-Client-Ip", "Client-Ip", "True-Client-Ip", "Cf-Connecting-Ip", "Fastly-Client-Ip", "X-Cluster-Client-Ip",
		"X-Csrf", "Accept-Encoding", "Range", "If-Range":
		return true
	}
	if hasPrefixFold(k, "X-Forwarded-") || hasPrefixFold(k, "Sec-") || hasPrefixFold(k, "Proxy-") {
		return true
	}
	for _, slot := range slots {
		if equalHeaderName(k, slot) {
			return true
		}
	}
	for _, o := range overrideHeaders {
		if equalHeaderName(k, o) {
			return true
		}
	}
	return false
}

// overrideHeaders let many server frameworks replace the request's method
// (Rails, Express, Google APIs) or path (IIS, Symfony, Zend): forwarded,
// they would take a browser past the route allowlist.
var overrideHeaders = []string{
	"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
	"X-Original-Url", "X-Rewrite-Url",
}

// delFold deletes every header whose name equals name in any case.
func delFold(h http.Header, name string) {
	for k := range h {
		if equalHeaderName(k, name) {
			delete(h, k)
		}
	}
}

// equalHeaderName compares header names ignoring case and treating _ as
// - (CGI-style servers merge X_Api_Key into X-Api-Key).
func equalHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if ca == '_' {
			ca = '-'
		}
		if cb == '_' {
			cb = '-'
		}
		if toLowerASCII(ca) != toLowerASCII(cb) {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// isHopByHop reports whether the canonical name is a hop-by-hop header.
func isHopByHop(ck string) bool { return config.HopByHop(ck) }

// filterQuery returns the client's raw query without the key parameters
// (any case). ok is false for a query that cannot be forwarded safely: a
// bad escape, a control character, or a semicolon (which some servers
// treat as a separator: it could smuggle a second key parameter). Pairs
// with characters that are not valid in a query are re-encoded.
func filterQuery(raw string, slots ...string) (string, bool) {
	if raw == "" {
		return "", true
	}
	changed := false
	var b strings.Builder
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			changed = true
			continue
		}
		if strings.IndexByte(pair, ';') >= 0 || hasCtl(pair) {
			return "", false
		}
		name, val, hasVal := strings.Cut(pair, "=")
		dn, err := url.QueryUnescape(name)
		if err != nil {
			return "", false
		}
		dv, err := url.QueryUnescape(val)
		if err != nil || hasCtl(dn) || hasCtl(dv) {
			return "", false
		}
		if isSlotParam(pair, slots...) {
			changed = true
			continue
		}
		if !validQueryPair(pair) {
			changed = true
			pair = url.QueryEscape(dn)
			if hasVal {
				pair += "=" + url.QueryEscape(dv)
			}
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pair)
	}
	if !changed {
		return raw, true
	}
	return b.String(), true
}

// validQueryPair reports whether s has only characters RFC 3986 allows in
// a query (escapes were checked by the caller).
func validQueryPair(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$'()*+,=:@/?%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func hasCtl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// validHeaderValue reports whether v can go into a header line: no CR,
// LF, NUL or other control character except tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validToken reports whether s is an RFC 9110 token (header names,
// methods).
func validToken(s string) bool { return config.ValidToken(s) }

// bufferBody reads a small request body into memory so the request can
// be retried after a key refresh; a large one is streamed (no retry).
func (st *state) bufferBody(r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil
	}
	if r.ContentLength > maxRetryBody {
		st.noRetry = true
		return nil
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxRetryBody+1))
	if err != nil {
		return err
	}
	if len(buf) > maxRetryBody {
		st.noRetry = true
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
		return nil
	}
	st.body = buf
	r.ContentLength = int64(len(buf))
	r.Body = io.NopCloser(bytes.NewReader(buf))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	if len(buf) == 0 {
		r.Body = http.NoBody
	}
	r.TransferEncoding = nil
	return nil
}
