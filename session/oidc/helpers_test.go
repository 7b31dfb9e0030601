package oidc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/memstore"
	"github.com/tickgate/tickgate/session/oidc"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logLines returns the JSON log records.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// findLog returns the first record with msg whose attributes include want.
func (s *syncBuffer) findLog(t *testing.T, msg string, want map[string]any) map[string]any {
	t.Helper()
	for _, m := range s.lines(t) {
		if m["msg"] != msg {
			continue
		}
		ok := true
		for k, v := range want {
			if m[k] != v {
				ok = false
				break
			}
		}
		if ok {
			return m
		}
	}
	t.Fatalf("no log %q with %v in:\n%s", msg, want, s.String())
	return nil
}

// clock is time.Now plus a settable offset.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// recorder is the provider-side HTTP client's transport: it keeps every
// token endpoint request form and response body, so tests can check that
// none of it leaks.
type recorder struct {
	base http.RoundTripper

	mu        sync.Mutex
	forms     []url.Values
	responses []map[string]any
}

func (rt *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	isToken := strings.HasSuffix(r.URL.Path, mockoidc.TokenEndpoint)
	if isToken && r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		_ = r.Body.Close()
		form, _ := url.ParseQuery(string(b))
		rt.mu.Lock()
		rt.forms = append(rt.forms, form)
		rt.mu.Unlock()
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := rt.base.RoundTrip(r)
	if err != nil || !isToken {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if json.Unmarshal(b, &m) == nil {
		rt.mu.Lock()
		rt.responses = append(rt.responses, m)
		rt.mu.Unlock()
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// secretsSeen returns every token, code, verifier and client secret that
// went to or came from the token endpoint.
func (rt *recorder) secretsSeen() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var out []string
	for _, f := range rt.forms {
		for _, k := range []string{"code", "code_verifier", "client_secret"} {
			if v := f.Get(k); v != "" {
				out = append(out, v)
			}
		}
	}
	for _, m := range rt.responses {
		for _, k := range []string{"access_token", "id_token", "refresh_token"} {
			if v, _ := m[k].(string); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

func (rt *recorder) lastForm() url.Values {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.forms) == 0 {
		return nil
	}
	return rt.forms[len(rt.forms)-1]
}

// failingStore fails Create on demand.
type failingStore struct {
	session.Store
	failCreate atomic.Bool
}

func (s *failingStore) Create(ctx context.Context, rec session.Record, ttl time.Duration) error {
	if s.failCreate.Load() {
		return errors.New("store down: dial tcp 10.0.0.1:6379: connection refused")
	}
	return s.Store.Create(ctx, rec, ttl)
}

// env is tickgate (a session Manager and an OIDC Login behind an
// httptest server) plus a mock provider, all on loopback.
type env struct {
	t      *testing.T
	op     *mockoidc.MockOIDC
	store  *failingStore
	mgr    *session.Manager
	login  *oidc.Login
	srv    *httptest.Server
	rec    *recorder
	client *http.Client // tickgate → provider
	logs   *syncBuffer
	clock  *clock
	cfg    oidc.Config

	// tamper, when set, edits the provider's token responses.
	tamper atomic.Pointer[func(map[string]any)]
	// callbackLogin, when set, serves the callback instead of login
	// (another replica).
	callbackLogin atomic.Pointer[oidc.Login]

	bodies syncBuffer // every tickgate response body
}

// newProvider starts a mock provider; edit runs before it starts.
func newProvider(t *testing.T, e *env, edit func(*mockoidc.MockOIDC)) *mockoidc.MockOIDC {
	t.Helper()
	op, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if e != nil {
		err := op.AddMiddleware(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				f := e.tamper.Load()
				if f == nil || r.URL.Path != mockoidc.TokenEndpoint {
					next.ServeHTTP(w, r)
					return
				}
				rr := httptest.NewRecorder()
				next.ServeHTTP(rr, r)
				var m map[string]any
				body := rr.Body.Bytes()
				if rr.Code == http.StatusOK && json.Unmarshal(body, &m) == nil {
					(*f)(m)
					body, _ = json.Marshal(m)
				}
				for k, v := range rr.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rr.Code)
				_, _ = w.Write(body)
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if edit != nil {
		edit(op)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = op.Shutdown() })
	return op
}

// newEnv starts everything; edit adjusts the Login config (defaults: any
// user, email claim).
func newEnv(t *testing.T, edit func(*oidc.Config)) *env {
	t.Helper()
	e := &env{t: t, logs: &syncBuffer{}, clock: &clock{}}
	e.op = newProvider(t, e, nil)

	ms, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ms.Close() })
	e.store = &failingStore{Store: ms}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	mux := http.NewServeMux()
	var handler http.Handler
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.ServeHTTP(&bodyTee{ResponseWriter: w, into: &e.bodies}, r)
	}))
	base := "http://" + e.srv.Listener.Addr().String()

	users, err := session.NewUsers(nil)
	if err != nil {
		t.Fatal(err)
	}
	e.mgr, err = session.NewManager(session.Config{
		Store: e.store, Users: users, AllowedOrigins: []string{base}, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.mgr.Close)

	e.rec = &recorder{base: http.DefaultTransport.(*http.Transport).Clone()}
	e.client = &http.Client{Transport: e.rec, Timeout: 30 * time.Second}
	t.Cleanup(e.client.CloseIdleConnections)

	oc := e.op.Config()
	e.cfg = oidc.Config{
		IssuerURL:    oc.Issuer,
		ClientID:     oc.ClientID,
		ClientSecret: secrets.NewValue(oc.ClientSecret),
		RedirectURL:  base + "/auth/oidc/callback",
		AllowAnyUser: true,
		Sessions:     e.mgr,
		HTTPClient:   e.client,
		Logger:       logger,
		Now:          e.clock.Now,
	}
	if edit != nil {
		edit(&e.cfg)
	}
	e.login = e.newLogin(e.cfg)

	mux.HandleFunc("GET /auth/oidc/login", e.login.Start)
	mux.HandleFunc("GET /auth/oidc/callback", func(w http.ResponseWriter, r *http.Request) {
		if l := e.callbackLogin.Load(); l != nil {
			l.Callback(w, r)
			return
		}
		e.login.Callback(w, r)
	})
	mux.HandleFunc("GET /auth/session", e.mgr.Info)
	handler = e.mgr.Middleware(mux)
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) newLogin(cfg oidc.Config) *oidc.Login {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := oidc.New(ctx, cfg)
	if err != nil {
		e.t.Fatalf("oidc.New: %v", err)
	}
	e.t.Cleanup(l.Close)
	return l
}

// bodyTee copies response bodies.
type bodyTee struct {
	http.ResponseWriter
	into *syncBuffer
}

func (b *bodyTee) Write(p []byte) (int, error) {
	_, _ = b.into.Write(p)
	return b.ResponseWriter.Write(p)
}

// browser is a cookie-keeping client that does not follow redirects, so
// each hop can be checked.
type browser struct {
	t   *testing.T
	c   *http.Client
	jar *cookiejar.Jar
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		Transport:     http.DefaultTransport.(*http.Transport).Clone(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	e.t.Cleanup(c.CloseIdleConnections)
	return &browser{t: e.t, c: c, jar: jar}
}

type response struct {
	code    int
	header  http.Header
	body    string
	cookies []*http.Cookie
}

func (b *browser) get(rawURL string, extra ...*http.Cookie) response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range extra {
		req.AddCookie(c)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(body), cookies: resp.Cookies()}
}

func cookieNamed(cs []*http.Cookie, name string) *http.Cookie {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// started is a login begun at tickgate.
type started struct {
	authURL *url.URL
	cookie  *http.Cookie // the state cookie as set
}

func (s started) param(k string) string { return s.authURL.Query().Get(k) }

// start calls GET /auth/oidc/login.
func (e *env) start(b *browser) started {
	e.t.Helper()
	r := b.get(e.srv.URL + "/auth/oidc/login")
	if r.code != http.StatusFound {
		e.t.Fatalf("start: status %d, body %s", r.code, r.body)
	}
	u, err := url.Parse(r.header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	c := cookieNamed(r.cookies, oidc.StateCookieName)
	if c == nil {
		e.t.Fatalf("start set no %s cookie: %v", oidc.StateCookieName, r.header["Set-Cookie"])
	}
	return started{authURL: u, cookie: c}
}

// authorize visits the provider's authorization endpoint and returns the
// callback URL it redirects to.
func (e *env) authorize(b *browser, authURL *url.URL) *url.URL {
	e.t.Helper()
	r := b.get(authURL.String())
	if r.code != http.StatusFound {
		e.t.Fatalf("authorize: status %d, body %s", r.code, r.body)
	}
	u, err := url.Parse(r.header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// loginFlow runs the whole flow and returns the callback's response.
func (e *env) loginFlow(b *browser) response {
	e.t.Helper()
	s := e.start(b)
	cb := e.authorize(b, s.authURL)
	return b.get(cb.String())
}

// sessionUser asks GET /auth/session as b.
func (e *env) sessionUser(b *browser, extra ...*http.Cookie) (int, string) {
	e.t.Helper()
	r := b.get(e.srv.URL+"/auth/session", extra...)
	var body struct {
		User string `json:"user"`
	}
	_ = json.Unmarshal([]byte(r.body), &body)
	return r.code, body.User
}

// errorCode decodes a contract error body.
func errorCode(t *testing.T, r response) string {
	t.Helper()
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
		t.Fatalf("body %q is not a contract error (%v)", r.body, err)
	}
	return body.Error.Code
}

// assertNoLeaks checks that no token, code, verifier or client secret is in
// the logs or tickgate's response bodies, and that no state, nonce or
// session id is in the logs.
func (e *env) assertNoLeaks(extra ...string) {
	e.t.Helper()
	logs, bodies := e.logs.String(), e.bodies.String()
	secret := e.cfg.ClientSecret.Reveal()
	values := append(e.rec.secretsSeen(), secret, e.op.ClientSecret)
	for _, v := range values {
		if v == "" {
			continue
		}
		if strings.Contains(logs, v) {
			e.t.Errorf("logs contain a token, code or secret (%d bytes):\n%s", len(v), logs)
		}
		if strings.Contains(bodies, v) {
			e.t.Errorf("response bodies contain a token, code or secret:\n%s", bodies)
		}
	}
	for _, v := range extra {
		if v != "" && strings.Contains(logs, v) {
			e.t.Errorf("logs contain %q:\n%s", v, logs)
		}
	}
}
