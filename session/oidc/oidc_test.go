package oidc_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"
	"go.uber.org/goleak"

	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/oidc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHappyPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.browser()

	s := e.start(b)
	q := s.authURL.Query()
	if got, want := s.authURL.Scheme+"://"+s.authURL.Host+s.authURL.Path, e.op.AuthorizationEndpoint(); got != want {
		t.Fatalf("redirected to %s, want the provider's authorization endpoint %s", got, want)
	}
	for k, want := range map[string]string{
		"response_type":         "code",
		"client_id":             e.cfg.ClientID,
		"redirect_uri":          e.cfg.RedirectURL,
		"scope":                 "openid profile email",
		"code_challenge_method": "S256",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorize %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if got := q.Get(k); len(got) != 43 {
			t.Errorf("authorize %s = %q, want 43 base64url characters (256 bits)", k, got)
		}
	}
	if q.Get("state") == q.Get("nonce") {
		t.Error("state and nonce are equal")
	}
	if q.Has("client_secret") || strings.Contains(s.authURL.String(), e.cfg.ClientSecret.Reveal()) {
		t.Fatal("the client secret is in the authorization URL")
	}
	c := s.cookie
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure || c.MaxAge != 600 || c.Domain != "" {
		t.Errorf("state cookie = %+v, want HttpOnly, SameSite=Lax, Path=/, Max-Age=600, no Domain, not Secure on http", c)
	}
	if strings.Contains(c.Value, q.Get("state")) || strings.Contains(c.Value, q.Get("nonce")) {
		t.Error("the state cookie shows the state or nonce in clear")
	}

	cb := e.authorize(b, s.authURL)
	if got, want := cb.Scheme+"://"+cb.Host+cb.Path, e.cfg.RedirectURL; got != want {
		t.Fatalf("provider redirected to %s, want %s", got, want)
	}
	r := b.get(cb.String())
	if r.code != http.StatusFound || r.header.Get("Location") != "/" {
		t.Fatalf("callback = %d Location %q, body %s; want 302 to /", r.code, r.header.Get("Location"), r.body)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("callback Cache-Control = %q, want no-store", got)
	}
	sc := cookieNamed(r.cookies, session.CookieName)
	if sc == nil || sc.Value == "" || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode {
		t.Fatalf("callback session cookie = %+v, want an HttpOnly SameSite=Strict tickgate cookie", sc)
	}
	if st := cookieNamed(r.cookies, oidc.StateCookieName); st == nil || st.MaxAge >= 0 {
		t.Fatalf("callback did not clear the state cookie: %v", r.header["Set-Cookie"])
	}

	// PKCE: the verifier sent to the token endpoint matches the challenge.
	form := e.rec.lastForm()
	sum := sha256.Sum256([]byte(form.Get("code_verifier")))
	if got, want := base64.RawURLEncoding.EncodeToString(sum[:]), q.Get("code_challenge"); got != want {
		t.Fatalf("S256(code_verifier) = %q, want the code_challenge %q", got, want)
	}

	if code, user := e.sessionUser(b); code != http.StatusOK || user != "jane.doe@example.com" {
		t.Fatalf("GET /auth/session = %d %q, want 200 jane.doe@example.com", code, user)
	}
	e.logs.findLog(t, "login", map[string]any{
		"audit": true, "result": "success", "method": "oidc", "user": "jane.doe@example.com", "client_ip": "127.0.0.1",
	})
	e.assertNoLeaks(q.Get("state"), q.Get("nonce"), sc.Value, s.cookie.Value)
}

func TestUsernameClaim(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *oidc.Config) { c.UsernameClaim = "preferred_username" })
	b := e.browser()
	if r := e.loginFlow(b); r.code != http.StatusFound {
		t.Fatalf("callback = %d %s", r.code, r.body)
	}
	if code, user := e.sessionUser(b); code != http.StatusOK || user != "jane.doe" {
		t.Fatalf("GET /auth/session = %d %q, want 200 jane.doe", code, user)
	}
}

// A second login ends the session the browser presented (fixation).
func TestLoginEndsPresentedSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.browser()
	first := e.loginFlow(b)
	old := cookieNamed(first.cookies, session.CookieName)
	if old == nil {
		t.Fatalf("no session cookie: %v", first.header["Set-Cookie"])
	}
	second := e.loginFlow(b)
	cur := cookieNamed(second.cookies, session.CookieName)
	if cur == nil || cur.Value == old.Value {
		t.Fatal("the second login did not issue a new session id")
	}
	if code, _ := e.sessionUser(e.browser(), old); code != http.StatusUnauthorized {
		t.Fatalf("the session presented at login still works: %d", code)
	}
	if code, _ := e.sessionUser(e.browser(), cur); code != http.StatusOK {
		t.Fatalf("the new session does not work: %d", code)
	}
}

// The state cookie is sealed with a key derived from the shared client
// secret: another replica can finish a login this one started.
func TestCallbackOnAnotherReplica(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.callbackLogin.Store(e.newLogin(e.cfg))
	b := e.browser()
	if r := e.loginFlow(b); r.code != http.StatusFound {
		t.Fatalf("callback on the other replica = %d %s", r.code, r.body)
	}
	if code, user := e.sessionUser(b); code != http.StatusOK || user != "jane.doe@example.com" {
		t.Fatalf("GET /auth/session = %d %q", code, user)
	}
}

func TestStateFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		reason string
		// callback builds the callback request from a started flow and
		// the provider's callback URL.
		callback func(e *env, b *browser, s started, cb *url.URL) response
	}{
		{"tampered state", "state_mismatch", func(e *env, b *browser, s started, cb *url.URL) response {
			q := cb.Query()
			st := []byte(q.Get("state"))
			st[5] ^= 1
			q.Set("state", string(st))
			cb.RawQuery = q.Encode()
			return b.get(cb.String())
		}},
		{"missing state parameter", "state_mismatch", func(e *env, b *browser, s started, cb *url.URL) response {
			q := cb.Query()
			q.Del("state")
			cb.RawQuery = q.Encode()
			return b.get(cb.String())
		}},
		{"state parameter twice", "state_mismatch", func(e *env, b *browser, s started, cb *url.URL) response {
			q := cb.Query()
			q.Add("state", q.Get("state"))
			cb.RawQuery = q.Encode()
			return b.get(cb.String())
		}},
		{"missing state cookie", "missing_cookie", func(e *env, b *browser, s started, cb *url.URL) response {
			return e.browser().get(cb.String()) // another browser: no cookie
		}},
		{"tampered state cookie", "bad_cookie", func(e *env, b *browser, s started, cb *url.URL) response {
			v := []byte(s.cookie.Value)
			if v[40] == 'A' {
				v[40] = 'B'
			} else {
				v[40] = 'A'
			}
			return e.browser().get(cb.String(), &http.Cookie{Name: s.cookie.Name, Value: string(v)})
		}},
		{"junk state cookie", "bad_cookie", func(e *env, b *browser, s started, cb *url.URL) response {
			return e.browser().get(cb.String(), &http.Cookie{Name: s.cookie.Name, Value: "junk"})
		}},
		{"state cookie from another configuration", "bad_cookie", func(e *env, b *browser, s started, cb *url.URL) response {
			cfg := e.cfg
			cfg.ClientSecret = secrets.NewValue("another client secret")
			other := e.newLogin(cfg)
			rec := httptest.NewRecorder()
			other.Start(rec, httptest.NewRequest(http.MethodGet, "/auth/oidc/login", nil))
			c := cookieNamed(rec.Result().Cookies(), oidc.StateCookieName)
			loc, _ := url.Parse(rec.Header().Get("Location"))
			q := cb.Query()
			q.Set("state", loc.Query().Get("state"))
			cb.RawQuery = q.Encode()
			return e.browser().get(cb.String(), c)
		}},
		{"expired state", "expired", func(e *env, b *browser, s started, cb *url.URL) response {
			e.clock.Advance(10*time.Minute + time.Second)
			return b.get(cb.String())
		}},
		{"malformed query", "bad_query", func(e *env, b *browser, s started, cb *url.URL) response {
			cb.RawQuery += "&x=%zz"
			return b.get(cb.String())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			b := e.browser()
			s := e.start(b)
			cb := e.authorize(b, s.authURL)
			r := tt.callback(e, b, s, cb)
			if r.code != http.StatusBadRequest || errorCode(t, r) != oidc.CodeState {
				t.Fatalf("callback = %d %s, want 400 oidc_state", r.code, r.body)
			}
			if r.header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", r.header.Get("Content-Type"))
			}
			if cookieNamed(r.cookies, session.CookieName) != nil {
				t.Fatal("a session cookie was set")
			}
			if st := cookieNamed(r.cookies, oidc.StateCookieName); st == nil || st.MaxAge >= 0 {
				t.Errorf("the state cookie was not cleared: %v", r.header["Set-Cookie"])
			}
			if code, _ := e.sessionUser(b); code != http.StatusUnauthorized {
				t.Fatalf("GET /auth/session = %d, want 401", code)
			}
			e.logs.findLog(t, "login failed", map[string]any{
				"audit": true, "method": "oidc", "result": "oidc_state", "reason": tt.reason, "client_ip": "127.0.0.1",
			})
			e.assertNoLeaks(s.param("state"), s.param("nonce"), s.cookie.Value)
		})
	}
}

func TestReplayedState(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	b := e.browser()
	s := e.start(b)
	cb := e.authorize(b, s.authURL)
	if r := b.get(cb.String()); r.code != http.StatusFound {
		t.Fatalf("first callback = %d %s", r.code, r.body)
	}
	// The jar dropped the state cookie; an attacker who copied it and the
	// callback URL replays both.
	r := e.browser().get(cb.String(), s.cookie)
	if r.code != http.StatusBadRequest || errorCode(t, r) != oidc.CodeState {
		t.Fatalf("replayed callback = %d %s, want 400 oidc_state", r.code, r.body)
	}
	e.logs.findLog(t, "login failed", map[string]any{"result": "oidc_state", "reason": "replayed"})

	// On another replica the state is new, but the provider refuses the
	// used code.
	e.callbackLogin.Store(e.newLogin(e.cfg))
	r = e.browser().get(cb.String(), s.cookie)
	if r.code != http.StatusUnauthorized || errorCode(t, r) != oidc.CodeFailed {
		t.Fatalf("replay on another replica = %d %s, want 401 oidc_failed", r.code, r.body)
	}
	e.logs.findLog(t, "login failed", map[string]any{"result": "oidc_failed", "reason": "exchange_failed"})
	e.assertNoLeaks(s.param("state"), s.param("nonce"), s.cookie.Value)
}

// Two logins in one browser, and the provider's answer to the first
// delivered under the second's state: the code carries the first flow's
// PKCE challenge and its ID token the first flow's nonce. Either check
// alone refuses it; the nonce check is tested by giving the first
// authorization request the second's challenge too.
func TestWrongNonce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		sameChallenge bool
		reason        string
	}{
		{"swapped flow", false, "exchange_failed"}, // PKCE: the provider refuses the verifier
		{"swapped flow with its challenge", true, "nonce_mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			b := e.browser()
			a := e.start(b)
			second := e.start(b) // its cookie replaces a's in the jar
			authA := *a.authURL
			q := authA.Query()
			q.Set("state", second.param("state"))
			if tt.sameChallenge {
				q.Set("code_challenge", second.param("code_challenge"))
			}
			authA.RawQuery = q.Encode()
			cb := e.authorize(b, &authA)
			r := b.get(cb.String())
			if r.code != http.StatusUnauthorized || errorCode(t, r) != oidc.CodeFailed {
				t.Fatalf("callback = %d %s, want 401 oidc_failed", r.code, r.body)
			}
			if code, _ := e.sessionUser(b); code != http.StatusUnauthorized {
				t.Fatalf("GET /auth/session = %d, want 401", code)
			}
			e.logs.findLog(t, "login failed", map[string]any{"result": "oidc_failed", "reason": tt.reason})
			e.assertNoLeaks(a.param("nonce"), second.param("nonce"))
		})
	}
}

func TestTokenFailures(t *testing.T) {
	t.Parallel()
	const canary = "CODE-CANARY-d41d8cd98f00b204"
	tests := []struct {
		name   string
		reason string
		detail string // in the audit line's detail
		edit   func(*oidc.Config)
		setup  func(e *env)
		// callback edits the provider's callback URL.
		callback func(cb *url.URL)
	}{
		{name: "unknown code", reason: "exchange_failed", detail: "HTTP 401 invalid_grant", callback: func(cb *url.URL) {
			q := cb.Query()
			q.Set("code", canary)
			cb.RawQuery = q.Encode()
		}},
		{name: "missing code", reason: "missing_code", callback: func(cb *url.URL) {
			q := cb.Query()
			q.Del("code")
			cb.RawQuery = q.Encode()
		}},
		{name: "wrong client secret", reason: "exchange_failed", detail: "invalid_client", edit: func(c *oidc.Config) {
			c.ClientSecret = secrets.NewValue("wrong-secret-5f4dcc3b5aa765d6")
		}},
		{name: "token endpoint error", reason: "exchange_failed", detail: "HTTP 500 server_error", setup: func(e *env) {
			// Two: oauth2 tries the header, then the form.
			for range 2 {
				e.op.QueueError(&mockoidc.ServerError{Code: http.StatusInternalServerError, Error: "server_error", Description: "boom"})
			}
		}},
		{name: "no id token", reason: "no_id_token", setup: func(e *env) {
			f := func(m map[string]any) { delete(m, "id_token") }
			e.tamper.Store(&f)
		}},
		{name: "forged id token signature", reason: "id_token_invalid", detail: "signature", setup: func(e *env) {
			f := func(m map[string]any) {
				parts := strings.Split(m["id_token"].(string), ".")
				sig := []byte(parts[2])
				if sig[10] == 'A' {
					sig[10] = 'B'
				} else {
					sig[10] = 'A'
				}
				parts[2] = string(sig)
				m["id_token"] = strings.Join(parts, ".")
			}
			e.tamper.Store(&f)
		}},
		{name: "id token for another client", reason: "id_token_invalid", detail: "audience", setup: func(e *env) {
			f := func(m map[string]any) {
				// Re-signed by the provider's key, for another audience.
				parts := strings.Split(m["id_token"].(string), ".")
				payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
				var claims map[string]any
				_ = json.Unmarshal(payload, &claims)
				claims["aud"] = "someone-else"
				m["id_token"] = e.resign(claims)
			}
			e.tamper.Store(&f)
		}},
		{name: "azp of another client", reason: "azp_mismatch", setup: func(e *env) {
			f := func(m map[string]any) {
				parts := strings.Split(m["id_token"].(string), ".")
				payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
				var claims map[string]any
				_ = json.Unmarshal(payload, &claims)
				claims["aud"] = []string{e.cfg.ClientID, "someone-else"}
				claims["azp"] = "someone-else"
				m["id_token"] = e.resign(claims)
			}
			e.tamper.Store(&f)
		}},
		{name: "expired id token", reason: "id_token_invalid", detail: "expired", setup: func(e *env) {
			e.op.FastForward(-2 * time.Hour) // issued two hours ago, for ten minutes
		}},
		{name: "provider error", reason: "provider_error", callback: func(cb *url.URL) {
			q := cb.Query()
			q.Del("code")
			q.Set("error", "server_error")
			q.Set("error_description", canary)
			cb.RawQuery = q.Encode()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.edit)
			b := e.browser()
			s := e.start(b)
			cb := e.authorize(b, s.authURL)
			if tt.setup != nil {
				tt.setup(e)
			}
			if tt.callback != nil {
				tt.callback(cb)
			}
			r := b.get(cb.String())
			if r.code != http.StatusUnauthorized || errorCode(t, r) != oidc.CodeFailed {
				t.Fatalf("callback = %d %s, want 401 oidc_failed", r.code, r.body)
			}
			if cookieNamed(r.cookies, session.CookieName) != nil {
				t.Fatal("a session cookie was set")
			}
			if code, _ := e.sessionUser(b); code != http.StatusUnauthorized {
				t.Fatalf("GET /auth/session = %d, want 401", code)
			}
			line := e.logs.findLog(t, "login failed", map[string]any{
				"audit": true, "method": "oidc", "result": "oidc_failed", "reason": tt.reason,
			})
			if d, _ := line["detail"].(string); !strings.Contains(d, tt.detail) {
				t.Errorf("audit detail = %q, want it to mention %q", d, tt.detail)
			}
			e.assertNoLeaks(canary, cb.Query().Get("code"), s.param("state"), s.param("nonce"))
		})
	}
}

// resign signs claims with the provider's key (RS256), as the provider
// would.
func (e *env) resign(claims map[string]any) string {
	kid, err := e.op.Keypair.KeyID()
	if err != nil {
		e.t.Errorf("kid: %v", err)
	}
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid})
	p, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(nil, e.op.Keypair.PrivateKey, crypto.SHA256, sum[:])
	if err != nil {
		e.t.Errorf("sign: %v", err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestForbidden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		edit   func(*oidc.Config)
		user   *mockoidc.MockUser
		code   string // want: oidc_forbidden, or "" for a login
		reason string
		logged string // user name in the audit line
	}{
		{name: "domain not allowed", code: oidc.CodeForbidden, reason: "not_allowed", logged: "jane.doe@example.com",
			edit: func(c *oidc.Config) { c.AllowAnyUser, c.AllowedDomains = false, []string{"tickgate.example"} }},
		{name: "domain allowed",
			edit: func(c *oidc.Config) { c.AllowAnyUser, c.AllowedDomains = false, []string{"Example.COM"} }},
		{name: "user not allowed", code: oidc.CodeForbidden, reason: "not_allowed", logged: "jane.doe@example.com",
			edit: func(c *oidc.Config) { c.AllowAnyUser, c.AllowedUsers = false, []string{"bob@example.com"} }},
		{name: "user allowed, any case",
			edit: func(c *oidc.Config) { c.AllowAnyUser, c.AllowedUsers = false, []string{"Jane.Doe@example.com"} }},
		{name: "domain check needs a verified email", code: oidc.CodeForbidden, reason: "not_allowed", logged: "jane.doe",
			user: &mockoidc.MockUser{Subject: "2", Email: "jane.doe@example.com", PreferredUsername: "jane.doe"},
			edit: func(c *oidc.Config) {
				c.AllowAnyUser, c.AllowedDomains, c.UsernameClaim = false, []string{"example.com"}, "preferred_username"
			}},
		{name: "unverified email", code: oidc.CodeForbidden, reason: "email_unverified",
			user: &mockoidc.MockUser{Subject: "3", Email: "mallory@example.com"}},
		{name: "unverified email allowed when insecure",
			user: &mockoidc.MockUser{Subject: "3", Email: "mallory@example.com"},
			edit: func(c *oidc.Config) { c.InsecureAllowUnverifiedEmail = true }},
		{name: "user name with a plus", code: oidc.CodeForbidden, reason: "invalid_username",
			user: &mockoidc.MockUser{Subject: "4", Email: "jane+x@example.com", EmailVerified: true}},
		{name: "no user name claim", code: oidc.CodeForbidden, reason: "no_username_claim",
			user: &mockoidc.MockUser{Subject: "5", Email: "jane@example.com", EmailVerified: true},
			edit: func(c *oidc.Config) { c.UsernameClaim = "preferred_username" }},
		{name: "provider denied", code: oidc.CodeForbidden, reason: "provider_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.edit)
			if tt.user != nil {
				e.op.QueueUser(tt.user)
			}
			b := e.browser()
			s := e.start(b)
			cb := e.authorize(b, s.authURL)
			if tt.reason == "provider_error" {
				q := cb.Query()
				q.Del("code")
				q.Set("error", "access_denied")
				cb.RawQuery = q.Encode()
			}
			r := b.get(cb.String())
			if tt.code == "" {
				if r.code != http.StatusFound {
					t.Fatalf("callback = %d %s, want 302", r.code, r.body)
				}
				if code, _ := e.sessionUser(b); code != http.StatusOK {
					t.Fatalf("GET /auth/session = %d, want 200", code)
				}
				return
			}
			if r.code != http.StatusForbidden || errorCode(t, r) != tt.code {
				t.Fatalf("callback = %d %s, want 403 %s", r.code, r.body, tt.code)
			}
			if code, _ := e.sessionUser(b); code != http.StatusUnauthorized {
				t.Fatalf("GET /auth/session = %d, want 401", code)
			}
			want := map[string]any{"audit": true, "method": "oidc", "result": "oidc_forbidden", "reason": tt.reason}
			if tt.logged != "" {
				want["user"] = tt.logged
			}
			e.logs.findLog(t, "login failed", want)
			e.assertNoLeaks()
		})
	}
}

// A store that cannot create the session gives the contract's 503, and no
// cookie.
func TestStoreUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.store.failCreate.Store(true)
	b := e.browser()
	r := e.loginFlow(b)
	if r.code != http.StatusServiceUnavailable || errorCode(t, r) != "session_store_unavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("callback = %d %s (Retry-After %q), want 503 session_store_unavailable", r.code, r.body, r.header.Get("Retry-After"))
	}
	if cookieNamed(r.cookies, session.CookieName) != nil {
		t.Fatal("a session cookie was set")
	}
	e.assertNoLeaks()
}

func TestSecureCookies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	req := httptest.NewRequest(http.MethodGet, "https://app.example.com/auth/oidc/login", nil)
	rec := httptest.NewRecorder()
	e.login.Start(rec, req) // req.TLS is set: the Manager's default Secure says HTTPS
	c := cookieNamed(rec.Result().Cookies(), oidc.SecureStateCookieName)
	if c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Fatalf("state cookie under TLS = %+v, want __Host-tickgate-oidc, Secure, HttpOnly, SameSite=Lax, Path=/", c)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}

	// A plain-HTTP cookie does not count on HTTPS.
	loc, _ := url.Parse(rec.Header().Get("Location"))
	cb := httptest.NewRequest(http.MethodGet, "https://app.example.com/auth/oidc/callback?code=x&state="+loc.Query().Get("state"), nil)
	cb.AddCookie(&http.Cookie{Name: oidc.StateCookieName, Value: c.Value})
	rec = httptest.NewRecorder()
	e.login.Callback(rec, cb)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("callback with the non-__Host- cookie over HTTPS = %d, want 400", rec.Code)
	}
}

func TestMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, h := range []http.HandlerFunc{e.login.Start, e.login.Callback} {
		for _, m := range []string{http.MethodPost, http.MethodHead, http.MethodDelete} {
			rec := httptest.NewRecorder()
			h(rec, httptest.NewRequest(m, "/auth/oidc/x", nil))
			if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != http.MethodGet {
				t.Fatalf("%s = %d Allow %q, want 405 Allow GET", m, rec.Code, rec.Header().Get("Allow"))
			}
		}
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	sess := fakeSessions{}
	good := func() oidc.Config {
		return oidc.Config{
			IssuerURL:    "https://login.example.com",
			ClientID:     "tickgate",
			ClientSecret: secrets.NewValue("s3cret"),
			RedirectURL:  "https://app.example.com/auth/oidc/callback",
			AllowAnyUser: true,
			Sessions:     sess,
		}
	}
	tests := []struct {
		name string
		edit func(*oidc.Config)
		want string
	}{
		{"no issuer", func(c *oidc.Config) { c.IssuerURL = "" }, "IssuerURL: required"},
		{"http issuer", func(c *oidc.Config) { c.IssuerURL = "http://login.example.com" }, "https"},
		{"issuer with query", func(c *oidc.Config) { c.IssuerURL = "https://login.example.com/?a=b" }, "query"},
		{"issuer with user info", func(c *oidc.Config) { c.IssuerURL = "https://u:p@login.example.com" }, "user info"},
		{"relative issuer", func(c *oidc.Config) { c.IssuerURL = "login.example.com" }, "absolute"},
		{"no client id", func(c *oidc.Config) { c.ClientID = "" }, "ClientID"},
		{"no client secret", func(c *oidc.Config) { c.ClientSecret = secrets.Value{} }, "ClientSecret"},
		{"no redirect", func(c *oidc.Config) { c.RedirectURL = "" }, "RedirectURL"},
		{"redirect without path", func(c *oidc.Config) { c.RedirectURL = "https://app.example.com" }, "path"},
		{"http redirect", func(c *oidc.Config) { c.RedirectURL = "http://app.example.com/cb" }, "https"},
		{"redirect with fragment", func(c *oidc.Config) { c.RedirectURL = "https://app.example.com/cb#x" }, "fragment"},
		{"scopes without openid", func(c *oidc.Config) { c.Scopes = []string{"email"} }, "openid"},
		{"bad scope", func(c *oidc.Config) { c.Scopes = []string{"openid", "a b"} }, "scope token"},
		{"bad allowed user", func(c *oidc.Config) { c.AllowedUsers = []string{"jane doe"} }, "AllowedUsers"},
		{"bad allowed domain", func(c *oidc.Config) { c.AllowedDomains = []string{"example"} }, "AllowedDomains"},
		{"nobody allowed", func(c *oidc.Config) { c.AllowAnyUser = false }, "AllowAnyUser"},
		{"no sessions", func(c *oidc.Config) { c.Sessions = nil }, "Sessions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := good()
			tt.edit(&cfg)
			l, err := oidc.New(context.Background(), cfg)
			if err == nil {
				l.Close()
				t.Fatal("New accepted the config")
			}
			if !errors.Is(err, oidc.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidConfig mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatal("the error shows the client secret")
			}
		})
	}
}

func TestNewDiscovery(t *testing.T) {
	t.Parallel()
	client := &http.Client{Timeout: 30 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(client.CloseIdleConnections)
	cfg := func(issuer string) oidc.Config {
		return oidc.Config{
			IssuerURL:    issuer,
			ClientID:     "tickgate",
			ClientSecret: secrets.NewValue("s3cret"),
			RedirectURL:  "http://127.0.0.1:1/auth/oidc/callback",
			AllowAnyUser: true,
			Sessions:     fakeSessions{},
			HTTPClient:   client,
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	_ = ln.Close()

	op := newProvider(t, nil, nil)
	plainOnly := newProvider(t, nil, func(m *mockoidc.MockOIDC) { m.CodeChallengeMethodsSupported = []string{"plain"} })

	tests := []struct {
		name   string
		issuer string
		want   string
	}{
		{"unreachable", "http://" + closedAddr + "/oidc", "connect"},
		{"issuer mismatch", op.Issuer() + "/", "did not match"},
		{"no S256", plainOnly.Issuer(), "S256"},
		{"not a provider", op.Addr() + "/nothing", "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			l, err := oidc.New(ctx, cfg(tt.issuer))
			if err == nil {
				l.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, oidc.ErrDiscovery) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrDiscovery mentioning %q", err, tt.want)
			}
		})
	}
}

func TestEndSessionURL(t *testing.T) {
	t.Parallel()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                           srv.URL,
			"authorization_endpoint":           srv.URL + "/authorize",
			"token_endpoint":                   srv.URL + "/token",
			"jwks_uri":                         srv.URL + "/jwks",
			"end_session_endpoint":             srv.URL + "/logout",
			"code_challenge_methods_supported": []string{"S256"},
		})
	}))
	t.Cleanup(srv.Close)
	client := &http.Client{Timeout: 30 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(client.CloseIdleConnections)
	l, err := oidc.New(context.Background(), oidc.Config{
		IssuerURL:    srv.URL,
		ClientID:     "tickgate",
		ClientSecret: secrets.NewValue("s3cret"),
		RedirectURL:  "http://127.0.0.1:1/auth/oidc/callback",
		AllowAnyUser: true,
		Sessions:     fakeSessions{},
		HTTPClient:   client,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, want := l.EndSessionURL(), srv.URL+"/logout"; got != want {
		t.Fatalf("EndSessionURL = %q, want %q", got, want)
	}

	// mockoidc advertises none.
	e := newEnv(t, nil)
	if got := e.login.EndSessionURL(); got != "" {
		t.Fatalf("EndSessionURL = %q, want empty", got)
	}
}

// fakeSessions is for tests that never reach Establish.
type fakeSessions struct{}

func (fakeSessions) Establish(http.ResponseWriter, *http.Request, string, string) (*session.Session, error) {
	return nil, errors.New("not in this test")
}
func (fakeSessions) IsSecure(r *http.Request) bool   { return r.TLS != nil }
func (fakeSessions) ClientIP(r *http.Request) string { return r.RemoteAddr }
