package session_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewManagerValidates(t *testing.T) {
	t.Parallel()
	ms, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	users, _ := session.NewUsers(nil)
	good := func() session.Config {
		return session.Config{Store: ms, Users: users, AllowedOrigins: []string{origin}}
	}
	tests := []struct {
		name string
		edit func(*session.Config)
		want string
	}{
		{"no store", func(c *session.Config) { c.Store = nil }, "Store"},
		{"no users", func(c *session.Config) { c.Users = nil }, "Users"},
		{"no origins", func(c *session.Config) { c.AllowedOrigins = nil }, "AllowedOrigins"},
		{"origin with path", func(c *session.Config) { c.AllowedOrigins = []string{"https://a.example/x"} }, "not an origin"},
		{"origin without scheme", func(c *session.Config) { c.AllowedOrigins = []string{"a.example"} }, "not an origin"},
		{"negative idle", func(c *session.Config) { c.Idle = -time.Second }, "positive"},
		{"tiny max", func(c *session.Config) { c.Max = time.Millisecond }, "Max"},
		{"touch not below idle", func(c *session.Config) { c.Idle, c.TouchEvery = time.Minute, time.Minute }, "TouchEvery"},
		{"negative check", func(c *session.Config) { c.CheckInterval = -1 }, "CheckInterval"},
		{"negative logins", func(c *session.Config) { c.MaxConcurrentLogins = -1 }, "MaxConcurrentLogins"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good()
			tt.edit(&cfg)
			m, err := session.NewManager(cfg)
			if err == nil {
				m.Close()
				t.Fatal("NewManager accepted the config")
			}
			if !errors.Is(err, session.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidConfig mentioning %q", err, tt.want)
			}
		})
	}
	m, err := session.NewManager(good())
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	m.Close()
	m.Close() // safe twice
}

func TestLoginAndSessionInfo(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	w := f.do(http.MethodPost, "/auth/login", "", loginBody("alice", alicePass), csrf...)
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, body %s", w.Code, w.Body)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	got := decodeInfo(t, w)
	want := info{User: "alice", IdleExpiresAt: "2030-06-01T12:30:00Z", ExpiresAt: "2030-06-02T00:00:00Z"}
	if got != want {
		t.Fatalf("login body = %+v, want %+v", got, want)
	}
	c := sessionCookie(t, w, session.CookieName)
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(raw) != 32 {
		t.Fatalf("session id is not 256 bits of base64url: %d bytes, %v", len(raw), err)
	}

	// Only the SHA-256 of the id is stored.
	sum := sha256.Sum256(raw)
	if _, err := f.store.Get(context.Background(), hex.EncodeToString(sum[:])); err != nil {
		t.Fatalf("record not stored under the id's SHA-256: %v", err)
	}
	if _, err := f.store.Get(context.Background(), c.Value); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("record stored under the raw id: %v", err)
	}

	w = f.do(http.MethodGet, "/auth/session", c.Value, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("info status = %d, body %s", w.Code, w.Body)
	}
	if got := decodeInfo(t, w); got != want {
		t.Fatalf("info = %+v, want %+v", got, want)
	}
	if got := counter(t, f.metrics, "success"); got != 1 {
		t.Errorf("logins{success} = %v, want 1", got)
	}

	w = f.do(http.MethodGet, "/api/quote", c.Value, nil)
	if w.Code != http.StatusOK || w.Body.String() != "hello alice" {
		t.Fatalf("api: %d %q", w.Code, w.Body)
	}
}

func TestInfoWithoutSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	wantError(t, f.do(http.MethodGet, "/auth/session", "", nil), http.StatusUnauthorized, "no_session")
	wantError(t, f.do(http.MethodGet, "/api/quote", "", nil), http.StatusUnauthorized, "no_session")
	// An unknown but well-formed id is no session either.
	unknown := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	wantError(t, f.do(http.MethodGet, "/auth/session", unknown, nil), http.StatusUnauthorized, "no_session")
}

func TestCookieAttributes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secure bool
		want   []string
		absent []string
	}{
		{"https", true, []string{"__Host-tickgate=", "Path=/", "Max-Age=43200", "HttpOnly", "Secure", "SameSite=Strict"}, []string{"Domain"}},
		{"http", false, []string{"tickgate=", "Path=/", "Max-Age=43200", "HttpOnly", "SameSite=Strict"}, []string{"Domain", "Secure", "__Host-"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(c *session.Config) {
				c.Secure = func(*http.Request) bool { return tt.secure }
			})
			w := f.do(http.MethodPost, "/auth/login", "", loginBody("alice", alicePass), csrf...)
			set := w.Header().Values("Set-Cookie")
			if len(set) != 1 {
				t.Fatalf("Set-Cookie = %q, want one", set)
			}
			for _, s := range tt.want {
				if !strings.Contains(set[0], s) {
					t.Errorf("Set-Cookie %q lacks %q", set[0], s)
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(set[0], s) {
					t.Errorf("Set-Cookie %q has %q", set[0], s)
				}
			}
			id := sessionCookie(t, w, f.cookieName()).Value

			// The cookie of the other scheme's name is not read.
			other := session.CookieName
			if !tt.secure {
				other = session.SecureCookieName
			}
			r := httptestRequest(http.MethodGet, "/auth/session")
			r.AddCookie(&http.Cookie{Name: other, Value: id})
			rec := serve(f.h, r)
			wantError(t, rec, http.StatusUnauthorized, "no_session")

			// Logout clears it with the same attributes.
			w = f.do(http.MethodPost, "/auth/logout", id, nil, csrf...)
			if w.Code != http.StatusNoContent {
				t.Fatalf("logout status = %d", w.Code)
			}
			set = w.Header().Values("Set-Cookie")
			if len(set) != 1 || !strings.Contains(set[0], "Max-Age=0") {
				t.Fatalf("logout Set-Cookie = %q, want one with Max-Age=0", set)
			}
			for _, s := range tt.want {
				if s == "Max-Age=43200" {
					continue
				}
				if !strings.Contains(set[0], s) {
					t.Errorf("clearing Set-Cookie %q lacks %q", set[0], s)
				}
			}
		})
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	cases := []struct{ user, pw, reason string }{
		{"alice", "wrong password", "bad_password"},
		{"mallory", alicePass, "unknown_user"},
		{"al ice", alicePass, "invalid_username"},
		{"ALICE", alicePass, "unknown_user"},
	}
	var first string
	for _, c := range cases {
		w := f.do(http.MethodPost, "/auth/login", "", loginBody(c.user, c.pw), csrf...)
		wantError(t, w, http.StatusUnauthorized, "invalid_credentials")
		if len(w.Header().Values("Set-Cookie")) != 0 {
			t.Errorf("%s: failed login set a cookie", c.user)
		}
		if first == "" {
			first = w.Body.String()
		} else if w.Body.String() != first {
			t.Errorf("%s: body %q differs from %q", c.user, w.Body, first)
		}
	}
	if got := counter(t, f.metrics, "invalid_credentials"); got != float64(len(cases)) {
		t.Errorf("logins{invalid_credentials} = %v, want %d", got, len(cases))
	}
	lines := f.logs.audit(t, "login failed")
	if len(lines) != len(cases) {
		t.Fatalf("%d audit lines for failed logins, want %d:\n%s", len(lines), len(cases), f.logs)
	}
	for i, c := range cases {
		l := lines[i]
		if l["reason"] != c.reason || l["client_ip"] != "192.0.2.7" {
			t.Errorf("audit line %v, want reason %s from 192.0.2.7", l, c.reason)
		}
		// Only known user names are logged: an unknown "name" may be a
		// password typed into the wrong field.
		if wantUser := c.user == "alice"; (l["user"] != nil) != wantUser {
			t.Errorf("audit line %v: user logged = %v, want %v", l, l["user"] != nil, wantUser)
		}
	}
	if strings.Contains(f.logs.String(), "mallory") {
		t.Error("an unknown user name was logged")
	}
}

func TestLoginBadRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"not json", "username=alice", 400, "bad_request"},
		{"empty", "", 400, "bad_request"},
		{"array", `["alice","pw"]`, 400, "bad_request"},
		{"missing password", `{"username":"alice"}`, 400, "bad_request"},
		{"empty username", `{"username":"","password":"x"}`, 400, "bad_request"},
		{"number", `{"username":1,"password":"x"}`, 400, "bad_request"},
		{"trailing data", `{"username":"alice","password":"x"}{}`, 400, "bad_request"},
		{"huge field", `{"username":"alice","password":"` + strings.Repeat("a", 2000) + `"}`, 400, "bad_request"},
		{"too large", `{"username":"alice","password":"` + strings.Repeat("a", 5000) + `"}`, 413, "request_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(http.MethodPost, "/auth/login", "", strings.NewReader(tt.body), csrf...)
			wantError(t, w, tt.status, tt.code)
		})
	}
	// Called directly with the wrong method (a route registered for any
	// method): 405 with Allow.
	r := httptestRequest(http.MethodGet, "/auth/login")
	w := httptestRecorder()
	f.m.Login(w, r)
	wantError(t, w, http.StatusMethodNotAllowed, "method_not_allowed")
	if got := w.Header().Get("Allow"); got != "POST" {
		t.Errorf("Allow = %q", got)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		name string
		hdr  []string
		ok   bool
	}{
		{"frontend fetch", csrf, true},
		{"no fetch metadata (old browser, curl)", []string{"X-CSRF", "1"}, true},
		{"default port spelled out", []string{"X-CSRF", "1", "Origin", "https://APP.example.com:443"}, true},
		{"user typed (none)", []string{"X-CSRF", "1", "Sec-Fetch-Site", "none"}, true},
		{"missing header", []string{"Origin", origin, "Sec-Fetch-Site", "same-origin"}, false},
		{"header not 1", []string{"X-CSRF", "true", "Origin", origin}, false},
		{"header twice", []string{"X-CSRF", "1", "X-CSRF", "1"}, false},
		{"foreign origin", []string{"X-CSRF", "1", "Origin", "https://evil.example"}, false},
		{"sibling origin", []string{"X-CSRF", "1", "Origin", "https://x.app.example.com"}, false},
		{"http origin", []string{"X-CSRF", "1", "Origin", "http://app.example.com"}, false},
		{"null origin", []string{"X-CSRF", "1", "Origin", "null"}, false},
		{"cross-site", []string{"X-CSRF", "1", "Sec-Fetch-Site", "cross-site"}, false},
		{"same-site", []string{"X-CSRF", "1", "Origin", origin, "Sec-Fetch-Site", "same-site"}, false},
	}
	cookie := f.login(t, "alice", alicePass, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Through RequireCSRF on an API route.
			w := f.do(http.MethodPost, "/api/order", cookie, nil, tt.hdr...)
			if tt.ok {
				if w.Code != http.StatusOK {
					t.Fatalf("api: status %d, body %s", w.Code, w.Body)
				}
			} else {
				wantError(t, w, http.StatusForbidden, "csrf")
			}
			// Login checks it itself too, without RequireCSRF.
			r := httptestRequest(http.MethodPost, "/auth/login")
			r.Body = readCloser(loginBody("bob", bobPass))
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				r.Header.Add(tt.hdr[i], tt.hdr[i+1])
			}
			lw := httptestRecorder()
			f.m.Login(lw, r)
			if tt.ok {
				if lw.Code != http.StatusOK {
					t.Fatalf("login: status %d, body %s", lw.Code, lw.Body)
				}
			} else {
				wantError(t, lw, http.StatusForbidden, "csrf")
			}
		})
	}
	// Safe methods need nothing.
	if w := f.do(http.MethodGet, "/api/quote", cookie, nil, "Sec-Fetch-Site", "cross-site"); w.Code != http.StatusOK {
		t.Fatalf("GET refused: %d", w.Code)
	}
	// Logout without the header does not log out.
	wantError(t, f.do(http.MethodPost, "/auth/logout", cookie, nil), http.StatusForbidden, "csrf")
	if w := f.do(http.MethodGet, "/auth/session", cookie, nil); w.Code != http.StatusOK {
		t.Fatalf("session ended by a refused logout: %d", w.Code)
	}
	if n := len(f.logs.audit(t, "csrf check failed")); n == 0 {
		t.Error("CSRF refusals were not logged")
	}
}

type fakeLimiter struct {
	ip, user string
	calls    int
}

func (l *fakeLimiter) AllowLogin(_ context.Context, ip, user string) (bool, time.Duration) {
	l.ip, l.user = ip, user
	l.calls++
	return l.calls <= 1, 1500 * time.Millisecond
}

func TestLoginLimited(t *testing.T) {
	t.Parallel()
	lim := &fakeLimiter{}
	f := newFixture(t, func(c *session.Config) {
		c.LoginLimiter = lim
		c.ClientIP = func(*http.Request) string { return "203.0.113.9" }
	})
	f.login(t, "alice", alicePass, "")
	w := f.do(http.MethodPost, "/auth/login", "", loginBody("alice", alicePass), csrf...)
	wantError(t, w, http.StatusTooManyRequests, "too_many_attempts")
	if got := w.Header().Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2", got)
	}
	if lim.ip != "203.0.113.9" || lim.user != "alice" {
		t.Errorf("limiter saw ip %q user %q", lim.ip, lim.user)
	}
	if got := counter(t, f.metrics, "limited"); got != 1 {
		t.Errorf("logins{limited} = %v", got)
	}
}

func TestSessionFixation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	// The attacker logs in and plants its cookie in the victim's browser.
	planted := f.login(t, "bob", bobPass, "")
	fresh := f.login(t, "alice", alicePass, planted)
	if fresh == planted {
		t.Fatal("login reused the presented session id")
	}
	wantError(t, f.do(http.MethodGet, "/auth/session", planted, nil), http.StatusUnauthorized, "no_session")
	if got := decodeInfo(t, f.do(http.MethodGet, "/auth/session", fresh, nil)).User; got != "alice" {
		t.Fatalf("new session user = %q", got)
	}
	// A made-up id is never adopted either.
	madeUp := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	if got := f.login(t, "alice", alicePass, madeUp); got == madeUp {
		t.Fatal("login adopted a made-up session id")
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	cookie := f.login(t, "alice", alicePass, "")
	other := f.login(t, "alice", alicePass, "") // another browser
	w := f.do(http.MethodPost, "/auth/logout", cookie, nil, csrf...)
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Fatalf("logout: %d %q", w.Code, w.Body)
	}
	if c := sessionCookie(t, w, session.CookieName); c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Fatalf("logout did not clear the cookie: %v", w.Header().Values("Set-Cookie"))
	}
	wantError(t, f.do(http.MethodGet, "/auth/session", cookie, nil), http.StatusUnauthorized, "no_session")
	if w := f.do(http.MethodGet, "/auth/session", other, nil); w.Code != http.StatusOK {
		t.Fatalf("logout ended another session: %d", w.Code)
	}
	if lines := f.logs.audit(t, "logout"); len(lines) != 1 || lines[0]["user"] != "alice" {
		t.Fatalf("logout audit lines: %v", lines)
	}

	// Without a session: still 204 and a cleared cookie.
	for _, c := range []string{"", cookie, "not-a-session-id"} {
		w := f.do(http.MethodPost, "/auth/logout", c, nil, csrf...)
		if w.Code != http.StatusNoContent {
			t.Fatalf("logout without session (%q): %d", c, w.Code)
		}
		if sessionCookie(t, w, session.CookieName) == nil {
			t.Fatal("logout without session did not clear the cookie")
		}
	}
}

func TestMalformedCookiesNeverReachTheStore(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	valid := f.login(t, "alice", alicePass, "")
	gets := f.store.gets.Load()
	for _, c := range []string{
		"x", valid[:42], valid + "A", valid + "=", strings.Repeat("!", 43),
		strings.Repeat("A", 42) + "B", // non-zero trailing bits: not canonical
		strings.Repeat("a", 4096),
	} {
		wantError(t, f.do(http.MethodGet, "/auth/session", c, nil), http.StatusUnauthorized, "no_session")
	}
	if got := f.store.gets.Load(); got != gets {
		t.Fatalf("%d store reads for malformed cookies", got-gets)
	}
}

func TestStoreFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	cookie := f.login(t, "alice", alicePass, "")
	f.store.failGet.Store(true)
	f.store.failDelete.Store(true)
	f.store.failCreate.Store(true)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/auth/session"},
		{http.MethodGet, "/api/quote"},
		{http.MethodPost, "/auth/logout"},
	} {
		w := f.do(tc.method, tc.path, cookie, nil, csrf...)
		wantError(t, w, http.StatusServiceUnavailable, "session_store_unavailable")
		if w.Header().Get("Retry-After") == "" {
			t.Errorf("%s %s: no Retry-After", tc.method, tc.path)
		}
		if got := w.Header().Values("Set-Cookie"); len(got) != 0 {
			t.Errorf("%s %s: cookie touched on store failure: %q", tc.method, tc.path, got)
		}
	}
	// Without a cookie nothing reads the store.
	wantError(t, f.do(http.MethodGet, "/auth/session", "", nil), http.StatusUnauthorized, "no_session")

	// Logout whose delete fails keeps the cookie and says so.
	f.store.failGet.Store(false)
	w := f.do(http.MethodPost, "/auth/logout", cookie, nil, csrf...)
	wantError(t, w, http.StatusServiceUnavailable, "session_store_unavailable")
	if got := w.Header().Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("logout cleared the cookie although the session survives: %q", got)
	}
	// Login whose create fails.
	wantError(t, f.do(http.MethodPost, "/auth/login", "", loginBody("bob", bobPass), csrf...),
		http.StatusServiceUnavailable, "session_store_unavailable")

	f.store.failGet.Store(true)
	if err := f.m.Ready(context.Background()); err == nil {
		t.Fatal("Ready with a failing store = nil")
	}
	f.store.failGet.Store(false)
	if err := f.m.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if strings.Contains(f.logs.String(), "session store unavailable") == false {
		t.Error("store failure not logged")
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *session.Config) { c.Max = time.Hour })
	cookie := f.login(t, "alice", alicePass, "")
	wrong := f.do(http.MethodPost, "/auth/login", "", loginBody("alice", "Tr0ub4dor&3-wrong"), csrf...)
	wantError(t, wrong, http.StatusUnauthorized, "invalid_credentials")
	f.do(http.MethodPost, "/auth/login", "", loginBody("Tr0ub4dor&3-user", alicePass), csrf...)
	f.do(http.MethodPost, "/api/order", cookie, nil, "X-CSRF", "1", "Origin", "https://evil.example")
	second := f.login(t, "bob", bobPass, "")
	ended, stop := f.m.Watch(key(t, second))
	defer stop()
	f.do(http.MethodPost, "/auth/logout", cookie, nil, csrf...)
	f.clock.Add(time.Hour)
	waitClosed(t, ended, "absolute expiry")
	f.store.failGet.Store(true)
	f.do(http.MethodGet, "/auth/session", cookie, nil)

	logs := f.logs.String()
	for name, secret := range map[string]string{
		"alice's password": alicePass, "bob's password": bobPass, "wrong password": "Tr0ub4dor&3-wrong",
		"password in user field": "Tr0ub4dor&3-user",
		"session id":             cookie, "other session id": second,
		"session key": key(t, cookie), "other session key": key(t, second),
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain the %s", name)
		}
	}
	for _, msg := range []string{"login", "login failed", "logout", "session expired", "csrf check failed"} {
		if len(f.logs.audit(t, msg)) == 0 {
			t.Errorf("no audit line %q", msg)
		}
	}
}

func TestSessionStringHidesKey(t *testing.T) {
	t.Parallel()
	s := session.Session{Key: "deadbeef", User: "alice"}
	for _, got := range []string{s.String(), (&s).String(), s.LogValue().String()} {
		if strings.Contains(got, "deadbeef") || !strings.Contains(got, "alice") {
			t.Errorf("%q: want the user and not the key", got)
		}
	}
	ctx := session.NewContext(context.Background(), &s)
	if got, ok := session.FromContext(ctx); !ok || got != &s {
		t.Fatal("FromContext did not return the session")
	}
	if _, ok := session.FromContext(context.Background()); ok {
		t.Fatal("FromContext found a session in an empty context")
	}
	if _, ok := session.FromContext(session.NewContext(context.Background(), nil)); ok {
		t.Fatal("FromContext returned a nil session")
	}
}

func TestLoginNilBody(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	r := httptestRequest(http.MethodPost, "/auth/login")
	r.Body = nil
	r.Header.Set("X-CSRF", "1")
	w := httptestRecorder()
	f.m.Login(w, r)
	wantError(t, w, http.StatusBadRequest, "bad_request")
}

func TestWrongMethods(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, tc := range []struct {
		h      http.HandlerFunc
		method string
		allow  string
	}{
		{f.m.Info, http.MethodPost, "GET, HEAD"},
		{f.m.Logout, http.MethodGet, "POST"},
		{f.m.Login, http.MethodPut, "POST"},
	} {
		w := httptestRecorder()
		tc.h(w, httptestRequest(tc.method, "/auth/x"))
		wantError(t, w, http.StatusMethodNotAllowed, "method_not_allowed")
		if got := w.Header().Get("Allow"); got != tc.allow {
			t.Errorf("Allow = %q, want %q", got, tc.allow)
		}
	}
}
