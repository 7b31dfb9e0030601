package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// certReloader serves the certificate in certFile/keyFile and reloads it
// when either file changes, so a renewed certificate takes effect with no
// restart and no dropped connection.
type certReloader struct {
	certFile, keyFile string
	checkEvery        time.Duration

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	cr := &certReloader{certFile: certFile, keyFile: keyFile, checkEvery: 2 * time.Second}
	if err := cr.reload(); err != nil {
		return nil, err
	}
	return cr, nil
}

func (cr *certReloader) fileStamp() string {
	var b strings.Builder
	for _, f := range []string{cr.certFile, cr.keyFile} {
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%d/%d;", st.ModTime().UnixNano(), st.Size())
		}
	}
	return b.String()
}

func (cr *certReloader) reload() error {
	stamp := cr.fileStamp()
	cert, err := tls.LoadX509KeyPair(cr.certFile, cr.keyFile)
	if err != nil {
		return fmt.Errorf("TICKGATE_TLS_CERT/TICKGATE_TLS_KEY: %w", err)
	}
	cr.cert, cr.stamp = &cert, stamp
	return nil
}

// GetCertificate is tls.Config.GetCertificate. A certificate that fails
// to load (e.g. half-written during renewal) keeps the previous one.
func (cr *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if now := time.Now(); now.Sub(cr.checked) >= cr.checkEvery {
		cr.checked = now
		if cr.fileStamp() != cr.stamp {
			_ = cr.reload()
		}
	}
	return cr.cert, nil
}

// serverTLSConfig is TLS 1.2 or later with AEAD suites only (1.3 suites
// are all AEAD and not configurable). Setting CipherSuites explicitly
// keeps CBC suites off whatever GODEBUG says.
func serverTLSConfig(cr *certReloader) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: cr.GetCertificate,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos: []string{"h2", "http/1.1"},
	}
}

// redirectHandler answers every request with a 308 to the same path on
// HTTPS: to httpsOrigin when known, else to the request's host on
// tlsPort. It serves nothing else.
func redirectHandler(httpsOrigin, tlsPort string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := httpsOrigin
		if target == "" {
			host := r.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if host == "" || strings.ContainsAny(host, "/\\@ ") {
				http.Error(w, "bad host", http.StatusBadRequest)
				return
			}
			if strings.Contains(host, ":") {
				host = "[" + host + "]"
			}
			target = "https://" + host
			if tlsPort != "443" {
				target += ":" + tlsPort
			}
		}
		u := target + r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", u)
		w.WriteHeader(http.StatusPermanentRedirect)
	})
}
