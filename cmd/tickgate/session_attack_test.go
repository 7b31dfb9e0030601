package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestAttackSessionCookiesAndCSRF attacks the running product's session
// cookie and CSRF checks with requests no browser of ours would send:
// duplicate cookies, the other scheme's cookie name, foreign or null
// origins, cross-site and same-site (sibling subdomain) fetch metadata,
// a wrong X-CSRF value, and the cookie after logout. Every refusal is a
// contract error and nothing echoes the session id or the vendor key.
func TestAttackSessionCookiesAndCSRF(t *testing.T) {
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword})
	b := newBrowser(t, inst.url, &recorder{})
	login(t, b)
	base, _ := url.Parse(inst.url)
	var id string
	for _, c := range b.client.Jar.Cookies(base) {
		if c.Name == "tickgate" {
			id = c.Value
		}
	}
	if id == "" {
		t.Fatal("no tickgate cookie after login")
	}
	send := func(method, path string, hdr map[string]string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, inst.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		all := string(body) + strings.Join(res.Header.Values("Set-Cookie"), "\n")
		if strings.Contains(all, id) || strings.Contains(all, testKey) {
			t.Errorf("%s %s: answer holds the session id or the key", method, path)
		}
		return res.StatusCode, string(body)
	}
	cookie := "tickgate=" + id
	for _, tc := range []struct {
		name, method, path string
		hdr                map[string]string
		status             int
		code               string
	}{
		{"junk cookie before the valid one", "GET", "/auth/session", map[string]string{"Cookie": "tickgate=junk; " + cookie}, 401, "no_session"},
		{"__Host- name over plain http", "GET", "/auth/session", map[string]string{"Cookie": "__Host-tickgate=" + id}, 401, "no_session"},
		{"Origin null", "POST", "/auth/logout", map[string]string{"Cookie": cookie, "X-CSRF": "1", "Origin": "null"}, 403, "csrf"},
		{"foreign Origin", "POST", "/auth/logout", map[string]string{"Cookie": cookie, "X-CSRF": "1", "Origin": "http://evil.example"}, 403, "csrf"},
		{"Sec-Fetch-Site cross-site", "POST", "/auth/logout", map[string]string{"Cookie": cookie, "X-CSRF": "1", "Sec-Fetch-Site": "cross-site"}, 403, "csrf"},
		{"Sec-Fetch-Site same-site", "POST", "/auth/logout", map[string]string{"Cookie": cookie, "X-CSRF": "1", "Sec-Fetch-Site": "same-site"}, 403, "csrf"},
		{"X-CSRF true", "POST", "/auth/logout", map[string]string{"Cookie": cookie, "X-CSRF": "true"}, 403, "csrf"},
		{"API POST without X-CSRF", "POST", "/api/demo/v1/quote/AAPL", map[string]string{"Cookie": cookie, "Content-Type": "text/plain"}, 403, "csrf"},
		{"API PUT from a sibling", "PUT", "/api/demo/v1/quote/AAPL", map[string]string{"Cookie": cookie, "X-CSRF": "1", "Sec-Fetch-Site": "same-site"}, 403, "csrf"},
		{"still logged in", "GET", "/auth/session", map[string]string{"Cookie": cookie}, 200, ""},
		{"logout", "POST", "/auth/logout", map[string]string{"Cookie": cookie, "X-CSRF": "1", "Origin": inst.url}, 204, ""},
		{"cookie after logout", "GET", "/auth/session", map[string]string{"Cookie": cookie}, 401, "no_session"},
		{"API after logout", "GET", "/api/demo/v1/quote/AAPL", map[string]string{"Cookie": cookie}, 401, "no_session"},
	} {
		status, body := send(tc.method, tc.path, tc.hdr)
		if status != tc.status {
			t.Errorf("%s: %s %s = %d %s, want %d", tc.name, tc.method, tc.path, status, body, tc.status)
			continue
		}
		if tc.code != "" {
			if got := errorCode(t, body); got != tc.code {
				t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
			}
		}
	}
}
