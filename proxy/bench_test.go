package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/secrets"
)

const benchQuote = `{"symbol":"AAPL","bid":191.2,"ask":191.3,"last":191.25,"ts":1733241600123}`

func benchUpstream(b *testing.B) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, benchQuote)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchProxy(b *testing.B, base string, coalesce ...bool) *Proxy {
	b.Helper()
	up := config.Upstream{
		BaseURL: base,
		Key:     config.KeyRef{Secret: secretName, Placement: "query:apikey"},
		Routes:  []config.Route{{Paths: []string{"/v1/quote/*", "/v1/quotes", "/v1/symbols"}}},
	}
	if len(coalesce) > 0 {
		up.Coalesce = &coalesce[0]
	}
	p, err := New(Config{
		Upstreams: map[string]config.Upstream{"demo": up},
		Secrets:   newFakeSecrets(secretName, vendorKey),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	return p
}

func browserRequest(target string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("Accept-Encoding", "gzip, deflate, br")
	r.Header.Set("Accept-Language", "en-US,en;q=0.9")
	r.Header.Set("Cookie", "tickgate=0123456789abcdef0123456789abcdef")
	r.Header.Set("Referer", "https://app.example/quotes")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.Header.Set("Sec-Fetch-Mode", "cors")
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0")
	r.Header.Set("X-Csrf", "1")
	return r
}

// BenchmarkServeHTTP is the whole forwarding path against a loopback
// upstream, next to a bare httputil.ReverseProxy on the same upstream.
// "tickgate" coalesces identical concurrent requests (the default), so
// some requests make no vendor call; "tickgate-uncoalesced" makes one per
// request, like "bare".
func BenchmarkServeHTTP(b *testing.B) {
	up := benchUpstream(b)
	for _, tc := range []struct {
		name     string
		coalesce bool
	}{{"tickgate", true}, {"tickgate-uncoalesced", false}} {
		b.Run(tc.name, func(b *testing.B) {
			p := benchProxy(b, up.URL, tc.coalesce)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := httptest.NewRecorder()
					p.ServeHTTP(rec, browserRequest("/api/demo/v1/quote/AAPL?fields=bid"))
					if rec.Code != http.StatusOK {
						b.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
				}
			})
		})
	}
	b.Run("bare", func(b *testing.B) {
		target, _ := url.Parse(up.URL)
		tr := newTransport(DefaultTimeout, nil)
		b.Cleanup(tr.CloseIdleConnections)
		rp := &httputil.ReverseProxy{Transport: tr, Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path = strings.TrimPrefix(pr.Out.URL.Path, "/api/demo")
			pr.Out.URL.RawQuery += "&apikey=" + vendorKey
		}}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rec := httptest.NewRecorder()
				rp.ServeHTTP(rec, browserRequest("/api/demo/v1/quote/AAPL?fields=bid"))
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	})
}

// BenchmarkRewrite is key injection and header stripping on a typical
// browser request, including the request clone ReverseProxy makes.
func BenchmarkRewrite(b *testing.B) {
	p := benchProxy(b, "https://api.vendor.example")
	u := p.ups["demo"]
	key, _ := p.secrets.Get(context.Background(), secretName)
	st := &state{u: u, path: "/v1/quote/AAPL", query: "fields=bid", keys: []secrets.Value{key}, scrub: u.scrubberFor(key)}
	in := browserRequest("/api/demo/v1/quote/AAPL?fields=bid")
	in = in.WithContext(context.WithValue(in.Context(), stateKey{}, st))
	b.ReportAllocs()
	for b.Loop() {
		pr := &httputil.ProxyRequest{In: in, Out: in.Clone(in.Context())}
		p.rewrite(pr)
		if pr.Out.Header["Cookie"] != nil {
			b.Fatal("cookie forwarded")
		}
	}
}

func BenchmarkCheckPath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		clean, why := checkPath("/v1/quote/AAPL")
		if why != "" {
			b.Fatal(why)
		}
		if ok, _ := matchRoute(testRoutes, "GET", clean); !ok {
			b.Fatal("no match")
		}
	}
}

func BenchmarkScrub(b *testing.B) {
	s := newScrubber("/api/demo", testBase, "apikey", testKey)
	small := `{"results":["AAPL","MSFT"],"next_url":"` + testBase + `/v1/symbols?cursor=abc\u0026apikey=` + testKey + `"}`
	large := strings.Repeat(`{"symbol":"AAPL","bid":191.2,"ask":191.3,"last":191.25,"ts":1733241600123},`, 4000)
	for _, tc := range []struct{ name, in string }{{"small", small}, {"large", large}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.in)))
			b.ReportAllocs()
			buf := make([]byte, 32<<10)
			var pool sync.Pool
			pool.New = func() any { b := make([]byte, 0, readSize+4<<10); return &b }
			for b.Loop() {
				r := newScrubReader(s, strings.NewReader(tc.in), nil, &pool)
				for {
					if _, err := r.Read(buf); err != nil {
						break
					}
				}
				_ = r.Close()
			}
		})
	}
}
