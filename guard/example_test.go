package guard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/guard"
	"github.com/tickgate/tickgate/metrics"
)

func ExampleNewLimiterWith() {
	// 2 per second and 100 per hour, in memory; with Redis, pass
	// Stores: backend.Store (guard/redislimit).
	l, err := config.ParseLimit("2/1s,100/1h")
	if err != nil {
		panic(err)
	}
	lim, err := guard.NewLimiterWith(l, guard.LimiterOptions{Name: "ip", OnStoreError: guard.FailOpen})
	if err != nil {
		panic(err)
	}
	defer lim.Close()
	for range 3 {
		res, err := lim.Take(context.Background(), guard.LimitKey(netip.MustParseAddr("2001:db8:1:2::7")))
		if err != nil {
			panic(err)
		}
		fmt.Println(res.Allowed, res.Remaining)
	}
	// Output:
	// true 1
	// true 0
	// false 0
}

func ExampleNew() {
	f, err := config.Parse([]byte(`
upstreams:
  demo: {base_url: "http://127.0.0.1:7070", key: {secret: K, placement: "query:apikey"}, routes: [{paths: ["/v1/*"]}]}
guard:
  deny: [203.0.113.0/24]
  routes:
    "/api/*": {limit: "20/1s,1000/1h", by: session}
`), func(string) string { return "" })
	if err != nil {
		panic(err)
	}
	ips := guard.NewIPResolver(nil)
	g, err := guard.New(guard.Config{Rules: f.Guard, Resolver: ips, Metrics: metrics.Discard(), Exempt: []string{"/healthz"}})
	if err != nil {
		panic(err)
	}
	defer g.Close()
	var sessionKey guard.KeyFunc = func(*http.Request) string { return "" } // session.FromContext in the app
	h := ips.Middleware(g.Network(g.RouteLimits(sessionKey)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))))

	for _, remote := range []string{"198.51.100.7:1234", "203.0.113.9:1234"} {
		r := httptest.NewRequest("GET", "/api/demo/v1/quote", nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("X-RateLimit-Limit"))
	}
	// Output:
	// 204 20
	// 403
}

func ExampleNewLoginLimiterWith() {
	ll, err := guard.NewLoginLimiterWith(config.Limit{{Tokens: 5, Interval: time.Minute}}, guard.LimiterOptions{})
	if err != nil {
		panic(err)
	}
	defer ll.Close()
	ok, _ := ll.AllowLogin(context.Background(), "198.51.100.7", "alice")
	fmt.Println(ok)
	// Output: true
}
