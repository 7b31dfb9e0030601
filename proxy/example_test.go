package proxy_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/proxy"
	"github.com/tickgate/tickgate/secrets"
)

func ExampleNew() {
	// A vendor that, like many, echoes the request URL: key included.
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"symbol":%q,"request":%q}`, path.Base(r.URL.Path), "http://"+r.Host+r.URL.RequestURI())
	}))
	defer vendor.Close()

	getenv := func(name string) string { return map[string]string{"VENDOR_KEY": "k-123"}[name] }
	cache := secrets.NewCache(secrets.NewEnv(getenv), secrets.CacheConfig{})
	defer cache.Close()

	p, err := proxy.New(proxy.Config{
		Upstreams: map[string]config.Upstream{"demo": {
			BaseURL: vendor.URL,
			Key:     config.KeyRef{Secret: "VENDOR_KEY", Placement: "query:apikey"},
			Routes:  []config.Route{{Paths: []string{"/v1/quote/*"}}},
		}},
		Secrets: cache,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	for _, target := range []string{"/api/demo/v1/quote/AAPL", "/api/demo/v1/admin", "/api/demo/v1/quote/..%2fadmin"} {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		fmt.Print(rec.Code, " ", rec.Body.String())
		if rec.Code == http.StatusOK {
			fmt.Println()
		}
	}
	// Output:
	// 200 {"symbol":"AAPL","request":"/api/demo/v1/quote/AAPL"}
	// 404 {"error":{"code":"not_found","message":"path not found"}}
	// 404 {"error":{"code":"not_found","message":"path not found"}}
}
