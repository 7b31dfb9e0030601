package frontend

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tickgate/tickgate/apierr"
)

// ContentSecurityPolicy is the policy the page is written for: nothing
// inline, everything from the page's own origin, WebSockets to any host
// (narrow connect-src to the exact wss:// origin where it is known). The
// server's security middleware should send it (DESIGN 9); Handler adds it
// only to responses that have no policy yet, so a stricter one set earlier
// in the chain wins.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; " +
	"base-uri 'none'; form-action 'self'"

// static holds the page. go:embed needs a package-level variable; it is
// read-only.
//
//go:embed static/index.html static/app.css static/app.js
var static embed.FS

// asset is one file ready to serve: the body and the headers that never
// change, computed once.
type asset struct {
	body        []byte
	contentType string
	etag        string
	length      string
}

// handler serves the embedded files; it is immutable after newHandler.
type handler struct {
	assets map[string]asset
}

// Handler returns the http.Handler for the demo page: GET and HEAD on "/"
// (the page) and its two static files, with a strong ETag and
// Cache-Control: no-cache, so browsers revalidate cheaply (304) and always
// run the files of the binary they talk to. Any other path answers 404 and
// any other method 405, both as contract JSON errors (DESIGN 1.4).
//
// Mount it for GET and HEAD on "/" and the static paths, or as the
// catch-all after the /auth, /api and /ws routes.
func Handler() http.Handler { return HandlerWith(Options{}) }

// Options adapt the page to the server's configuration. The zero value is
// the plain page of [Handler].
type Options struct {
	// SSOLoginPath, when set, is the local path that starts a login
	// through an identity provider (tickgate's GET /auth/oidc/login): the
	// page then offers "Sign in with SSO" next to the password form. It
	// must be an absolute path on this origin ("/auth/oidc/login"); any
	// other value is ignored, so the page can never link elsewhere.
	SSOLoginPath string

	// Feeds are the names of the server's feeds (/ws/{name}) the ticker
	// may use, the default first; with more than one the page offers a
	// choice. Names that are not valid feed names (lower-case letters,
	// digits, - and _) are dropped. Nil, with QuotePath empty too, means
	// the demo's feed and quote route; an empty non-nil slice means no
	// feed (the page hides the ticker).
	Feeds []string

	// QuotePath is the quote lookup's URL path on this origin, with
	// {symbol} where the symbol goes: "/api/demo/v1/quote/{symbol}". It
	// must start with /api/ and hold {symbol} once; otherwise (and when
	// empty, unless Feeds is nil) the page has no quote lookup.
	QuotePath string
}

// The attributes of the page's <html> element that carry Options to
// app.js: configuration as data in the document, which the strict CSP
// allows, rather than an inline script, which it does not.
const (
	ssoAttr   = "data-sso-login"
	feedsAttr = "data-feeds"
	quoteAttr = "data-quote-path"
)

// demoQuotePath is the demo upstream's quote route (marketsim's
// /v1/quote/{symbol}), the page's default.
const demoQuotePath = "/api/demo/v1/quote/{symbol}"

// HandlerWith is [Handler] for a page adapted by opts.
func HandlerWith(opts Options) http.Handler {
	h, err := newHandler(static, opts)
	if err != nil {
		// Unreachable with a correct build; answer instead of panicking.
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			apierr.Write(w, apierr.Wrap(err, http.StatusInternalServerError, "internal", "internal error"))
		})
	}
	return h
}

func newHandler(fsys fs.FS, opts Options) (*handler, error) {
	// Each URL path and the embedded file it serves. "/" is the page
	// itself; "/index.html" is an alias because people type it.
	routes := []struct {
		path, file, contentType string
	}{
		{"/", "static/index.html", "text/html; charset=utf-8"},
		{"/index.html", "static/index.html", "text/html; charset=utf-8"},
		// text/javascript is the type RFC 9239 settles on; browsers refuse
		// module scripts without a JavaScript MIME type.
		{"/app.js", "static/app.js", "text/javascript; charset=utf-8"},
		{"/app.css", "static/app.css", "text/css; charset=utf-8"},
	}
	h := &handler{assets: make(map[string]asset, len(routes))}
	for _, r := range routes {
		body, err := fs.ReadFile(fsys, r.file)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrAssetMissing, r.file, err)
		}
		if r.file == "static/index.html" {
			body = withAttrs(body, pageAttrs(opts))
		}
		sum := sha256.Sum256(body)
		h.assets[r.path] = asset{
			body:        body,
			contentType: r.contentType,
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`,
			length:      strconv.Itoa(len(body)),
		}
	}
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.URL.Path]
	if !ok {
		apierr.Respond(w, http.StatusNotFound, "not_found", "not found")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		apierr.Respond(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
		return
	}

	hdr := w.Header()
	hdr.Set("ETag", a.etag)
	// no-cache means "store, but ask first": the file names carry no
	// version, so a long max-age would keep old code after an upgrade.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if hdr.Get("Content-Security-Policy") == "" {
		hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	}
	if etagMatches(r.Header.Values("If-None-Match"), a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Content-Length", a.length)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(a.body) // a client that went away is not our error
}

// etagMatches reports whether an If-None-Match header (possibly repeated,
// each a comma list) names etag or "*". It uses the weak comparison RFC 9110
// section 13.1.2 asks for, so W/"x" matches "x". Ranges are not supported on
// purpose: the files are small, and a bad Range must not produce a non-JSON
// error.
func etagMatches(headers []string, etag string) bool {
	for _, header := range headers {
		for _, tag := range strings.Split(header, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" {
				return true
			}
			tag = strings.TrimPrefix(tag, "W/")
			if tag != "" && tag == etag {
				return true
			}
		}
	}
	return false
}

// pageAttrs returns the <html> attributes for opts, in a fixed order: only
// values that pass their checks, so the page can never be pointed
// elsewhere.
func pageAttrs(opts Options) [][2]string {
	var attrs [][2]string
	if localPath(opts.SSOLoginPath) {
		attrs = append(attrs, [2]string{ssoAttr, opts.SSOLoginPath})
	}
	feeds := make([]string, 0, len(opts.Feeds))
	for _, f := range opts.Feeds {
		if feedName(f) && !slices.Contains(feeds, f) {
			feeds = append(feeds, f)
		}
	}
	quote := opts.QuotePath
	if opts.Feeds == nil && quote == "" {
		feeds, quote = []string{"demo"}, demoQuotePath
	}
	attrs = append(attrs, [2]string{feedsAttr, strings.Join(feeds, " ")})
	if !quotePath(quote) {
		quote = ""
	}
	return append(attrs, [2]string{quoteAttr, quote})
}

// withAttrs writes attrs into the page's <html> start tag in place of the
// ones it has (index.html carries the demo's, so the file on its own is a
// working page); the ETag is computed afterwards, so pages for different
// settings never share a cached copy.
func withAttrs(page []byte, attrs [][2]string) []byte {
	const open = `<html lang="en"`
	i := bytes.Index(page, []byte(open))
	if i < 0 {
		return page
	}
	end := bytes.IndexByte(page[i:], '>')
	if end < 0 {
		return page
	}
	var b strings.Builder
	b.WriteString(open)
	for _, a := range attrs {
		b.WriteString(" " + a[0] + `="` + html.EscapeString(a[1]) + `"`)
	}
	b.WriteByte('>')
	out := make([]byte, 0, len(page)+b.Len())
	out = append(out, page[:i]...)
	out = append(out, b.String()...)
	return append(out, page[i+end+1:]...)
}

// feedName is config's rule for feed names.
func feedName(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[0] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// quotePath accepts a local /api/ path with {symbol} exactly once.
func quotePath(p string) bool {
	return strings.HasPrefix(p, "/api/") && strings.Count(p, "{symbol}") == 1 &&
		localPath(strings.Replace(p, "{symbol}", "S", 1))
}

// QuotePathFor returns the quote path template for upstream when one of
// its GET route patterns ends in "/quote/*" (the demo's "/v1/quote/*"
// gives "/api/demo/v1/quote/{symbol}"), or "". Servers use it to point
// the page at their own vendor's quote route.
func QuotePathFor(upstream string, routePaths []string) string {
	for _, p := range routePaths {
		if rest, ok := strings.CutSuffix(p, "/quote/*"); ok {
			if t := "/api/" + upstream + rest + "/quote/{symbol}"; feedName(upstream) && quotePath(t) {
				return t
			}
		}
	}
	return ""
}

// localPath accepts "/a/b" paths of letters, digits and -_./ only: no
// scheme, no host ("//evil"), no query, nothing to escape.
func localPath(p string) bool {
	if len(p) < 2 || len(p) > 200 || p[0] != '/' || p[1] == '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && !strings.ContainsRune("-_./", rune(c)) {
			return false
		}
	}
	return true
}
