package proxy

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tickgate/tickgate/config"
)

// recordingTransport answers 200 and keeps the URL of the last request,
// as the vendor would receive it.
type recordingTransport struct {
	mu   sync.Mutex
	last *url.URL
	hdr  http.Header
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	u := *r.URL
	rt.last, rt.hdr = &u, r.Header.Clone()
	rt.mu.Unlock()
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/plain"}},
		Body: io.NopCloser(strings.NewReader("ok")), ContentLength: 2, Request: r}, nil
}

func (rt *recordingTransport) take() (*url.URL, http.Header) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	u, h := rt.last, rt.hdr
	rt.last, rt.hdr = nil, nil
	return u, h
}

// FuzzServePath drives whole requests (any request target, any method)
// through ServeHTTP: whatever reaches the vendor is a path of the
// allowlist under the base path, read the way a vendor's server would
// read it (decoded once), with exactly one key, the server's, in the key
// slot, and no client credentials. Seeds are in
// testdata/fuzz/FuzzServePath.
func FuzzServePath(f *testing.F) {
	for _, s := range []string{
		"/api/demo/v1/quote/AAPL", "/api/demo/v1/quote/AAPL?apikey=mine&x=1", "/api/demo/v1/reference/a/b",
		"/api/demo/v1/quote/%2e%2e/%2e%2e/admin", "/api/demo/v1/quote/..%252fadmin", "/api/demo//v1/quotes",
		"/api/demo/v1/quote/a%2fb", "/api/demo/v1/quote/a%5cb", "/api/demo/v1/reference/%2e%2e%2f%2e%2e%2fadmin",
		"/api/demo/v1/quotes?apiKey=x&APIKEY=y", "/api/demo/v1/quote/A;x=1", "http://evil.example/api/demo/v1/quotes",
	} {
		f.Add("GET", s)
	}
	f.Add("POST", "/api/demo/v1/quotes")
	tr := &recordingTransport{}
	p, err := New(Config{
		Upstreams: map[string]config.Upstream{"demo": {
			BaseURL: "https://api.vendor.example/base",
			Key:     config.KeyRef{Secret: secretName, Placement: "query:apikey"},
			Routes: []config.Route{
				{Paths: []string{"/v1/quote/*", "/v1/quotes", "/v1/symbols", "/v1/reference/**"}},
				{Methods: []string{"GET"}, Paths: []string{"/v2/list/"}},
			},
			Coalesce: new(bool),
		}},
		Secrets:   newFakeSecrets(secretName, vendorKey),
		Transport: tr,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, target string) {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: tickgate.test\r\nCookie: tickgate=sid\r\nAuthorization: Bearer user\r\n\r\n")))
		if err != nil {
			return // net/http would answer 400 before tickgate
		}
		req.RemoteAddr = "192.0.2.1:1234"
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		if strings.Contains(rec.Body.String(), vendorKey) || strings.Contains(strings.Join(flatten(rec.Header()), "\n"), vendorKey) {
			t.Fatalf("%s %q: key in the answer", method, target)
		}
		sent, hdr := tr.take()
		if sent == nil {
			return
		}
		if sent.Scheme != "https" || sent.Host != "api.vendor.example" || sent.User != nil || sent.Fragment != "" {
			t.Fatalf("%s %q sent to %s", method, target, sent.Redacted())
		}
		// What the vendor's server sees: the request URI, decoded once.
		wire := sent.RequestURI()
		back, err := url.ParseRequestURI(wire)
		if err != nil {
			t.Fatalf("%s %q: vendor URI %q does not parse: %v", method, target, wire, err)
		}
		rest, ok := strings.CutPrefix(back.Path, "/base/")
		if !ok || !allowRE.MatchString("/"+rest) || strings.Contains(back.Path, "/../") || strings.Contains(back.Path, "/./") ||
			strings.ContainsAny(back.Path, "\\") {
			t.Fatalf("%s %q reached %q (decoded %q), outside the allowlist", method, target, wire, back.Path)
		}
		if lw := strings.ToLower(back.EscapedPath()); strings.Contains(lw, "%2f") || strings.Contains(lw, "%5c") || strings.Contains(lw, "%2e") || strings.Contains(lw, "%25") {
			t.Fatalf("%s %q: encoded separator or dot in %q", method, target, wire)
		}
		if keys := back.Query()["apikey"]; len(keys) != 1 || keys[0] != vendorKey {
			t.Fatalf("%s %q: key parameter %q", method, target, keys)
		}
		for k := range back.Query() {
			if strings.EqualFold(k, "apikey") && k != "apikey" {
				t.Fatalf("%s %q: client key slot %q forwarded", method, target, k)
			}
		}
		if hdr.Get("Cookie") != "" || hdr.Get("Authorization") != "" {
			t.Fatalf("%s %q: client credentials forwarded", method, target)
		}
	})
}

func flatten(h http.Header) []string {
	var out []string
	for k, vv := range h {
		out = append(out, k)
		out = append(out, vv...)
	}
	return out
}
