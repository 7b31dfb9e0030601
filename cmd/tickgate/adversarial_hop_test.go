package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestAdversarialHopByHopConnection attacks the running product with
// Connection headers that name the headers tickgate adds, in any case,
// repeated, with empty elements, from both sides: a browser naming them
// must not strip what tickgate sends the vendor (its key, its request id)
// and must get its own named headers dropped; a vendor naming them must
// not strip what tickgate sends the browser (request id, rate-limit and
// security headers) and must not smuggle the named ones through.
func TestAdversarialHopByHopConnection(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []*http.Request
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Clone(r.Context()))
		mu.Unlock()
		h := w.Header()
		h.Add("Connection", "X-Request-Id, x-ratelimit-limit")
		h.Add("Connection", ", X-Content-Type-Options,Content-Security-Policy,  X-Vendor-Hop")
		h.Add("connection", "X-RATELIMIT-REMAINING")
		h.Set("X-Vendor-Hop", "must not reach the browser")
		h.Set("X-Request-Id", "vendor-chosen-id")
		h.Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"symbol":"AAPL","price":1}`))
	}))
	t.Cleanup(vendor.Close)
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword, "TICKGATE_DEMO_VENDOR_URL": vendor.URL})
	b := newBrowser(t, inst.url, &recorder{})
	login(t, b)
	cookie := cookieHeader(b.client.Jar.Cookies(mustURL(t, inst.url)))

	for i, conn := range [][]string{
		{}, // control: no Connection header
		{"Connection: X-Request-Id, apikey, Authorization, X-Browser-Hop"},
		{"Connection: x-request-id", "Connection: APIKEY", "Connection: x-browser-hop"},
		{"Connection: , , X-Request-Id,,X-Browser-Hop"},
		{"CONNECTION: keep-alive, X-REQUEST-ID, x-BROWSER-hop, Host, Cookie"},
		{"Connection: close", "Connection: X-Browser-Hop, User-Agent, Content-Length"},
	} {
		mu.Lock()
		got = nil
		mu.Unlock()
		hdrs := append([]string{cookie, "Origin: " + inst.url, "X-Browser-Hop: from the browser", "X-Request-Id: browser-chosen"}, conn...)
		// A symbol of its own per case: answers may be cached.
		status, resp := rawRequest(t, inst.url, fmt.Sprintf("GET /api/demo/v1/quote/SYM%d HTTP/1.1", i), hdrs...)
		if status != http.StatusOK {
			t.Errorf("%q: status %d", conn, status)
			continue
		}
		mu.Lock()
		reqs := got
		mu.Unlock()
		if len(reqs) != 1 {
			t.Errorf("%q: vendor saw %d requests", conn, len(reqs))
			continue
		}
		vr := reqs[0]
		if vr.URL.Query().Get("apikey") != testKey {
			t.Errorf("%q: the vendor did not get the key", conn)
		}
		if id := vr.Header.Get("X-Request-Id"); id == "" || id == "browser-chosen" {
			t.Errorf("%q: vendor got X-Request-Id %q, want tickgate's", conn, id)
		}
		if (len(conn) > 0 && vr.Header.Get("X-Browser-Hop") != "") || vr.Header.Get("Cookie") != "" {
			t.Errorf("%q: a hop-by-hop or cookie header reached the vendor: %v", conn, vr.Header)
		}
		for _, c := range vr.Header.Values("Connection") {
			if strings.Contains(strings.ToLower(c), "request-id") || strings.Contains(strings.ToLower(c), "apikey") {
				t.Errorf("%q: vendor got Connection %q", conn, c)
			}
		}
		// The answer keeps tickgate's own headers.
		if id := resp.Get("X-Request-Id"); id == "" || id == "vendor-chosen-id" || id == "browser-chosen" {
			t.Errorf("%q: browser got X-Request-Id %q, want tickgate's", conn, id)
		}
		for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-Content-Type-Options"} {
			if resp.Get(h) == "" {
				t.Errorf("%q: the vendor's Connection header removed %s from the answer", conn, h)
			}
		}
		if resp.Get("X-Vendor-Hop") != "" {
			t.Errorf("%q: a header the vendor named in Connection reached the browser", conn)
		}
		checkAnswer(t, "hop", status, resp)
	}
}
