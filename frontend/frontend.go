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
}

// ssoAttr is the attribute of the page's <html> element that carries
// Options.SSOLoginPath to app.js: configuration as data in the document,
// which the strict CSP allows, rather than an inline script, which it
// does not.
const ssoAttr = "data-sso-login"

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
			body = withSSO(body, opts.SSOLoginPath)
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

// withSSO marks the page's <html> element with the SSO login path when it
// is a plain local path; the ETag is computed afterwards, so a page with
// and one without the link never share a cached copy.
func withSSO(page []byte, path string) []byte {
	if !localPath(path) {
		return page
	}
	const open = `<html lang="en">`
	i := bytes.Index(page, []byte(open))
	if i < 0 {
		return page
	}
	attr := ` ` + ssoAttr + `="` + html.EscapeString(path) + `"`
	out := make([]byte, 0, len(page)+len(attr))
	out = append(out, page[:i+len(open)-1]...)
	out = append(out, attr...)
	return append(out, page[i+len(open)-1:]...)
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
