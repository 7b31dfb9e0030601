package guard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/metrics"
)

// BenchmarkLimiterTake is one rate-limit check of a request on memory
// stores with burst and sustained windows.
func BenchmarkLimiterTake(b *testing.B) {
	lim, err := NewLimiter(config.Limit{{Tokens: 1_000_000, Interval: time.Second}, {Tokens: 100_000_000, Interval: time.Hour}})
	if err != nil {
		b.Fatal(err)
	}
	defer lim.Close()
	ctx := context.Background()
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = "ip:198.51.100." + strconv.Itoa(i)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := lim.Take(ctx, keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if _, err := lim.Take(ctx, keys[i%len(keys)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkRateLimitMiddleware is the per-IP limit as a request sees it:
// key, take, headers.
func BenchmarkRateLimitMiddleware(b *testing.B) {
	lim, err := NewLimiter(config.Limit{{Tokens: 1_000_000_000, Interval: time.Hour}})
	if err != nil {
		b.Fatal(err)
	}
	defer lim.Close()
	h := RateLimit(lim, "ip", func(r *http.Request) string { return LimitKey(ClientIPFrom(r.Context())) }, metrics.Discard(), nil)(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h = NewIPResolver(nil).Middleware(h)
	r := httptest.NewRequest("GET", "/api/demo/quote", nil)
	r.RemoteAddr = "[2001:db8:1:2::1]:5555"
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// BenchmarkNetworkCheck is the global rules of a request: two deny
// networks, an allow list and a country lookup.
func BenchmarkNetworkCheck(b *testing.B) {
	db, _ := testGeoDB(b)
	p, err := NewPolicy(config.NetworkRules{
		Deny:          []string{"203.0.113.0/24", "2001:db8:bad::/48"},
		Allow:         []string{"198.51.100.0/24", "2001:db8::/32"},
		DenyCountries: []string{"KP"},
	}, db)
	if err != nil {
		b.Fatal(err)
	}
	addrs := []netip.Addr{netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("2001:db8:de::1")}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if ok, _ := p.Allowed(addrs[i%2]); !ok {
			b.Fatal("refused")
		}
	}
}
