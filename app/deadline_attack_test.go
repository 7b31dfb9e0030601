package app

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAttackUpgradeHeadersKeepDeadlines: only a bodyless GET WebSocket
// handshake goes without the slow-body deadlines; Upgrade headers on any
// other request (the slowloris trick of a POST with "Upgrade: x") do not
// switch them off.
func TestAttackUpgradeHeadersKeepDeadlines(t *testing.T) {
	t.Parallel()
	req := func(method, body string, hdr map[string][]string) *http.Request {
		r := httptest.NewRequest(method, "/ws/demo", strings.NewReader(body))
		if body == "" {
			r.ContentLength = 0
		}
		for k, v := range hdr {
			r.Header[k] = v
		}
		return r
	}
	ws := map[string][]string{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}
	for _, tc := range []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"websocket GET", req("GET", "", ws), true},
		{"websocket GET, token list", req("GET", "", map[string][]string{"Upgrade": {"h2c, WebSocket"}, "Connection": {"keep-alive", "upgrade"}}), true},
		{"other upgrade", req("GET", "", map[string][]string{"Upgrade": {"x"}, "Connection": {"upgrade"}}), false},
		{"POST with upgrade headers", req("POST", "{\"username\":", ws), false},
		{"GET with a body", req("GET", "trickle", ws), false},
		{"chunked GET", func() *http.Request { r := req("GET", "", ws); r.TransferEncoding = []string{"chunked"}; return r }(), false},
		{"plain GET", req("GET", "", nil), false},
	} {
		if got := bodylessWSHandshake(tc.r); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
