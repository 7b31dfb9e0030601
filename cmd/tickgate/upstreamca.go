package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// loadUpstreamCAs returns the system roots plus the CA certificates of
// file (TICKGATE_UPSTREAM_CA_FILE), for the vendor connections behind a
// TLS-inspecting corporate proxy; nil (the system roots) when file is
// empty. A file that cannot be read, holds no certificate, a block that
// is not a certificate (a private key put there by mistake is named, not
// shown) or a certificate that does not parse is an error.
func loadUpstreamCAs(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("TICKGATE_UPSTREAM_CA_FILE: cannot read %s: %v", file, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("TICKGATE_UPSTREAM_CA_FILE: %s holds a %s block; only CERTIFICATE blocks belong in a CA bundle", file, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("TICKGATE_UPSTREAM_CA_FILE: %s: certificate %d does not parse: %v", file, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("TICKGATE_UPSTREAM_CA_FILE: %s contains no PEM certificate (-----BEGIN CERTIFICATE-----)", file)
	}
	return pool, nil
}
