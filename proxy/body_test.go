package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tickgate/tickgate/config"
)

// withOrdersBodyLimit sets max_body_bytes on the POST/PUT route of
// /v1/orders and /v1/echo.
func withOrdersBodyLimit(n int64) opt {
	return func(u *config.Upstream, _ *harness) {
		for i, r := range u.Routes {
			if len(r.Paths) > 0 && r.Paths[0] == "/v1/orders" {
				u.Routes[i].MaxBodyBytes = n
			}
		}
	}
}

// unsized hides the length of a body, so the client sends it chunked
// (Content-Length unknown to the proxy).
type unsized struct{ r io.Reader }

func (u unsized) Read(p []byte) (int, error) { return u.r.Read(p) }

func vendorBodies(v *vendor, path string) []int {
	var out []int
	for _, r := range v.requests() {
		if r.Path == path {
			out = append(out, len(r.Body))
		}
	}
	return out
}

// TestMaxBodyBytes: a route's max_body_bytes is enforced before anything
// reaches the vendor when the length is announced or the body is small
// enough to buffer, and cuts a streamed body off at the limit (the vendor
// sees at most the limit, the client 413 body_too_large). GET and HEAD
// take no body.
func TestMaxBodyBytes(t *testing.T) {
	t.Parallel()
	const limit = 100 << 10 // above the retry buffer: the streamed path is used
	h := newHarness(t, "", withOrdersBodyLimit(limit))

	cases := []struct {
		name   string
		body   func() io.Reader
		status int
	}{
		{"small sized", func() io.Reader { return bytes.NewReader(make([]byte, 1000)) }, http.StatusCreated},
		{"exactly the limit, sized", func() io.Reader { return bytes.NewReader(make([]byte, limit)) }, http.StatusCreated},
		{"exactly the limit, chunked", func() io.Reader { return unsized{bytes.NewReader(make([]byte, limit))} }, http.StatusCreated},
		{"one byte over, sized", func() io.Reader { return bytes.NewReader(make([]byte, limit+1)) }, http.StatusRequestEntityTooLarge},
		{"one byte over, chunked", func() io.Reader { return unsized{bytes.NewReader(make([]byte, limit+1))} }, http.StatusRequestEntityTooLarge},
		{"far over, chunked", func() io.Reader { return unsized{bytes.NewReader(make([]byte, 3*limit))} }, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range cases {
		before := len(vendorBodies(h.v, "/v1/orders"))
		r := h.do(t, http.MethodPost, "/api/demo/v1/orders", tc.body(), map[string]string{"Content-Type": "application/octet-stream"})
		if tc.status == http.StatusCreated {
			var got struct{ Received int }
			if r.status != http.StatusCreated || json.Unmarshal([]byte(r.body), &got) != nil {
				t.Errorf("%s: %d %q, want 201", tc.name, r.status, r.body)
				continue
			}
			if n, _ := io.Copy(io.Discard, tc.body()); got.Received != int(n) {
				t.Errorf("%s: vendor received %d bytes, want %d", tc.name, got.Received, n)
			}
			continue
		}
		wantError(t, r, tc.status, "body_too_large")
		if !strings.Contains(r.body, strconv.Itoa(limit)) {
			t.Errorf("%s: message %q does not say the limit", tc.name, r.body)
		}
		for _, n := range vendorBodies(h.v, "/v1/orders")[before:] {
			if n > limit {
				t.Errorf("%s: vendor received %d bytes, more than the limit %d", tc.name, n, limit)
			}
		}
	}
	// Sized or small bodies over the limit never reach the vendor at all.
	h2 := newHarness(t, "", withOrdersBodyLimit(1000))
	for _, body := range []io.Reader{bytes.NewReader(make([]byte, 1001)), unsized{bytes.NewReader(make([]byte, 5000))}} {
		wantError(t, h2.do(t, http.MethodPost, "/api/demo/v1/orders", body, nil), http.StatusRequestEntityTooLarge, "body_too_large")
	}
	if n := len(vendorBodies(h2.v, "/v1/orders")); n != 0 {
		t.Errorf("vendor received %d requests whose body was over the limit", n)
	}

	// GET and HEAD take no body, sized or not; without one they pass.
	for _, body := range []io.Reader{strings.NewReader("x"), unsized{strings.NewReader("hello")}} {
		r := h2.do(t, http.MethodGet, "/api/demo/v1/quote/AAPL", body, nil)
		wantError(t, r, http.StatusRequestEntityTooLarge, "body_too_large")
		if !strings.Contains(r.body, "GET requests take no body") {
			t.Errorf("GET with a body: %q", r.body)
		}
	}
	if r := h2.get(t, "/api/demo/v1/quote/AAPL"); r.status != http.StatusOK {
		t.Errorf("GET without a body: %d %s", r.status, r.body)
	}
	assertNoKey(t, "413 answers and log", h.logs.String()+h2.logs.String(), vendorKey)
	if !strings.Contains(h2.logs.String(), "code=body_too_large") {
		t.Errorf("refusal not logged with its code:\n%s", h2.logs.String())
	}
}

// TestMaxBodyBytesDefault: a route without max_body_bytes takes up to
// DefaultMaxBodyBytes.
func TestMaxBodyBytesDefault(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "")
	if r := h.do(t, http.MethodPost, "/api/demo/v1/orders", bytes.NewReader(make([]byte, DefaultMaxBodyBytes)), nil); r.status != http.StatusCreated {
		t.Errorf("body of the default limit: %d %s", r.status, r.body)
	}
	wantError(t, h.do(t, http.MethodPost, "/api/demo/v1/orders", bytes.NewReader(make([]byte, DefaultMaxBodyBytes+1)), nil),
		http.StatusRequestEntityTooLarge, "body_too_large")
}

func TestMaxBodyBytesInvalid(t *testing.T) {
	t.Parallel()
	_, err := New(Config{
		Upstreams: map[string]config.Upstream{"demo": {
			BaseURL: "https://vendor.example",
			Key:     config.KeyRef{Secret: secretName, Placement: "query:apikey"},
			Routes:  []config.Route{{Methods: []string{"POST"}, Paths: []string{"/v1/orders"}, MaxBodyBytes: -1}},
		}},
		Secrets: newFakeSecrets(secretName, vendorKey),
	})
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "upstreams.demo.routes[0].max_body_bytes: must not be negative") {
		t.Fatalf("New with max_body_bytes -1: %v", err)
	}
}

// TestLimitedBodyNeverPassesTheLimit: whatever the read sizes, the reader
// hands on at most the limit and then fails with errBodyTooLarge.
func TestLimitedBodyNeverPassesTheLimit(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 1, 9, 10, 11, 1000} {
		for _, chunk := range []int{1, 3, 10, 4096} {
			b := &limitedBody{rc: io.NopCloser(bytes.NewReader(make([]byte, size))), left: 10, over: new(atomic.Bool)}
			var total int
			var err error
			buf := make([]byte, chunk)
			for err == nil {
				var n int
				n, err = b.Read(buf)
				total += n
			}
			over := size > 10
			if total > 10 || (!over && (total != size || err != io.EOF)) || (over && !errors.Is(err, errBodyTooLarge)) || b.over.Load() != over {
				t.Errorf("size %d chunk %d: read %d, err %v, over %v", size, chunk, total, err, b.over.Load())
			}
		}
	}
}
