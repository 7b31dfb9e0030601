package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"
)

// oidcProvider is a mock OpenID Connect provider on loopback that keeps
// every token it issued, so tests can check that none leaks.
type oidcProvider struct {
	op *mockoidc.MockOIDC

	mu     sync.Mutex
	tokens []string
}

func startProvider(t *testing.T) *oidcProvider {
	t.Helper()
	op, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &oidcProvider{op: op}
	err = op.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != mockoidc.TokenEndpoint {
				next.ServeHTTP(w, r)
				return
			}
			rr := httptest.NewRecorder()
			next.ServeHTTP(rr, r)
			var body map[string]any
			if json.Unmarshal(rr.Body.Bytes(), &body) == nil {
				p.mu.Lock()
				for _, k := range []string{"access_token", "id_token", "refresh_token"} {
					if v, _ := body[k].(string); v != "" {
						p.tokens = append(p.tokens, v)
					}
				}
				p.mu.Unlock()
			}
			for k, v := range rr.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rr.Code)
			_, _ = w.Write(rr.Body.Bytes())
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = op.Shutdown() })
	return p
}

func (p *oidcProvider) issued() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.tokens...)
}

// env is the tickgate environment for this provider: the client secret
// comes from the secrets provider (here the environment) under its name.
func (p *oidcProvider) env(extra map[string]string) map[string]string {
	cfg := p.op.Config()
	env := map[string]string{
		"TICKGATE_DEMO_KEY":             testKey,
		"TICKGATE_DEMO_PASSWORD":        testPassword,
		"TICKGATE_OIDC_ISSUER":          cfg.Issuer,
		"TICKGATE_OIDC_CLIENT_ID":       cfg.ClientID,
		"TICKGATE_OIDC_CLIENT_SECRET":   "OIDC_CLIENT_SECRET",
		"OIDC_CLIENT_SECRET":            cfg.ClientSecret,
		"TICKGATE_OIDC_ALLOWED_DOMAINS": "example.com",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// get fetches an absolute URL with the browser's jar, not following
// redirects, and returns the response and its body.
func (b *browser) get(rawURL string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Get(rawURL)
	if err != nil {
		b.t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// oidcRedirects runs the browser's side of the flow up to the callback:
// GET /auth/oidc/login, then the provider's authorization endpoint. It
// returns the callback URL the provider sent the browser to, and the
// value of the state cookie tickgate set.
func oidcRedirects(t *testing.T, b *browser) (callback *url.URL, stateCookie string) {
	t.Helper()
	resp, body := b.do("GET", "/auth/oidc/login", "", nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /auth/oidc/login = %d %s, want 302", resp.StatusCode, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "tickgate-oidc" {
			stateCookie = c.Value
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
				t.Errorf("state cookie attributes: %+v", c)
			}
		}
	}
	if stateCookie == "" {
		t.Fatalf("no state cookie in %v", resp.Header["Set-Cookie"])
	}
	authz, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := authz.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
		t.Fatalf("authorization request lacks PKCE, nonce or state: %s", authz.RawQuery)
	}
	if got, want := q.Get("redirect_uri"), b.base+"/auth/oidc/callback"; got != want {
		t.Fatalf("redirect_uri = %q, want %q (derived from the public origin)", got, want)
	}
	resp, body = b.get(authz.String())
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("provider authorize = %d %s", resp.StatusCode, body)
	}
	callback, err = url.Parse(resp.Header.Get("Location"))
	if err != nil || callback.Path != "/auth/oidc/callback" {
		t.Fatalf("provider sent the browser to %q", resp.Header.Get("Location"))
	}
	return callback, stateCookie
}

// TestOIDCEndToEnd runs the real program with OIDC login against a mock
// provider and walks a browser through it: the page offers SSO, login
// redirects through the provider and back, the session works for
// /auth/session, REST and WebSocket, logout ends it (closing the socket
// with 4001), and a tampered state is refused with the documented error.
// No token, code, state, secret or cookie value reaches the log, and no
// token or secret reaches the browser.
func TestOIDCEndToEnd(t *testing.T) {
	p := startProvider(t)
	inst := start(t, p.env(nil))
	rec := &recorder{}
	b := newBrowser(t, inst.url, rec)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The page offers "Sign in with SSO".
	if resp, page := b.do("GET", "/", "", nil); resp.StatusCode != 200 || !strings.Contains(page, `data-sso-login="/auth/oidc/login"`) {
		t.Fatalf("page does not offer SSO: %d\n%.400s", resp.StatusCode, page)
	}

	callback, stateCookie := oidcRedirects(t, b)
	code, state := callback.Query().Get("code"), callback.Query().Get("state")
	resp, body := b.get(callback.String())
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("callback = %d %q %s, want 302 to /", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("callback Cache-Control = %q", resp.Header.Get("Cache-Control"))
	}
	var sessionCookie string
	for _, c := range resp.Cookies() {
		switch c.Name {
		case "tickgate":
			sessionCookie = c.Value
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("session cookie attributes: %+v", c)
			}
		case "tickgate-oidc":
			if c.MaxAge >= 0 {
				t.Errorf("state cookie not cleared: %+v", c)
			}
		}
	}
	if sessionCookie == "" {
		t.Fatalf("no session cookie after the callback: %v", resp.Header["Set-Cookie"])
	}

	resp, body = b.do("GET", "/auth/session", "", nil)
	var info struct{ User, IdleExpiresAt, ExpiresAt string }
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &info) != nil || info.User != "jane.doe@example.com" {
		t.Fatalf("session after OIDC login: %d %s", resp.StatusCode, body)
	}
	resp, body = b.do("GET", "/api/demo/v1/quote/AAPL", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"AAPL"`) {
		t.Fatalf("REST call with the OIDC session: %d %s", resp.StatusCode, body)
	}
	ws, _, err := b.dialWS(ctx, "demo")
	if err != nil {
		t.Fatalf("ws with the OIDC session: %v", err)
	}
	ws.until(ctx, "ready", nil)

	// The callback URL replayed (same state, same code) is refused.
	b.client.Jar.SetCookies(callback, []*http.Cookie{{Name: "tickgate-oidc", Value: stateCookie, Path: "/"}})
	if resp, body := b.get(callback.String()); resp.StatusCode != http.StatusBadRequest || errorCode(t, body) != "oidc_state" {
		t.Fatalf("replayed callback = %d %s, want 400 oidc_state", resp.StatusCode, body)
	}

	resp, body = b.do("POST", "/auth/logout", "", map[string]string{"X-CSRF": "1"})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout = %d %s", resp.StatusCode, body)
	}
	if got := ws.closeCode(ctx); got != 4001 {
		t.Fatalf("ws close after logout = %d, want 4001", got)
	}
	if resp, body := b.do("GET", "/auth/session", "", nil); resp.StatusCode != 401 || errorCode(t, body) != "no_session" {
		t.Fatalf("session after logout: %d %s", resp.StatusCode, body)
	}
	if resp, _ := b.do("GET", "/api/demo/v1/quote/AAPL", "", nil); resp.StatusCode != 401 {
		t.Fatalf("REST after logout = %d, want 401", resp.StatusCode)
	}

	// Tampered state: the provider's answer does not match the browser's
	// state cookie (login CSRF). 400 oidc_state and no session.
	b2 := newBrowser(t, inst.url, rec)
	callback2, stateCookie2 := oidcRedirects(t, b2)
	q := callback2.Query()
	tampered := []byte(q.Get("state"))
	tampered[3] ^= 1
	q.Set("state", string(tampered))
	callback2.RawQuery = q.Encode()
	resp, body = b2.get(callback2.String())
	if resp.StatusCode != http.StatusBadRequest || errorCode(t, body) != "oidc_state" {
		t.Fatalf("tampered state = %d %s, want 400 oidc_state", resp.StatusCode, body)
	}
	if resp, _ := b2.do("GET", "/auth/session", "", nil); resp.StatusCode != 401 {
		t.Fatalf("session after a tampered state = %d, want 401", resp.StatusCode)
	}

	// A user the settings do not allow: 403 oidc_forbidden.
	p.op.QueueUser(&mockoidc.MockUser{Subject: "666", Email: "eve@evil.example", EmailVerified: true})
	b3 := newBrowser(t, inst.url, rec)
	callback3, _ := oidcRedirects(t, b3)
	if resp, body := b3.get(callback3.String()); resp.StatusCode != http.StatusForbidden || errorCode(t, body) != "oidc_forbidden" {
		t.Fatalf("user outside the allowed domains = %d %s, want 403 oidc_forbidden", resp.StatusCode, body)
	}

	// Nothing secret in the log; no token or secret in what the browsers saw.
	logs := inst.stderr.String()
	for _, want := range []string{`"method":"oidc"`, `"reason":"state_mismatch"`, `"reason":"not_allowed"`, `"msg":"logout"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	tokens := p.issued()
	if len(tokens) < 2 {
		t.Fatalf("provider issued %d tokens; the flow did not reach the token endpoint", len(tokens))
	}
	clientSecret := p.op.Config().ClientSecret
	for name, v := range map[string]string{
		"client secret": clientSecret, "code": code, "state": state, "state cookie": stateCookie,
		"second state cookie": stateCookie2, "session cookie": sessionCookie, "demo password": testPassword, "vendor key": testKey,
	} {
		if v != "" && strings.Contains(logs, v) {
			t.Errorf("log contains the %s", name)
		}
	}
	seen := rec.String()
	for i, tok := range tokens {
		if strings.Contains(logs, tok) {
			t.Errorf("log contains token %d", i)
		}
		if strings.Contains(seen, tok) {
			t.Errorf("browser received token %d", i)
		}
	}
	if strings.Contains(seen, clientSecret) {
		t.Error("browser received the client secret")
	}
}

// TestOIDCStartup covers the start-up and check-config side: an
// unreachable issuer is one clear line, OIDC with nobody allowed is
// refused, a client secret pasted in place of its name is refused without
// being echoed, and with OIDC on local users are optional.
func TestOIDCStartup(t *testing.T) {
	p := startProvider(t)

	t.Run("unreachable issuer", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + ln.Addr().String() + "/oidc"
		ln.Close()
		env := p.env(map[string]string{"TICKGATE_OIDC_ISSUER": dead, "TICKGATE_ADDR": "127.0.0.1:0", "TICKGATE_ADMIN_ADDR": ""})
		_, _, err = runWith(t, nil, env, "")
		if err == nil || !strings.HasPrefix(oneLine(err), "TICKGATE_OIDC_ISSUER: ") || !strings.Contains(err.Error(), dead) {
			t.Fatalf("serve with an unreachable issuer: %v", err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("start-up error is not one line: %q", err)
		}
		_, stderr, err := runWith(t, []string{"check-config"}, env, "")
		if !errors.Is(err, errReported) || !strings.Contains(stderr, "tickgate: TICKGATE_OIDC_ISSUER: ") {
			t.Fatalf("check-config with an unreachable issuer: %q %v", stderr, err)
		}
	})

	t.Run("check-config ok", func(t *testing.T) {
		out, stderr, err := runWith(t, []string{"check-config"}, p.env(nil), "")
		if err != nil || !strings.Contains(out, "ok: OIDC login through "+p.op.Issuer()) {
			t.Fatalf("check-config: %q %q %v", out, stderr, err)
		}
	})

	t.Run("no local users needed", func(t *testing.T) {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "tickgate.yaml")
		yaml := "upstreams:\n  vendor:\n    base_url: https://api.vendor.example\n    key: {secret: VENDOR_KEY, placement: \"query:apikey\"}\n    routes: [{paths: [\"/v1/quote/*\"]}]\n"
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		env := p.env(map[string]string{"TICKGATE_CONFIG": cfg, "VENDOR_KEY": "vendor-key-0123456789"})
		if out, stderr, err := runWith(t, []string{"check-config"}, env, ""); err != nil || !strings.Contains(out, "0 user(s)") {
			t.Fatalf("check-config with OIDC and no local users: %q %q %v", out, stderr, err)
		}
		delete(env, "TICKGATE_OIDC_ISSUER")
		delete(env, "TICKGATE_OIDC_CLIENT_ID")
		delete(env, "TICKGATE_OIDC_CLIENT_SECRET")
		delete(env, "TICKGATE_OIDC_ALLOWED_DOMAINS")
		if _, stderr, err := runWith(t, []string{"check-config"}, env, ""); err == nil || !strings.Contains(stderr, "no users configured") {
			t.Fatalf("check-config with neither users nor OIDC: %q %v", stderr, err)
		}
	})

	const pasted = "Zq7hT0pXw2LkS9vNc4RbYe6UaMd1FgHj"
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"nobody allowed", map[string]string{"TICKGATE_OIDC_ALLOWED_DOMAINS": ""},
			[]string{"TICKGATE_OIDC_ALLOWED_USERS: nobody may log in through OIDC"}},
		{"domain admission with an editable name", map[string]string{"TICKGATE_OIDC_USERNAME_CLAIM": "preferred_username"},
			[]string{"TICKGATE_OIDC_USERNAME_CLAIM: must be email when TICKGATE_OIDC_ALLOWED_DOMAINS admits users"}},
		{"secret value instead of name", map[string]string{"TICKGATE_OIDC_CLIENT_SECRET": pasted},
			[]string{"TICKGATE_OIDC_CLIENT_SECRET: must name a secret"}},
		{"secret missing", map[string]string{"TICKGATE_OIDC_CLIENT_SECRET": "NO_SUCH_SECRET"},
			[]string{"TICKGATE_OIDC_CLIENT_SECRET: secret NO_SUCH_SECRET"}},
		{"settings without issuer", map[string]string{"TICKGATE_OIDC_ISSUER": ""},
			[]string{"TICKGATE_OIDC_ISSUER: required when other OIDC settings are set (TICKGATE_OIDC_ALLOWED_DOMAINS, TICKGATE_OIDC_CLIENT_ID, TICKGATE_OIDC_CLIENT_SECRET)"}},
		{"bad urls and scopes", map[string]string{
			"TICKGATE_OIDC_ISSUER": "http://login.example.com/realm", "TICKGATE_OIDC_REDIRECT_URL": "https://app.example.com/callback",
			"TICKGATE_OIDC_SCOPES": "profile email", "TICKGATE_OIDC_ALLOW_ANY_USER": "yes", "TICKGATE_OIDC_CLIENT_ID": ""},
			[]string{
				"TICKGATE_OIDC_ISSUER: \"http://login.example.com/realm\" must be https",
				"TICKGATE_OIDC_REDIRECT_URL: the path must be /auth/oidc/callback",
				"TICKGATE_OIDC_SCOPES: must include openid",
				"TICKGATE_OIDC_ALLOW_ANY_USER: \"yes\" is not 0 or 1",
				"TICKGATE_OIDC_CLIENT_ID: required",
			}},
		{"redirect on a foreign origin", map[string]string{
			"TICKGATE_PUBLIC_ORIGIN": "http://127.0.0.1:8080", "TICKGATE_OIDC_REDIRECT_URL": "http://localhost:9999/auth/oidc/callback"},
			[]string{"TICKGATE_OIDC_REDIRECT_URL: origin http://localhost:9999 is not one of TICKGATE_PUBLIC_ORIGIN"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := p.env(tc.env)
			for k, v := range tc.env {
				if v == "" {
					delete(env, k)
				}
			}
			_, stderr, err := runWith(t, []string{"check-config"}, env, "")
			if err == nil {
				t.Fatal("check-config accepted it")
			}
			for _, want := range tc.want {
				if !strings.Contains(stderr, "tickgate: "+want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if strings.Contains(stderr, pasted) || strings.Contains(stderr, p.op.Config().ClientSecret) {
				t.Errorf("stderr shows a secret:\n%s", stderr)
			}
			// Serving refuses the same settings, before listening.
			if _, _, err := runWith(t, nil, env, ""); err == nil {
				t.Error("serve accepted it")
			}
		})
	}
}

var listenAddrRE = regexp.MustCompile(`"msg":"tickgate started"[^\n]*?"addr":"([^"]+)"`)

// TestCookiesBehindTrustedProxy runs tickgate behind a TLS-terminating
// proxy it trusts (X-Forwarded-Proto: https from TICKGATE_TRUSTED_PROXIES):
// the password login's session cookie, the OIDC state cookie and the
// OIDC login's session cookie all follow the HTTPS rules of the contract
// (__Host- prefix, Secure, HttpOnly, Path=/, no Domain), and the OIDC
// redirect URL is derived from the public https origin.
func TestCookiesBehindTrustedProxy(t *testing.T) {
	p := startProvider(t)
	const public = "https://app.example.test"
	inst := start(t, p.env(map[string]string{
		"TICKGATE_TRUSTED_PROXIES": "127.0.0.1/32",
		"TICKGATE_PUBLIC_ORIGIN":   public,
	}))
	m := listenAddrRE.FindStringSubmatch(inst.stderr.String())
	if m == nil {
		t.Fatalf("no listen address in the log:\n%s", inst.stderr.String())
	}
	base := "http://" + m[1]
	client := &http.Client{
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(client.CloseIdleConnections)
	// viaProxy sends what the proxy would forward for a browser on the
	// public https origin.
	viaProxy := func(method, path, body string, cookie *http.Cookie, hdr map[string]string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		req.Header.Set("Origin", public)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	secureCookie := func(resp *http.Response, name string) *http.Cookie {
		t.Helper()
		for _, c := range resp.Cookies() {
			if c.Name != name {
				continue
			}
			if !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" {
				t.Errorf("%s attributes: %+v", name, c)
			}
			return c
		}
		t.Fatalf("no %s cookie in %q", name, resp.Header["Set-Cookie"])
		return nil
	}

	// Password login.
	resp := viaProxy("POST", "/auth/login", `{"username":"demo","password":"`+testPassword+`"}`, nil,
		map[string]string{"X-CSRF": "1", "Content-Type": "application/json"})
	if resp.StatusCode != 200 {
		t.Fatalf("login via the proxy = %d", resp.StatusCode)
	}
	sc := secureCookie(resp, "__Host-tickgate")
	if sc.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie SameSite = %v, want Strict", sc.SameSite)
	}
	if resp := viaProxy("GET", "/auth/session", "", sc, nil); resp.StatusCode != 200 {
		t.Fatalf("session via the proxy = %d", resp.StatusCode)
	}

	// OIDC login.
	resp = viaProxy("GET", "/auth/oidc/login", "", nil, nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("oidc login via the proxy = %d", resp.StatusCode)
	}
	state := secureCookie(resp, "__Host-tickgate-oidc")
	authz, _ := url.Parse(resp.Header.Get("Location"))
	if got, want := authz.Query().Get("redirect_uri"), public+"/auth/oidc/callback"; got != want {
		t.Fatalf("redirect_uri = %q, want %q", got, want)
	}
	presp, err := client.Get(authz.String())
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	cb, err := url.Parse(presp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(cb.String(), public+"/auth/oidc/callback?") {
		t.Fatalf("provider redirected to %q", presp.Header.Get("Location"))
	}
	resp = viaProxy("GET", cb.Path+"?"+cb.RawQuery, "", state, nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("callback via the proxy = %d", resp.StatusCode)
	}
	sc = secureCookie(resp, "__Host-tickgate")
	if resp := viaProxy("GET", "/auth/session", "", sc, nil); resp.StatusCode != 200 {
		t.Fatalf("OIDC session via the proxy = %d", resp.StatusCode)
	}
}

// TestOIDCOffByDefault: without TICKGATE_OIDC_ISSUER there are no OIDC
// routes and the page offers no SSO.
func TestOIDCOffByDefault(t *testing.T) {
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword})
	b := newBrowser(t, inst.url, &recorder{})
	for _, path := range []string{"/auth/oidc/login", "/auth/oidc/callback?code=x&state=y"} {
		if resp, body := b.do("GET", path, "", nil); resp.StatusCode != http.StatusNotFound || errorCode(t, body) != "not_found" {
			t.Errorf("GET %s without OIDC = %d %s, want 404 not_found", path, resp.StatusCode, body)
		}
	}
	if resp, page := b.do("GET", "/", "", nil); resp.StatusCode != 200 || !strings.Contains(page, `<html lang="en" data-feeds=`) ||
		strings.Contains(page, "data-sso-login=") {
		t.Errorf("page without OIDC: %d, want <html> without data-sso-login", resp.StatusCode)
	}
}
