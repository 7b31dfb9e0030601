package main

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// allowedVendorPath is the demo upstream's allowlist (config/demo.go) as
// the vendor must see it: "*" is exactly one non-empty segment.
var allowedVendorPath = regexp.MustCompile(`^/v1/(quote/[^/]+|quotes|symbols|last/[^/]+)$`)

// TestAdversarialPathTricks sends paths that try to escape the demo
// upstream's allowlist through the running product: encoded and
// double-encoded slashes and dots, backslashes, empty and dot segments,
// NUL, semicolons, case, overlong paths. The vendor (a recording server)
// sees only allowlisted paths, and the browser gets a contract error or
// the answer, never a 5xx.
func TestAdversarialPathTricks(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.EscapedPath())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(vendor.Close)
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword,
		"TICKGATE_DEMO_VENDOR_URL": vendor.URL, "TICKGATE_LIMIT_IP": "1000/1s", "TICKGATE_LIMIT_SESSION": "1000/1s"})
	b := newBrowser(t, inst.url, &recorder{})
	login(t, b)
	cookie := cookieHeader(b.client.Jar.Cookies(mustURL(t, inst.url)))
	for _, p := range []string{
		"/v1/quote/AAPL", // control: reaches the vendor
		"/v1/quote/..%2f..%2fadmin",
		"/v1/quote/%2e%2e/%2e%2e/admin",
		"/v1/quote/%252e%252e%252fadmin",
		"/v1/quote/AAPL%2fextra",
		"/v1/quote/AAPL%252fextra",
		"/v1/quote/..%5c..%5cadmin",
		"/v1/quote/AAPL\\..\\admin",
		"/v1/quote/AAPL/",
		"/v1/quote//AAPL",
		"/v1//quotes",
		"/v1/./symbols/../admin",
		"/v1/quote/./../../admin",
		"/v1/quote/%00",
		"/v1/quote/AAPL;/admin",
		"/v1/quotes;x=1/../../admin",
		"/V1/QUOTES",
		"/v1/quote/%C0%AE%C0%AE/admin",
		"/v1/quote/%E2%80%AE",
		"/v1/quote/" + strings.Repeat("A", 9000),
		"/v1/quote/" + strings.Repeat("a/", 2000),
		"/v1/admin",
		"/v1/quote",
	} {
		status, hdr := rawRequest(t, inst.url, "GET /api/demo"+p+" HTTP/1.1", cookie, "Origin: "+inst.url)
		if len(p) > 60 {
			p = p[:60] + "…"
		}
		checkAnswer(t, p, status, hdr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("the vendor saw nothing, not even the control request")
	}
	for _, s := range seen {
		low := strings.ToLower(s)
		if !allowedVendorPath.MatchString(s) || strings.Contains(low, "%2f") || strings.Contains(low, "%5c") || strings.Contains(s, "\\") ||
			strings.Contains(low, "%00") || strings.Contains(low, "%2e%2e") || strings.Contains(s, "/..") || strings.Contains(s, "/.") {
			t.Errorf("vendor saw %q, outside the allowlist", s)
		}
	}
}
