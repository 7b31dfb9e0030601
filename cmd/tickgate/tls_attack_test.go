package main

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/config"
)

// TestAttackPlainHTTPAddresses: plain HTTP without TLS or trusted proxies
// is refused on every spelling of a non-loopback or ambiguous address
// (a host name other than localhost resolves to whatever DNS says), and
// accepted only on loopback ones.
func TestAttackPlainHTTPAddresses(t *testing.T) {
	t.Parallel()
	for addr, loopback := range map[string]bool{
		"127.0.0.1:8080":             true,
		"127.9.9.9:8080":             true,
		"[::1]:8080":                 true,
		"[::ffff:127.0.0.1]:8080":    true,
		"localhost:8080":             true,
		"LOCALHOST:8080":             true,
		":8080":                      false,
		"0:8080":                     false,
		"0.0.0.0:8080":               false,
		"[::]:8080":                  false,
		"[::ffff:0.0.0.0]:8080":      false,
		"127.1:8080":                 false, // inet_aton spelling: not accepted as loopback, so refused
		"0x7f.0.0.1:8080":            false,
		"localhost.:8080":            false,
		"localhost.example.com:8080": false,
		"127.0.0.1.nip.io:8080":      false,
		"192.168.1.10:8080":          false,
	} {
		s, err := config.FromEnv(func(k string) (string, bool) {
			if k == "TICKGATE_ADDR" {
				return addr, true
			}
			return "", false
		})
		if err != nil {
			// An address the settings refuse outright is refused too.
			if loopback {
				t.Errorf("TICKGATE_ADDR=%s: %v", addr, err)
			}
			continue
		}
		if got := s.PlainHTTPAllowed(); got != loopback {
			t.Errorf("TICKGATE_ADDR=%s: plain HTTP allowed = %v, want %v", addr, got, loopback)
		}
	}
}

// TestAttackCertReloadHalfWritten: a renewal caught half-way (certificate
// truncated, or a new certificate beside the old key) keeps the loaded
// certificate in use, says so in the log once per broken version rather
// than on every handshake, and the completed renewal is picked up.
func TestAttackCertReloadHalfWritten(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, 1)
	var logs syncBuffer
	cr, err := newCertReloader(certFile, keyFile, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cr.checkEvery = 0 // check on every handshake
	serial := func() int64 {
		t.Helper()
		c, err := cr.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil || c == nil || c.Leaf == nil {
			t.Fatalf("GetCertificate = %v, %v", c, err)
		}
		return c.Leaf.SerialNumber.Int64()
	}
	if got := serial(); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}

	// The new certificate and key, kept aside; the certificate file is
	// then written half-way in place.
	next := t.TempDir()
	nextCert, nextKey := filepath.Join(next, "cert.pem"), filepath.Join(next, "key.pem")
	writeCert(t, nextCert, nextKey, 2)
	certPEM, _ := os.ReadFile(nextCert)
	keyPEM, _ := os.ReadFile(nextKey)
	if err := os.WriteFile(certFile, certPEM[:len(certPEM)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if got := serial(); got != 1 {
			t.Fatalf("half-written certificate: serial %d, want the old 1", got)
		}
	}
	// Whole certificate, old key: a mismatched pair is not served either.
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if got := serial(); got != 1 {
			t.Fatalf("certificate with the old key: serial %d, want the old 1", got)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "certificate did not load"); n != 2 {
		t.Errorf("failed reloads logged %d times, want once per broken version (2):\n%s", n, out)
	}
	if strings.Contains(out, "PRIVATE KEY") {
		t.Errorf("the log shows key material:\n%s", out)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != 2 {
		t.Fatalf("completed renewal: serial %d, want 2", got)
	}
	if !strings.Contains(logs.String(), "certificate reloaded") {
		t.Errorf("the reload is not logged:\n%s", logs.String())
	}
}

// TestAttackRedirectListener: the redirect listener's Location stays on
// the HTTPS origin whatever the Host header and path say, and carries no
// header a request could inject.
func TestAttackRedirectListener(t *testing.T) {
	t.Parallel()
	h := redirectHandler("https://app.example.com", "443")
	for _, tc := range []struct{ host, target, want string }{
		{"evil.example", "/x", "https://app.example.com/x"},
		{"app.example.com", "//evil.example/x", "https://app.example.com//evil.example/x"},
		{"app.example.com", "/%0d%0aSet-Cookie:%20a=b", "https://app.example.com/%0d%0aSet-Cookie:%20a=b"},
		{"app.example.com", "/a?q=%0d%0aX:1", "https://app.example.com/a?q=%0d%0aX:1"},
		{"app.example.com", "http://evil.example/y", "https://app.example.com/y"},
	} {
		req := httptest.NewRequest(http.MethodGet, tc.target, nil)
		req.Host = tc.host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusPermanentRedirect || rec.Header().Get("Location") != tc.want {
			t.Errorf("Host %q %s: %d Location %q, want 308 %q", tc.host, tc.target, rec.Code, rec.Header().Get("Location"), tc.want)
		}
		if len(rec.Header()) != 1 || rec.Body.Len() != 0 {
			t.Errorf("Host %q %s: answer has more than a Location: %v %q", tc.host, tc.target, rec.Header(), rec.Body.String())
		}
	}
	// Without an HTTPS origin the request's host is used, but nothing
	// that could move the redirect to another authority.
	h = redirectHandler("", "8443")
	for _, host := range []string{"app.example.com@evil.example", "evil.example/x", `a\b`, "a b", ""} {
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("Host %q: %d Location %q, want 400", host, rec.Code, rec.Header().Get("Location"))
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Host = "[::1]:80"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Header().Get("Location"); got != "https://[::1]:8443/x" {
		t.Errorf("IPv6 host: Location %q", got)
	}
}

// TestAttackTrustedProxiesSpellings: TICKGATE_TRUSTED_PROXIES given as
// IPv4-mapped IPv6 means the IPv4 network (peers are compared unmapped;
// kept mapped it would trust no one), and a zoned address is refused
// with a clear message rather than silently matching nothing.
func TestAttackTrustedProxiesSpellings(t *testing.T) {
	t.Parallel()
	env := func(v string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			if k == "TICKGATE_TRUSTED_PROXIES" {
				return v, true
			}
			return "", false
		}
	}
	s, err := config.FromEnv(env("::ffff:10.0.0.0/104, ::ffff:192.0.2.1, 2001:db8::/32"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range s.TrustedProxies {
		got = append(got, p.String())
	}
	if want := "10.0.0.0/8 192.0.2.1/32 2001:db8::/32"; strings.Join(got, " ") != want {
		t.Errorf("trusted proxies = %v, want %s", got, want)
	}
	for _, bad := range []string{"fe80::1%eth0", "::ffff:10.0.0.0/64", "10.0.0.0/8x"} {
		if _, err := config.FromEnv(env(bad)); err == nil || !strings.Contains(err.Error(), "TICKGATE_TRUSTED_PROXIES") {
			t.Errorf("TICKGATE_TRUSTED_PROXIES=%s: err = %v, want one naming the setting", bad, err)
		}
	}
}
