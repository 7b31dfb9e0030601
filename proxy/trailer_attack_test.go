package proxy

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickgate/tickgate/config"
)

// TestAttackRequestTrailersDropped: a chunked request body may end with
// trailer fields. Go's transport sends Request.Trailer on to the vendor,
// and header filtering (key slots, Authorization, Cookie, override
// headers) only looks at Request.Header, so a trailer would carry what
// the header filter removes. Servers that merge trailers into headers
// (several frameworks do) would then see a client-chosen key slot or
// Authorization. No trailer value may be forwarded, for small (buffered)
// and large (streamed) bodies alike. (ReverseProxy clones the trailer map
// before the body is read, so a streamed body forwards at most the
// declared names with empty values.)
func TestAttackRequestTrailersDropped(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []http.Header
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, r.Trailer.Clone())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(vendor.Close)
	p, err := New(Config{
		Upstreams: map[string]config.Upstream{"demo": {
			BaseURL: vendor.URL,
			Key:     config.KeyRef{Secret: secretName, Placement: "header:X-Api-Key"},
			Routes:  []config.Route{{Methods: []string{"POST"}, Paths: []string{"/v1/orders"}}},
		}},
		Secrets: newFakeSecrets(secretName, vendorKey),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)

	for _, size := range []int{10, maxRetryBody + 10} {
		conn, err := net.DialTimeout("tcp", front.Listener.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		body := strings.Repeat("a", size)
		req := "POST /api/demo/v1/orders HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" +
			"Transfer-Encoding: chunked\r\nTrailer: X-Api-Key, Authorization, X-Http-Method-Override\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n", size, body) +
			"X-Api-Key: client-chosen\r\nAuthorization: Bearer client\r\nX-Http-Method-Override: DELETE\r\n\r\n"
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		conn.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("body %d: status %d %s", size, res.StatusCode, b)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("vendor got %d requests, want 2", len(got))
	}
	for i, tr := range got {
		for k, v := range tr {
			if strings.Join(v, "") != "" {
				t.Errorf("request %d: vendor received trailer %s: %q", i, k, v)
			}
		}
	}
}
