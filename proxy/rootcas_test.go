package proxy

import (
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/config"
)

// TestRootCAs: a vendor whose certificate chains to a CA outside the
// system roots is refused (502 upstream_unavailable, nothing of the
// transport error or key to the client) unless Config.RootCAs holds that
// CA; verification is never switched off.
func TestRootCAs(t *testing.T) {
	t.Parallel()
	vendor := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("apikey") != vendorKey {
			http.Error(w, "bad key", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"symbol":"AAPL"}`)
	}))
	t.Cleanup(vendor.Close)
	pool := x509.NewCertPool()
	pool.AddCert(vendor.Certificate())

	for _, tc := range []struct {
		name   string
		pool   *x509.CertPool
		status int
	}{
		{"system roots", nil, http.StatusBadGateway},
		{"corporate CA", pool, http.StatusOK},
	} {
		logs := &syncBuffer{}
		p, err := New(Config{
			Upstreams: map[string]config.Upstream{"demo": {
				BaseURL: vendor.URL,
				Key:     config.KeyRef{Secret: secretName, Placement: "query:apikey"},
				Routes:  []config.Route{{Paths: []string{"/v1/quote/*"}}},
			}},
			Secrets: newFakeSecrets(secretName, vendorKey),
			Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			RootCAs: tc.pool,
		})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/demo/v1/quote/AAPL", nil))
		p.Close()
		body := rec.Body.String()
		if rec.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, body, tc.status)
		}
		if tc.status == http.StatusBadGateway {
			wantError(t, response{status: rec.Code, header: rec.Header(), body: body}, http.StatusBadGateway, "upstream_unavailable")
			if strings.Contains(body, "x509") || strings.Contains(body, "127.0.0.1") {
				t.Errorf("%s: transport details in the answer: %s", tc.name, body)
			}
			if !strings.Contains(logs.String(), "certificate signed by unknown authority") {
				t.Errorf("%s: the log does not say why:\n%s", tc.name, logs.String())
			}
		}
		assertNoKey(t, tc.name, body+logs.String(), vendorKey)
	}
}
