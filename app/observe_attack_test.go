package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/tickgate/tickgate/guard"
	"github.com/tickgate/tickgate/logging"
	"github.com/tickgate/tickgate/metrics"
)

// httputil.ReverseProxy (the REST proxy) panics with http.ErrAbortHandler
// when a streamed response breaks off: the vendor cut the body, or the
// browser went away. net/http needs that panic to abort the connection,
// but the request still happened: it must have its access log line and
// count in the request metrics, or every cut response is invisible.
func TestAttackAbortedRequestStillLogged(t *testing.T) {
	t.Parallel()
	lb := &logBuf{}
	log, err := logging.New(lb, logging.Options{Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.Discard()
	h := observe(log, m, guard.NewIPResolver(nil), func(netip.Addr) bool { return false }, nil,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ri := infoFrom(r.Context()); ri != nil {
				ri.route = "/api/:upstream/*"
			}
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("partial"))
			panic(http.ErrAbortHandler)
		}))
	req := httptest.NewRequestWithContext(context.Background(), "GET", "/api/demo/v1/bars?apikey=x", nil)
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("panic %v reached the server, want http.ErrAbortHandler (so it aborts the connection)", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), req)
	}()
	found := false
	for _, r := range lb.records(t) {
		if r["msg"] == "request" && r["route"] == "/api/:upstream/*" {
			found = true
			if r["aborted"] != true || r["level"] != "WARN" {
				t.Errorf("aborted request logged as %v", r)
			}
		}
	}
	if !found {
		t.Errorf("no access log line for the aborted request:\n%s", lb.String())
	}
	if got := value(t, m.HTTPRequests.WithLabelValues("/api/:upstream/*", "200")); got != 1 {
		t.Errorf("requests counted = %v, want 1", got)
	}
}
