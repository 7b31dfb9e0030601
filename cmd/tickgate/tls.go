package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
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
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // of the files cert was loaded from
	failed  string // of the files that last failed to load (logged once)
	checked time.Time
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cr := &certReloader{certFile: certFile, keyFile: keyFile, checkEvery: 2 * time.Second, log: log}
	if err := cr.reload(cr.fileStamp()); err != nil {
		return nil, err
	}
	return cr, nil
}

// fileStamp identifies the current version of both files: modification
// time and size, or the error of a file that cannot be read.
func (cr *certReloader) fileStamp() string {
	var b strings.Builder
	for _, f := range []string{cr.certFile, cr.keyFile} {
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%d/%d;", st.ModTime().UnixNano(), st.Size())
		} else {
			b.WriteString("missing;")
		}
	}
	return b.String()
}

// reload loads the files, whose version is stamp (taken before reading,
// so a change during the read is seen at the next check).
func (cr *certReloader) reload(stamp string) error {
	cert, err := tls.LoadX509KeyPair(cr.certFile, cr.keyFile)
	if err != nil {
		return fmt.Errorf("TICKGATE_TLS_CERT/TICKGATE_TLS_KEY: %w", err)
	}
	cr.cert, cr.stamp, cr.failed = &cert, stamp, ""
	return nil
}

// GetCertificate is tls.Config.GetCertificate. A certificate that fails
// to load (e.g. half-written during renewal, or a new certificate beside
// the old key) keeps the previous one and is tried again at the next
// check (a permission fixed later changes no file stamp); the failure is
// logged once per version of the files.
func (cr *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if now := time.Now(); now.Sub(cr.checked) >= cr.checkEvery {
		cr.checked = now
		if stamp := cr.fileStamp(); stamp != cr.stamp {
			switch err := cr.reload(stamp); {
			case err == nil:
				attrs := []any{"cert", cr.certFile}
				if leaf := cr.cert.Leaf; leaf != nil {
					attrs = append(attrs, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
				}
				cr.log.Info("TLS certificate reloaded", attrs...)
			case stamp != cr.failed:
				cr.failed = stamp
				// LoadX509KeyPair's errors describe, never quote, the PEM.
				cr.log.Warn("TLS certificate did not load; still serving the previous one", "cert", cr.certFile, "key", cr.keyFile, "err", err)
			}
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
