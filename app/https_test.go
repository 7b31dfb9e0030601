package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/tickgate/tickgate/guard"
)

// TestRequireHTTPS: plain HTTP is served to loopback peers and through a
// trusted proxy reporting HTTPS; anything else is redirected (GET/HEAD,
// query kept) or refused. Health checks are exempt only as spelled.
func TestRequireHTTPS(t *testing.T) {
	t.Parallel()
	ips := guard.NewIPResolver([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	h := requireHTTPS(ips, []string{"https://app.example.com"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	for _, tc := range []struct {
		name, method, target, peer, proto string
		code                              int
		location                          string
	}{
		{"loopback", "GET", "/api/demo/x", "127.0.0.1:5000", "", http.StatusTeapot, ""},
		{"remote GET", "GET", "/api/demo/x?symbol=AAPL", "192.0.2.7:5000", "", http.StatusPermanentRedirect, "https://app.example.com/api/demo/x?symbol=AAPL"},
		{"remote POST", "POST", "/auth/login", "192.0.2.7:5000", "", http.StatusForbidden, ""},
		{"remote healthz", "GET", "/healthz", "192.0.2.7:5000", "", http.StatusTeapot, ""},
		{"escaped healthz", "GET", "/health%7A", "192.0.2.7:5000", "", http.StatusPermanentRedirect, "https://app.example.com/health%7A"},
		{"trusted proxy, https", "POST", "/auth/login", "10.1.2.3:5000", "https", http.StatusTeapot, ""},
		{"trusted proxy, http", "POST", "/auth/login", "10.1.2.3:5000", "http", http.StatusForbidden, ""},
		{"untrusted peer claims https", "POST", "/auth/login", "192.0.2.7:5000", "https", http.StatusForbidden, ""},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		r.RemoteAddr = tc.peer
		if tc.proto != "" {
			r.Header.Set("X-Forwarded-Proto", tc.proto)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.code || w.Header().Get("Location") != tc.location {
			t.Errorf("%s: %d Location=%q, want %d %q", tc.name, w.Code, w.Header().Get("Location"), tc.code, tc.location)
		}
		if tc.code == http.StatusForbidden && errorCodeOf(w.Body.String()) != "https_required" {
			t.Errorf("%s: body %s", tc.name, w.Body)
		}
	}
}

func errorCodeOf(body string) string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal([]byte(body), &e)
	return e.Error.Code
}
