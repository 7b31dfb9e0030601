package logging

import (
	"context"
	"encoding"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Redacted replaces whatever the Redactor removes.
const Redacted = "[redacted]"

// MinSecretLength is the shortest registered value the Redactor scrubs.
// Shorter values would match by chance in ordinary text and mangle every
// line; vendor keys are much longer (cmd/tickgate refuses keys under 8
// characters) and so are passwords worth the name.
const MinSecretLength = 6

// Redactor scrubs secrets from log records; see the package doc for
// what it removes. It is safe for concurrent use; Set may be called at
// any time (the secrets cache calls it on every refresh).
type Redactor struct {
	mu      sync.Mutex
	sources map[string][]string
	// known is every registered value in all its spellings, longest
	// first so a value containing another is replaced whole.
	known atomic.Pointer[[]string]
}

// NewRedactor returns a Redactor with no registered values.
func NewRedactor() *Redactor {
	r := &Redactor{sources: make(map[string][]string)}
	r.known.Store(&[]string{})
	return r
}

// Set replaces the values registered under source (e.g. "secrets",
// "demo_password", "oidc"). Empty values and values shorter than
// MinSecretLength are ignored. Set(source) with no values forgets them.
func (r *Redactor) Set(source string, values ...string) {
	var keep []string
	for _, v := range values {
		if len(v) >= MinSecretLength {
			keep = append(keep, v)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Equal(r.sources[source], keep) {
		// Unchanged (a periodic re-read of the same secrets): the
		// spellings are already known; rebuilding them is the costly part.
		return
	}
	if len(keep) == 0 {
		delete(r.sources, source)
	} else {
		r.sources[source] = keep
	}
	seen := make(map[string]bool)
	var all []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			all = append(all, s)
		}
	}
	for _, vs := range r.sources {
		for _, v := range vs {
			for _, f := range spellings(v) {
				add(f)
			}
		}
	}
	slices.SortFunc(all, func(a, b string) int { return len(b) - len(a) })
	r.known.Store(&all)
}

// credentialText matches credential-shaped text in free-form strings:
// header lines and JSON or map renderings of sensitive headers, bearer
// tokens, the session cookie (__Host-tickgate=..., tickgate=...), URL
// query parameters named like a key, token or OAuth code, and the
// password in a URL's user info (redis://:pw@host). Each alternative has
// one group that is kept; the rest of the match becomes Redacted.
var credentialText = regexp.MustCompile(`(?i)` +
	`((?:proxy-)?authorization|set-cookie|cookie|x-api-key|x-auth-token)["']?\s*[:=][\s\["']*[^\r\n"'\]]+` +
	`|(\bbearer\s+)[A-Za-z0-9._~+/=-]+` +
	`|((?:^|[?&;\s"'])(?:__Host-tickgate|tickgate|api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|id[_-]?token|client[_-]?secret|password|passwd|ticket)=)[^&;\s"'#]*` +
	`|([?&;](?:token|key|secret|sig|signature|code|code[_-]?verifier|session|session[_-]?id|sid|auth)=)[^&;\s"'#]*` +
	`|(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@`)

// Scrub returns s with every registered value and credential-shaped text
// replaced by Redacted.
func (r *Redactor) Scrub(s string) string {
	return r.scrub(s, *r.known.Load())
}

func (r *Redactor) scrub(s string, known []string) string {
	for _, v := range known {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, Redacted)
		}
	}
	if !mayHoldCredential(s) {
		return s
	}
	return credentialText.ReplaceAllStringFunc(s, func(m string) string {
		sm := credentialText.FindStringSubmatch(m)
		switch {
		case sm[1] != "":
			// Keep the header name and separator as written.
			return m[:len(m)-len(strings.TrimLeft(m[len(sm[1]):], "\"' \t:=["))] + Redacted
		case sm[5] != "":
			return sm[5] + Redacted + "@"
		}
		for _, g := range sm[2:5] {
			if g != "" {
				return g + Redacted
			}
		}
		return Redacted
	})
}

// mayHoldCredential is a cheap filter in front of credentialText, which
// costs microseconds: every alternative needs an '=', a URL with user
// info, or one of a few words.
func mayHoldCredential(s string) bool {
	if strings.IndexByte(s, '=') >= 0 || strings.IndexByte(s, '@') >= 0 && strings.Contains(s, "://") {
		return true
	}
	if strings.IndexByte(s, ':') >= 0 {
		for _, w := range [...]string{"authorization", "cookie", "x-api-key", "x-auth-token"} {
			if containsFold(s, w) {
				return true
			}
		}
	}
	return containsFold(s, "bearer")
}

// containsFold reports whether s contains the lower-case ASCII word sub,
// in any case.
func containsFold(s, sub string) bool {
	first := sub[0]
	for i := 0; i+len(sub) <= len(s); i++ {
		if c := s[i] | 0x20; c == first && strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// sensitiveKeys are attribute keys (lower case, '-' as '_') whose value
// is always replaced, whatever it is. "secret" and "key" are not among
// them: tickgate logs secret and rate-limit key names under those.
var sensitiveKeys = map[string]bool{
	"cookie": true, "cookies": true, "set_cookie": true,
	"authorization": true, "proxy_authorization": true,
	"password": true, "passwd": true, "pwd": true,
	"client_secret": true, "token": true, "access_token": true, "refresh_token": true, "id_token": true,
	"api_key": true, "apikey": true, "x_api_key": true, "x_auth_token": true,
	"session_id": true, "sessionid": true, "sid": true, "ticket": true,
	"x_csrf": true, "x_csrf_token": true, "csrf_token": true, "code_verifier": true,
}

// SensitiveKey reports whether an attribute or header named k always
// has its value redacted.
func SensitiveKey(k string) bool {
	k = strings.ReplaceAll(strings.ToLower(k), "-", "_")
	return sensitiveKeys[k] || strings.HasSuffix(k, "_password") || strings.HasSuffix(k, "_token")
}

// Wrap returns h with every record scrubbed and carrying the request id
// of its context.
//
// Attributes bound with Logger.With are scrubbed when bound, against the
// values registered at that time.
func (r *Redactor) Wrap(h slog.Handler) slog.Handler {
	return &handler{r: r, next: h}
}

type handler struct {
	r    *Redactor
	next slog.Handler
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	known := *h.r.known.Load()
	out := slog.NewRecord(rec.Time, rec.Level, h.r.scrub(rec.Message, known), rec.PC)
	hasID := false
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == RequestIDKey {
			hasID = true
		}
		out.AddAttrs(h.r.attr(a, known))
		return true
	})
	if id := RequestID(ctx); id != "" && !hasID {
		out.AddAttrs(slog.String(RequestIDKey, id))
	}
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	known := *h.r.known.Load()
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.r.attr(a, known)
	}
	return &handler{r: h.r, next: h.next.WithAttrs(clean)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{r: h.r, next: h.next.WithGroup(name)}
}

func (r *Redactor) attr(a slog.Attr, known []string) slog.Attr {
	a.Value = a.Value.Resolve()
	if SensitiveKey(a.Key) {
		if a.Value.Kind() == slog.KindString && a.Value.String() == "" {
			return a
		}
		return slog.String(a.Key, Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); s != "" {
			if t := r.scrub(s, known); t != s {
				a.Value = slog.StringValue(t)
			}
		}
	case slog.KindGroup:
		g := a.Value.Group()
		clean := make([]slog.Attr, len(g))
		for i, ga := range g {
			clean[i] = r.attr(ga, known)
		}
		a.Value = slog.GroupValue(clean...)
	case slog.KindAny:
		a.Value = r.anyValue(a.Value.Any(), known)
	}
	return a
}

func (r *Redactor) anyValue(v any, known []string) slog.Value {
	switch x := v.(type) {
	case nil:
		return slog.AnyValue(nil)
	case error:
		return slog.StringValue(r.scrub(errString(x), known))
	case http.Header:
		return r.header(x, known)
	case *http.Request:
		// A request has headers, cookies and a URL: only its method and
		// scrubbed path are worth a log line.
		if x == nil || x.URL == nil {
			return slog.StringValue("<nil>")
		}
		return slog.StringValue(x.Method + " " + r.scrub(x.URL.EscapedPath(), known))
	case *http.Cookie:
		if x == nil {
			return slog.StringValue("<nil>")
		}
		return slog.StringValue(x.Name + "=" + Redacted)
	case []*http.Cookie:
		names := make([]string, 0, len(x))
		for _, c := range x {
			if c != nil {
				names = append(names, c.Name+"="+Redacted)
			}
		}
		return slog.StringValue(strings.Join(names, "; "))
	case *url.URL:
		if x == nil {
			return slog.StringValue("<nil>")
		}
		return slog.StringValue(r.scrub(redactURL(x), known))
	case url.URL:
		return slog.StringValue(r.scrub(redactURL(&x), known))
	case []byte:
		return slog.StringValue(r.scrub(string(x), known))
	}
	// A byte slice of any named type (json.RawMessage): handlers write
	// its bytes, where fmt would print numbers.
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
		return slog.StringValue(r.scrub(string(rv.Bytes()), known))
	}
	// Anything else is kept as it is (the handler encodes it) unless its
	// text holds something to scrub; then the scrubbed text replaces it.
	// The text is checked as fmt, encoding/json (the JSON handler) and
	// MarshalText (the text handler) render it: they differ for
	// json.RawMessage fields and MarshalJSON or MarshalText methods.
	for _, s := range renderings(v) {
		if t := r.scrub(s, known); t != s {
			return slog.StringValue(t)
		}
	}
	return slog.AnyValue(v)
}

// renderings returns v as fmt's %+v, as JSON and as MarshalText output
// (those that succeed). A panicking method loses only its rendering.
func renderings(v any) []string {
	out := []string{fmt.Sprintf("%+v", v)}
	func() {
		defer func() { _ = recover() }()
		if b, err := json.Marshal(v); err == nil {
			out = append(out, string(b))
		}
	}()
	if tm, ok := v.(encoding.TextMarshaler); ok {
		func() {
			defer func() { _ = recover() }()
			if b, err := tm.MarshalText(); err == nil {
				out = append(out, string(b))
			}
		}()
	}
	return out
}

// errString renders err, turning a panic in a broken Error method into
// text rather than a lost log line.
func errString(err error) (s string) {
	defer func() {
		if p := recover(); p != nil {
			s = fmt.Sprintf("<error: Error method panicked: %T>", err)
		}
	}()
	return err.Error()
}

func (r *Redactor) header(h http.Header, known []string) slog.Value {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	attrs := make([]slog.Attr, 0, len(names))
	for _, k := range names {
		if SensitiveKey(k) {
			attrs = append(attrs, slog.String(k, Redacted))
			continue
		}
		attrs = append(attrs, slog.String(k, r.scrub(strings.Join(h[k], ", "), known)))
	}
	return slog.GroupValue(attrs...)
}

// redactURL renders u without its user info and with every query value
// replaced: a query may carry a key under any name.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		q := c.Query()
		parts := make([]string, 0, len(q))
		for k := range q {
			parts = append(parts, url.QueryEscape(k)+"="+Redacted)
		}
		slices.Sort(parts)
		c.RawQuery = strings.Join(parts, "&")
	}
	c.Fragment = ""
	return c.String()
}
