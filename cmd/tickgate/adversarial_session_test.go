package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestAdversarialSessionFixation: cookies an attacker planted before login
// (its own value, the other scheme's name, several at once, an old
// logged-out one) are never adopted: login issues a fresh id with the
// plain-HTTP deployment's attributes (HttpOnly, SameSite=Strict, Path=/,
// no Domain, never Secure-less __Host-), and the planted values stay
// unauthenticated afterwards.
func TestAdversarialSessionFixation(t *testing.T) {
	t.Parallel()
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword, "TICKGATE_LIMIT_LOGIN": "100/1m"})
	loginWith := func(cookie string) (*http.Cookie, string) {
		t.Helper()
		hdr := []string{"Content-Type: application/json", "X-CSRF: 1", "Origin: " + inst.url}
		if cookie != "" {
			hdr = append(hdr, "Cookie: "+cookie)
		}
		body := `{"username":"demo","password":"` + testPassword + `"}`
		status, resp := rawRequestBody(t, inst.url, "POST /auth/login HTTP/1.1", body, hdr...)
		if status != http.StatusOK {
			t.Fatalf("login with Cookie %q: %d", cookie, status)
		}
		raw := resp.Values("Set-Cookie")
		res := http.Response{Header: http.Header{"Set-Cookie": raw}}
		for _, c := range res.Cookies() {
			if c.Name == "tickgate" && c.Value != "" {
				return c, strings.Join(raw, "\n")
			}
		}
		t.Fatalf("login set no tickgate cookie: %q", raw)
		return nil, ""
	}
	old, _ := loginWith("")
	// Log the old session out: its id is now a known, dead value.
	if st, _ := rawRequest(t, inst.url, "POST /auth/logout HTTP/1.1", "Cookie: tickgate="+old.Value, "X-CSRF: 1", "Origin: "+inst.url, "Content-Length: 0"); st != http.StatusNoContent {
		t.Fatalf("logout: %d", st)
	}
	planted := []string{
		"tickgate=attacker-chosen-session-id-0123456789abcdef",
		"tickgate=" + old.Value,
		"__Host-tickgate=attacker-chosen; tickgate=attacker-chosen-2",
		"tickgate=a; tickgate=b; tickgate=" + strings.Repeat("c", 4000),
		"tickgate=%00%0d%0a",
	}
	for _, p := range planted {
		c, raw := loginWith(p)
		if strings.Contains(p, c.Value) {
			t.Errorf("login with planted %q kept an attacker-known id", p)
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("cookie attributes %q", raw)
		}
		if strings.Contains(raw, "__Host-") {
			t.Errorf("__Host- cookie over plain HTTP: %q", raw)
		}
		for _, v := range strings.Split(strings.TrimPrefix(p, "__Host-"), ";") {
			_, val, _ := strings.Cut(v, "=")
			if st, _ := rawRequest(t, inst.url, "GET /auth/session HTTP/1.1", "Cookie: tickgate="+val); st != http.StatusUnauthorized {
				t.Errorf("planted value %q answers %d after the victim's login, want 401", val, st)
			}
		}
	}
}
