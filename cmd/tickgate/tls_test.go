package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with the given
// serial number and returns its pool.
func writeCert(t *testing.T, certFile, keyFile string, serial int64) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "tickgate test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	// Write to temporary names and rename, as a certificate renewal would.
	for file, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: kb}} {
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool := writeCert(t, certFile, keyFile, 1)
	redirectAddr := freePort(t)
	inst := start(t, map[string]string{
		"TICKGATE_TLS_CERT": certFile, "TICKGATE_TLS_KEY": keyFile, "TICKGATE_REDIRECT_ADDR": redirectAddr,
		"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword,
	})
	if !strings.HasPrefix(inst.url, "https://") {
		t.Fatalf("url %s is not https", inst.url)
	}
	addr := strings.TrimPrefix(inst.url, "https://")

	handshake := func(cfg *tls.Config) (*tls.ConnectionState, error) {
		if cfg.RootCAs == nil {
			cfg.RootCAs = pool
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		st := c.ConnectionState()
		return &st, nil
	}
	versions := func(godebug string) {
		for _, tc := range []struct {
			name string
			cfg  *tls.Config
			ok   bool
		}{
			{"tls1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
			{"tls1.2 aead", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true},
			{"tls1.2 chacha", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}, true},
			{"tls1.2 cbc", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}}, false},
			{"tls1.2 rsa kex", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA}}, false},
			{"tls1.1", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false},
			{"tls1.0", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, false},
		} {
			st, err := handshake(tc.cfg)
			if (err == nil) != tc.ok {
				t.Errorf("GODEBUG=%q %s: handshake err = %v, want ok=%v", godebug, tc.name, err, tc.ok)
			}
			if err == nil && tc.cfg.MinVersion == tls.VersionTLS13 && st.Version != tls.VersionTLS13 {
				t.Errorf("GODEBUG=%q: a TLS 1.3 client got version %x", godebug, st.Version)
			}
		}
		// HTTP/2 is offered and chosen; with no ALPN the client gets
		// TLS 1.3 by default.
		st, err := handshake(&tls.Config{NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			t.Errorf("GODEBUG=%q: default client: %v", godebug, err)
		} else if st.NegotiatedProtocol != "h2" || st.Version != tls.VersionTLS13 {
			t.Errorf("GODEBUG=%q: default client: alpn=%q version=%x, want h2 over TLS 1.3", godebug, st.NegotiatedProtocol, st.Version)
		}
	}
	versions("")
	// GODEBUG can re-enable old protocols and suites in Go's defaults;
	// tickgate's explicit configuration must not follow it. The runtime
	// re-reads GODEBUG when it changes.
	weak := "tls10server=1,tlsrsakex=1,tls3des=1,tlsunsafeekm=1,tlssha1=1"
	t.Setenv("GODEBUG", weak)
	versions(weak)

	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest("POST", inst.url+"/auth/login", strings.NewReader(`{"username":"demo","password":"`+testPassword+`"}`))
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Origin", inst.url)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login over TLS: %d", resp.StatusCode)
	}
	cookie := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"__Host-tickgate=", "Secure", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("cookie %q lacks %s", cookie, want)
		}
	}
	if strings.Contains(strings.ToLower(cookie), "domain=") {
		t.Errorf("__Host- cookie has a Domain: %q", cookie)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(hsts, "max-age=63072000") || !strings.Contains(hsts, "includeSubDomains") {
		t.Errorf("HSTS = %q", hsts)
	}

	// The redirect listener sends everything to HTTPS and serves nothing.
	resp, err = client.Get("http://" + redirectAddr + "/api/demo/v1/quote/AAPL?x=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != inst.url+"/api/demo/v1/quote/AAPL?x=1" {
		t.Fatalf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// A renewed certificate is picked up without a restart.
	pool2 := writeCert(t, certFile, keyFile, 2)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := handshake(&tls.Config{RootCAs: pool2})
		if err == nil && st.PeerCertificates[0].SerialNumber.Int64() == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("renewed certificate not served: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
