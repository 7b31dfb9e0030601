package frontend

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// serve runs one request through Handler.
func serve(t testing.TB, method, target string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec
}

func readStatic(t *testing.T, name string) []byte {
	t.Helper()
	b, err := static.ReadFile("static/" + name)
	if err != nil {
		t.Fatalf("read embedded %s: %v", name, err)
	}
	return b
}

func TestHandlerServesAssets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path string
		file         string
		mediaType    string
	}{
		{http.MethodGet, "/", "index.html", "text/html"},
		{http.MethodGet, "/?next=x", "index.html", "text/html"},
		{http.MethodGet, "/index.html", "index.html", "text/html"},
		{http.MethodGet, "/app.js", "app.js", "text/javascript"},
		{http.MethodGet, "/app.css", "app.css", "text/css"},
		{http.MethodHead, "/", "index.html", "text/html"},
		{http.MethodHead, "/app.js", "app.js", "text/javascript"},
		{http.MethodHead, "/app.css", "app.css", "text/css"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			rec := serve(t, tt.method, tt.path, nil)
			want := readStatic(t, tt.file)
			if got, want := rec.Code, http.StatusOK; got != want {
				t.Fatalf("status = %d, want %d", got, want)
			}
			mt, params, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
			if err != nil {
				t.Fatalf("Content-Type %q: %v", rec.Header().Get("Content-Type"), err)
			}
			if mt != tt.mediaType || params["charset"] != "utf-8" {
				t.Errorf("Content-Type = %q, want %s; charset=utf-8", rec.Header().Get("Content-Type"), tt.mediaType)
			}
			if got, want := rec.Header().Get("Cache-Control"), "no-cache"; got != want {
				t.Errorf("Cache-Control = %q, want %q", got, want)
			}
			if etag := rec.Header().Get("ETag"); !regexp.MustCompile(`^"[A-Za-z0-9_-]{16,}"$`).MatchString(etag) {
				t.Errorf("ETag = %q, want a strong quoted tag", etag)
			}
			if got, want := rec.Header().Get("X-Content-Type-Options"), "nosniff"; got != want {
				t.Errorf("X-Content-Type-Options = %q, want %q", got, want)
			}
			if got, want := rec.Header().Get("Content-Length"), len(want); got != strconv.Itoa(want) {
				t.Errorf("Content-Length = %q, want %d", got, want)
			}
			body := rec.Body.Bytes()
			if tt.method == http.MethodHead {
				if len(body) != 0 {
					t.Errorf("HEAD body has %d bytes, want none", len(body))
				}
				return
			}
			if !bytes.Equal(body, want) {
				t.Errorf("body differs from embedded %s", tt.file)
			}
		})
	}
}

func TestHandlerETagsDiffer(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, p := range []string{"/", "/app.js", "/app.css"} {
		etag := serve(t, http.MethodGet, p, nil).Header().Get("ETag")
		if other, dup := seen[etag]; dup {
			t.Errorf("%s and %s share ETag %s", p, other, etag)
		}
		seen[etag] = p
	}
	if a, b := serve(t, http.MethodGet, "/", nil).Header().Get("ETag"),
		serve(t, http.MethodGet, "/index.html", nil).Header().Get("ETag"); a != b {
		t.Errorf("/ and /index.html ETags differ: %s vs %s", a, b)
	}
}

func TestHandlerConditionalGet(t *testing.T) {
	t.Parallel()
	etag := serve(t, http.MethodGet, "/app.js", nil).Header().Get("ETag")
	weak := "W/" + etag
	tests := []struct {
		name        string
		method      string
		ifNoneMatch []string
		want        int
	}{
		{"same tag", http.MethodGet, []string{etag}, http.StatusNotModified},
		{"same tag HEAD", http.MethodHead, []string{etag}, http.StatusNotModified},
		{"weak form of same tag", http.MethodGet, []string{weak}, http.StatusNotModified},
		{"in a list", http.MethodGet, []string{`"old", ` + etag}, http.StatusNotModified},
		{"in a repeated header", http.MethodGet, []string{`"old"`, etag}, http.StatusNotModified},
		{"star", http.MethodGet, []string{"*"}, http.StatusNotModified},
		{"other tag", http.MethodGet, []string{`"old"`}, http.StatusOK},
		{"unquoted same value", http.MethodGet, []string{strings.Trim(etag, `"`)}, http.StatusOK},
		{"empty", http.MethodGet, []string{""}, http.StatusOK},
		{"garbage", http.MethodGet, []string{`,,W/,"`}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := serve(t, tt.method, "/app.js", http.Header{"If-None-Match": tt.ifNoneMatch})
			if got := rec.Code; got != tt.want {
				t.Fatalf("status = %d, want %d", got, tt.want)
			}
			if tt.want == http.StatusNotModified {
				if rec.Body.Len() != 0 {
					t.Errorf("304 has a body of %d bytes", rec.Body.Len())
				}
				if got := rec.Header().Get("ETag"); got != etag {
					t.Errorf("304 ETag = %q, want %q", got, etag)
				}
				if got, want := rec.Header().Get("Cache-Control"), "no-cache"; got != want {
					t.Errorf("304 Cache-Control = %q, want %q", got, want)
				}
			}
		})
	}
}

func TestHandlerIgnoresRange(t *testing.T) {
	t.Parallel()
	for _, r := range []string{"bytes=0-9", "bytes=999999-", "nonsense"} {
		rec := serve(t, http.MethodGet, "/app.css", http.Header{"Range": {r}})
		if got, want := rec.Code, http.StatusOK; got != want {
			t.Errorf("Range %q: status = %d, want %d", r, got, want)
		}
		if got, want := rec.Body.Len(), len(readStatic(t, "app.css")); got != want {
			t.Errorf("Range %q: body %d bytes, want the whole file (%d)", r, got, want)
		}
	}
}

// errorBody is the contract's error shape (DESIGN 1.4).
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeError(t *testing.T, rec *httptest.ResponseRecorder) errorBody {
	t.Helper()
	if mt, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type")); mt != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", rec.Header().Get("Content-Type"))
	}
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	var b errorBody
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("decode error body: %v", err)
	}
	return b
}

func TestHandlerNotFound(t *testing.T) {
	t.Parallel()
	paths := []string{
		"/favicon.ico",
		"/app.js/",
		"/APP.JS",
		"/static/app.js",
		"/static/index.html",
		"/frontend.go",
		"/index.htm",
		"/app.js.map",
		"//app.js",
		"/%2e%2e/go.mod",
		"/app.js%00",
		"/auth/login",
	}
	for _, p := range paths {
		for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
			t.Run(method+" "+p, func(t *testing.T) {
				t.Parallel()
				rec := serve(t, method, p, nil)
				if got, want := rec.Code, http.StatusNotFound; got != want {
					t.Fatalf("status = %d, want %d", got, want)
				}
				if method == http.MethodHead {
					// The server drops HEAD bodies; the recorder does not.
					return
				}
				b := decodeError(t, rec)
				if got, want := b.Error.Code, "not_found"; got != want {
					t.Errorf("code = %q, want %q", got, want)
				}
				if b.Error.Message == "" {
					t.Error("message is empty")
				}
			})
		}
	}
}

func TestHandlerMethodNotAllowed(t *testing.T) {
	t.Parallel()
	methods := []string{
		http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodTrace, "PROPFIND",
	}
	for _, p := range []string{"/", "/app.js", "/app.css", "/index.html"} {
		for _, method := range methods {
			t.Run(method+" "+p, func(t *testing.T) {
				t.Parallel()
				rec := serve(t, method, p, nil)
				if got, want := rec.Code, http.StatusMethodNotAllowed; got != want {
					t.Fatalf("status = %d, want %d", got, want)
				}
				if got, want := rec.Header().Get("Allow"), "GET, HEAD"; got != want {
					t.Errorf("Allow = %q, want %q", got, want)
				}
				if got, want := decodeError(t, rec).Error.Code, "method_not_allowed"; got != want {
					t.Errorf("code = %q, want %q", got, want)
				}
			})
		}
	}
}

func TestHandlerCSP(t *testing.T) {
	t.Parallel()
	t.Run("added when missing", func(t *testing.T) {
		t.Parallel()
		rec := serve(t, http.MethodGet, "/", nil)
		if got := rec.Header().Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("CSP = %q, want %q", got, ContentSecurityPolicy)
		}
	})
	t.Run("earlier policy kept", func(t *testing.T) {
		t.Parallel()
		const strict = "default-src 'none'"
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Security-Policy", strict)
		Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if got := rec.Header().Values("Content-Security-Policy"); len(got) != 1 || got[0] != strict {
			t.Errorf("CSP = %q, want only %q", got, strict)
		}
	})
	t.Run("policy is strict", func(t *testing.T) {
		t.Parallel()
		for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "http:", "https:"} {
			for _, directive := range strings.Split(ContentSecurityPolicy, ";") {
				for _, token := range strings.Fields(directive) {
					if strings.Trim(token, "'") == strings.Trim(bad, "'") {
						t.Errorf("policy directive %q allows %s", strings.TrimSpace(directive), bad)
					}
				}
			}
		}
	})
}

func TestNewHandlerMissingAsset(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"static/index.html": {Data: []byte("<!doctype html>")},
		"static/app.css":    {Data: []byte("")},
	}
	if _, err := newHandler(fsys, Options{}); !errors.Is(err, ErrAssetMissing) {
		t.Fatalf("newHandler without app.js: err = %v, want ErrAssetMissing", err)
	}
	full := fstest.MapFS{
		"static/index.html": {Data: []byte("<!doctype html>")},
		"static/app.css":    {Data: []byte("")},
		"static/app.js":     {Data: []byte("")},
	}
	if _, err := newHandler(full, Options{}); err != nil {
		t.Fatalf("newHandler with all files: %v", err)
	}
}

// element is one start tag of index.html with its position in the tree.
type element struct {
	name      string
	attrs     map[string]string
	ancestors []string // ids of enclosing elements, outermost first
	text      string   // character data directly inside (scripts, styles)
}

// parseHTML reads the page with encoding/xml in its lenient HTML mode; the
// page is written so that this works (every non-void element closed).
func parseHTML(t *testing.T, page []byte) []*element {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(page))
	dec.Strict = false
	dec.AutoClose = xml.HTMLAutoClose
	dec.Entity = xml.HTMLEntity
	var (
		all   []*element
		stack []*element
	)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("parse index.html: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &element{name: strings.ToLower(tok.Name.Local), attrs: map[string]string{}}
			for _, a := range tok.Attr {
				name := strings.ToLower(a.Name.Local)
				if a.Name.Space != "" {
					name = strings.ToLower(a.Name.Space) + ":" + name
				}
				e.attrs[name] = a.Value
			}
			for _, p := range stack {
				if id := p.attrs["id"]; id != "" {
					e.ancestors = append(e.ancestors, id)
				}
			}
			all = append(all, e)
			stack = append(stack, e)
		case xml.EndElement:
			if len(stack) == 0 {
				t.Fatalf("unbalanced </%s>", tok.Name.Local)
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			}
		}
	}
	if len(stack) != 0 {
		t.Fatalf("unclosed <%s>", stack[len(stack)-1].name)
	}
	return all
}

func TestIndexHTML(t *testing.T) {
	t.Parallel()
	elems := parseHTML(t, readStatic(t, "index.html"))
	byID := map[string]*element{}
	for _, e := range elems {
		if id, ok := e.attrs["id"]; ok {
			if _, dup := byID[id]; dup {
				t.Errorf("duplicate id %q", id)
			}
			byID[id] = e
		}
	}

	t.Run("required ids", func(t *testing.T) {
		// DESIGN 6's stable ids, with the element kind and the form each
		// field must sit in.
		required := []struct{ id, tag, inside string }{
			{"login-form", "form", ""},
			{"username", "input", "login-form"},
			{"password", "input", "login-form"},
			{"quote-form", "form", ""},
			{"quote-symbol", "input", "quote-form"},
			{"quote-result", "", ""},
			{"ticker", "", ""},
			{"subscribe-form", "form", ""},
			{"subscribe-symbol", "input", "subscribe-form"},
			{"session-expiry", "", ""},
			{"logout", "button", ""},
		}
		for _, r := range required {
			e, ok := byID[r.id]
			if !ok {
				t.Errorf("no element with id %q", r.id)
				continue
			}
			if r.tag != "" && e.name != r.tag {
				t.Errorf("#%s is <%s>, want <%s>", r.id, e.name, r.tag)
			}
			if r.inside != "" && !contains(e.ancestors, r.inside) {
				t.Errorf("#%s is not inside #%s", r.id, r.inside)
			}
		}
		if got, want := byID["password"].attrs["type"], "password"; got != want {
			t.Errorf("#password type = %q, want %q", got, want)
		}
		if got := byID["logout"].attrs["type"]; got != "button" {
			t.Errorf("#logout type = %q, want button (not a form submit)", got)
		}
	})

	t.Run("no inline code or style", func(t *testing.T) {
		for _, e := range elems {
			for name, value := range e.attrs {
				if name == "style" {
					t.Errorf("<%s> has a style attribute", e.name)
				}
				if strings.HasPrefix(name, "on") {
					t.Errorf("<%s> has an event handler attribute %s", e.name, name)
				}
				if strings.HasPrefix(strings.ToLower(strings.TrimSpace(value)), "javascript:") {
					t.Errorf("<%s %s> uses a javascript: URL", e.name, name)
				}
			}
			switch e.name {
			case "script":
				if e.attrs["src"] == "" {
					t.Error("<script> without src")
				}
				if strings.TrimSpace(e.text) != "" {
					t.Errorf("<script src=%q> has inline content", e.attrs["src"])
				}
			case "style":
				t.Error("page has a <style> element")
			case "base":
				t.Error("page has a <base> element (CSP base-uri 'none')")
			}
		}
	})

	t.Run("inputs are labelled", func(t *testing.T) {
		labelled := map[string]bool{}
		for _, e := range elems {
			if e.name == "label" {
				labelled[e.attrs["for"]] = true
			}
		}
		for _, e := range elems {
			if e.name == "input" && !labelled[e.attrs["id"]] {
				t.Errorf("input #%s has no <label for>", e.attrs["id"])
			}
		}
	})

	t.Run("status regions are live", func(t *testing.T) {
		for _, id := range []string{"login-message", "quote-result", "connection-status", "ticker-message", "idle-text"} {
			e, ok := byID[id]
			if !ok {
				t.Errorf("no #%s", id)
				continue
			}
			if e.attrs["aria-live"] == "" && e.attrs["role"] != "status" && e.attrs["role"] != "alert" {
				t.Errorf("#%s is not a live region", id)
			}
		}
	})

	t.Run("referenced files are served", func(t *testing.T) {
		var refs []string
		for _, e := range elems {
			switch {
			case e.name == "script":
				if e.attrs["type"] != "module" {
					t.Errorf("<script src=%q> type = %q, want module", e.attrs["src"], e.attrs["type"])
				}
				refs = append(refs, e.attrs["src"])
			case e.name == "link" && e.attrs["rel"] == "stylesheet":
				refs = append(refs, e.attrs["href"])
			}
		}
		if len(refs) != 2 {
			t.Errorf("page references %q, want app.js and app.css", refs)
		}
		for _, ref := range refs {
			if !strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "//") {
				t.Errorf("reference %q is not same-origin absolute", ref)
				continue
			}
			if rec := serve(t, http.MethodGet, ref, nil); rec.Code != http.StatusOK {
				t.Errorf("GET %s = %d", ref, rec.Code)
			}
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestStaticFilesCSPSafe rejects code that a strict CSP blocks or that turns
// network data into markup. The words are banned anywhere in app.js,
// comments included, so a match is never explained away.
func TestStaticFilesCSPSafe(t *testing.T) {
	t.Parallel()
	js := string(readStatic(t, "app.js"))
	banned := []struct{ pattern, why string }{
		{`innerHTML`, "markup from strings (use textContent / createElement)"},
		{`outerHTML`, "markup from strings"},
		{`insertAdjacentHTML`, "markup from strings"},
		{`createContextualFragment`, "markup from strings"},
		{`document\.write`, "markup from strings"},
		{`\beval\s*\(`, "string evaluation (CSP blocks it)"},
		{`new\s+Function\b`, "string evaluation (CSP blocks it)"},
		{`set(Timeout|Interval)\s*\(\s*['"\x60]`, "string evaluation (CSP blocks it)"},
		{`\.style\b`, "inline style (CSP style-src 'self')"},
		{`cssText`, "inline style"},
		{`setAttribute\(\s*['"](style|on\w+)['"]`, "inline style or handler attribute"},
		{`\.on[a-z]+\s*=[^=]`, "event handler properties: use addEventListener"},
		{`localStorage|sessionStorage|indexedDB|document\.cookie`, "no browser storage (DESIGN 6)"},
		{`javascript:`, "javascript: URLs"},
		{`https?://`, "hard-coded origins: everything is same-origin"},
	}
	for _, b := range banned {
		re := regexp.MustCompile(b.pattern)
		if loc := re.FindStringIndex(js); loc != nil {
			line := strings.Count(js[:loc[0]], "\n") + 1
			t.Errorf("app.js:%d matches %q: %s", line, b.pattern, b.why)
		}
	}

	css := string(readStatic(t, "app.css"))
	for _, pattern := range []string{`@import`, `url\(`, `expression\(`} {
		if regexp.MustCompile(pattern).MatchString(css) {
			t.Errorf("app.css matches %q: no external or scripted resources", pattern)
		}
	}
}

// TestAppUsesContract checks that app.js speaks the contract's names
// (DESIGN 1.4, 1.5); the browser tests exercise the behaviour.
func TestAppUsesContract(t *testing.T) {
	t.Parallel()
	js := string(readStatic(t, "app.js"))
	for _, want := range []string{
		"'/auth/login'", "'/auth/session'", "'/auth/logout'", "'/api/'", "/ws/${", "'{symbol}'",
		"dataset?.feeds", "dataset?.quotePath",
		"'X-CSRF'", "'Retry-After'", "encodeURIComponent",
		"action: 'subscribe'", "action: 'unsubscribe'", "action: 'ping'",
		"case 'ready'", "case 'subscribed'", "case 'data'", "case 'status'", "case 'pong'", "case 'error'",
		"case 4001", "case 4008", "case 1013",
		"idle_expires_at", "textContent",
	} {
		if !strings.Contains(js, want) {
			t.Errorf("app.js does not contain %s", want)
		}
	}
}

func FuzzEtagMatches(f *testing.F) {
	const etag = `"abc"`
	for _, s := range []string{`"abc"`, `W/"abc"`, `*`, `"x", "abc"`, ``, `,`, `W/`, `"abc`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		got := etagMatches([]string{header}, etag)
		// A match needs the tag or a star as one list item.
		if got && !strings.Contains(header, etag) && !strings.Contains(header, "*") {
			t.Errorf("etagMatches(%q) = true without the tag or *", header)
		}
		// Appending the tag as another item always matches.
		if !etagMatches([]string{header + "," + etag}, etag) {
			t.Errorf("etagMatches(%q + tag) = false", header)
		}
	})
}

func BenchmarkHandler(b *testing.B) {
	h := Handler()
	for _, p := range []string{"/", "/app.js"} {
		b.Run(p, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, p, nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

// TestHandlerWithSSO checks that the page announces the SSO login path
// only when configured, only as a local path, and with its own ETag.
func TestHandlerWithSSO(t *testing.T) {
	t.Parallel()
	get := func(h http.Handler) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET / = %d", rec.Code)
		}
		return rec
	}
	plain := get(Handler())
	const bare = `<html lang="en" data-feeds="demo" data-quote-path="/api/demo/v1/quote/{symbol}">`
	if !strings.Contains(plain.Body.String(), bare) {
		t.Errorf("plain page has no %s", bare)
	}
	sso := get(HandlerWith(Options{SSOLoginPath: "/auth/oidc/login"}))
	if !strings.Contains(sso.Body.String(), `<html lang="en" data-sso-login="/auth/oidc/login" data-feeds="demo" data-quote-path="/api/demo/v1/quote/{symbol}">`) {
		t.Errorf("SSO page does not mark <html>:\n%.300s", sso.Body.String())
	}
	if plain.Header().Get("ETag") == sso.Header().Get("ETag") {
		t.Error("pages with and without SSO share an ETag")
	}
	if got, want := sso.Header().Get("Content-Length"), strconv.Itoa(sso.Body.Len()); got != want {
		t.Errorf("Content-Length = %s, body is %s bytes", got, want)
	}
	for _, bad := range []string{"https://evil.example/login", "//evil.example/x", "/a?next=x", `/a"><script>`, "relative", ""} {
		if body := get(HandlerWith(Options{SSOLoginPath: bad})).Body.String(); !strings.Contains(body, bare) {
			t.Errorf("SSOLoginPath %q was rendered", bad)
		}
	}
}

// TestHandlerFeedsAndQuote: the page is told the server's feeds and quote
// route, and only values that pass their checks reach it.
func TestHandlerFeedsAndQuote(t *testing.T) {
	get := func(opts Options) string {
		rec := httptest.NewRecorder()
		HandlerWith(opts).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET / = %d", rec.Code)
		}
		return rec.Body.String()
	}
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"zero value is the demo", Options{}, `<html lang="en" data-feeds="demo" data-quote-path="/api/demo/v1/quote/{symbol}">`},
		{"feeds in order, no quote", Options{Feeds: []string{"prices", "fx-1", "prices"}},
			`<html lang="en" data-feeds="prices fx-1" data-quote-path="">`},
		{"no feeds, no quote", Options{Feeds: []string{}}, `<html lang="en" data-feeds="" data-quote-path="">`},
		{"quote only", Options{QuotePath: "/api/acme/v2/last/{symbol}"},
			`<html lang="en" data-feeds="" data-quote-path="/api/acme/v2/last/{symbol}">`},
		{"bad names and paths dropped", Options{Feeds: []string{"Bad", "a b", `x"y`, "-x", "ok"}, QuotePath: "https://evil.example/{symbol}"},
			`<html lang="en" data-feeds="ok" data-quote-path="">`},
		{"quote outside /api", Options{Feeds: []string{"f"}, QuotePath: "/auth/{symbol}"}, `data-quote-path=""`},
		{"quote without symbol", Options{Feeds: []string{"f"}, QuotePath: "/api/u/quote"}, `data-quote-path=""`},
		{"quote with two symbols", Options{Feeds: []string{"f"}, QuotePath: "/api/u/{symbol}/{symbol}"}, `data-quote-path=""`},
		{"quote with markup", Options{Feeds: []string{"f"}, QuotePath: `/api/u/"><script>/{symbol}`}, `data-quote-path=""`},
	} {
		if body := get(tc.opts); !strings.Contains(body, tc.want) {
			t.Errorf("%s: page does not contain %s:\n%.300s", tc.name, tc.want, body)
		}
	}
	if a, b := get(Options{Feeds: []string{"a"}}), get(Options{Feeds: []string{"b"}}); a == b {
		t.Error("pages for different feeds are the same")
	}

	for _, tc := range []struct {
		upstream string
		paths    []string
		want     string
	}{
		{"demo", []string{"/v1/quotes", "/v1/quote/*"}, "/api/demo/v1/quote/{symbol}"},
		{"acme", []string{"/quote/*"}, "/api/acme/quote/{symbol}"},
		{"acme", []string{"/v1/last/*", "/v1/symbols"}, ""},
		{"acme", []string{"/v1/quote/*/x"}, ""},
		{"Bad Name", []string{"/v1/quote/*"}, ""},
		{"acme", []string{"/v1?x=/quote/*"}, ""},
		{"acme", nil, ""},
	} {
		if got := QuotePathFor(tc.upstream, tc.paths); got != tc.want {
			t.Errorf("QuotePathFor(%q, %q) = %q, want %q", tc.upstream, tc.paths, got, tc.want)
		}
	}
}
