package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/config"
)

// TestAttackLocationVariants: whatever Location a vendor answers a
// redirect with, the browser gets either a path under /api/{name}/ that
// holds no form of the key, or 502 upstream_redirect. Protocol-relative
// and backslash forms, userinfo, fragments, the key parameter spelled in
// other cases or encodings and the key in a path segment are tried.
func TestAttackLocationVariants(t *testing.T) {
	t.Parallel()
	const k = "vk+/9f8e=SECRET" // needs escaping in a query and a path
	var base string
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		loc := r.URL.Query().Get("loc")
		loc = strings.NewReplacer("BASE", base, "KEYQ", url.QueryEscape(k), "KEYP", url.PathEscape(k), "KEY", k, "TAB", "\t").Replace(loc)
		w.Header()["Location"] = []string{loc}
		w.WriteHeader(http.StatusFound)
		_, _ = io.WriteString(w, "moved to "+loc)
	}))
	t.Cleanup(vendor.Close)
	base = vendor.URL + "/v2"
	p, err := New(Config{
		Upstreams: map[string]config.Upstream{"demo": {
			BaseURL: base,
			Key:     config.KeyRef{Secret: secretName, Placement: "query:apikey"},
			Routes:  []config.Route{{Paths: []string{"/v1/**"}}},
		}},
		Secrets: newFakeSecrets(secretName, k),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for _, loc := range []string{
		"//evil.example/x",
		"/\\evil.example/x",
		"\\\\evil.example/x",
		"/TAB/evil.example/x",
		"https:evil.example/x",
		"BASE@evil.example/x",
		"http://evil.example\\@" + strings.TrimPrefix(base, "http://") + "/v1/x",
		"BASE/../../x",
		"BASE/v1/x?ApiKey=KEYQ",
		"BASE/v1/x?api%6Bey=KEYQ&a=1",
		"BASE/v1/x?a=1;apikey=KEYQ",
		"BASE/v1/x#apikey=KEYQ",
		"BASE/v1/KEYP/x",
		"/v2/v1/x?apikey=KEYQ&apikey=KEYQ",
		"?page=2",
		"#top",
		"",
		"http://KEYP@" + strings.TrimPrefix(base, "http://") + "/v1/x",
		"BASEevil/v1/x",
		"HTTP://" + strings.ToUpper(strings.TrimPrefix(base, "http://")) + "/v1/x?apikey=KEYQ",
	} {
		res, err := client.Get(front.URL + "/api/demo/v1/go?loc=" + url.QueryEscape(loc))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		all := string(b)
		for name, vv := range res.Header {
			all += "\n" + name + ": " + strings.Join(vv, ", ")
		}
		t.Logf("%-50q -> %d %q", loc, res.StatusCode, res.Header.Get("Location"))
		assertNoKey(t, "answer to Location "+loc, all, k)
		switch res.StatusCode {
		case http.StatusBadGateway:
			wantError(t, response{status: res.StatusCode, header: res.Header, body: string(b)}, http.StatusBadGateway, "upstream_redirect")
		case http.StatusFound:
			got := res.Header.Get("Location")
			if !strings.HasPrefix(got, "/api/demo/") || strings.ContainsAny(got, "\\\t") {
				t.Errorf("Location %q became %q", loc, got)
			}
			if u, err := url.Parse(got); err != nil || u.Host != "" || u.Scheme != "" {
				t.Errorf("Location %q became %q: not a local path", loc, got)
			}
		default:
			t.Errorf("Location %q: status %d %s", loc, res.StatusCode, b)
		}
	}
}
