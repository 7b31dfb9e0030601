package proxy

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/secrets"
)

// versionedSecrets is fakeSecrets whose values have version ids, as
// *secrets.Cache on Secrets Manager reports them.
type versionedSecrets struct {
	*fakeSecrets
	ids map[string]string // value -> version id
}

func (v *versionedSecrets) Version(name string) (secrets.Version, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	id, ok := v.ids[v.vals[name]]
	return secrets.Version{Name: name, ID: id}, ok
}

// TestKeyVersionLogged: the upstream access log line carries the version
// id of the key used (key_version), the new one after the vendor refused
// the old key and the request was retried with the rotated value; never
// the value. Secrets without versions log none.
func TestKeyVersionLogged(t *testing.T) {
	t.Parallel()
	const newKey = "vk_rotated-0123456789-SECRET"
	v := newVendor(t, "")
	sec := &versionedSecrets{
		fakeSecrets: newFakeSecrets(secretName, vendorKey),
		ids:         map[string]string{vendorKey: "ver-1111", newKey: "ver-2222"},
	}
	logs := &syncBuffer{}
	p, err := New(Config{
		Upstreams: map[string]config.Upstream{"demo": {
			BaseURL: v.base,
			Key:     config.KeyRef{Secret: secretName, Placement: "query:apikey"},
			Routes:  testRoutesConfig(),
		}},
		Secrets: sec,
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	t.Cleanup(p.Close)
	get := func() {
		t.Helper()
		res, err := http.Get(front.URL + "/api/demo/v1/quote/AAPL")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("quote: %d", res.StatusCode)
		}
	}
	lastLine := func() string {
		t.Helper()
		var last string
		for l := range strings.SplitSeq(logs.String(), "\n") {
			if strings.Contains(l, `msg="upstream request"`) {
				last = l
			}
		}
		if last == "" {
			t.Fatalf("no upstream request line:\n%s", logs.String())
		}
		return last
	}

	get()
	if l := lastLine(); !strings.Contains(l, "key_version=ver-1111") {
		t.Errorf("first key: log line %q has no key_version=ver-1111", l)
	}
	// Rotation: the vendor accepts only the new key; the proxy re-reads
	// it on the 401 and retries.
	sec.rotateTo(secretName, newKey)
	v.setKeys(newKey)
	get()
	if l := lastLine(); !strings.Contains(l, "key_version=ver-2222") || !strings.Contains(l, "attempts=2") {
		t.Errorf("after rotation: log line %q, want key_version=ver-2222 after 2 attempts", l)
	}
	get()
	if l := lastLine(); !strings.Contains(l, "key_version=ver-2222") || strings.Contains(l, "attempts=") {
		t.Errorf("on the new key: log line %q", l)
	}
	assertNoKey(t, "log", logs.String(), vendorKey, newKey)

	// The environment provider has no versions: no key_version at all.
	h := newHarness(t, "")
	if r := h.get(t, "/api/demo/v1/quote/AAPL"); r.status != http.StatusOK {
		t.Fatalf("quote: %d", r.status)
	}
	if strings.Contains(h.logs.String(), "key_version") {
		t.Errorf("key_version logged for unversioned secrets:\n%s", h.logs.String())
	}
}
