package proxy

import (
	"net/http"
	"testing"
)

// TestAttackOverrideHeadersStripped: the upstream's route allowlist names
// methods and paths, but many server frameworks let a header replace
// both: X-HTTP-Method-Override and friends turn an allowed GET into a
// DELETE (Rails, Express method-override, Google APIs), X-Original-URL
// and X-Rewrite-URL replace the path (IIS, Symfony, Zend). A browser must
// not be able to reach what the allowlist refuses by sending them.
func TestAttackOverrideHeadersStripped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	over := []string{
		"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
		"X-Original-Url", "X-Rewrite-Url", "X_HTTP_Method_Override",
	}
	hdr := map[string]string{}
	for _, k := range over {
		hdr[k] = "DELETE /v1/admin"
	}
	r := h.do(t, http.MethodGet, "/api/demo/v1/echo", nil, hdr)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := h.v.last(t)
	for k := range got.Header {
		for _, o := range over {
			if equalHeaderName(k, o) {
				t.Errorf("vendor received %s: %q", k, got.Header[k])
			}
		}
	}
}
