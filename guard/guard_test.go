package guard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	res := NewIPResolver(trusted)
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"untrusted peer ignores xff", "203.0.113.7:5555", []string{"1.2.3.4"}, "203.0.113.7"},
		{"trusted peer uses xff", "10.1.2.3:5555", []string{"198.51.100.9"}, "198.51.100.9"},
		{"right-most untrusted entry wins", "10.1.2.3:5555", []string{"6.6.6.6, 198.51.100.9, 10.9.9.9"}, "198.51.100.9"},
		{"multiple header lines merged", "10.1.2.3:5555", []string{"6.6.6.6", "198.51.100.9"}, "198.51.100.9"},
		{"garbage stops at last vouched hop", "10.1.2.3:5555", []string{"198.51.100.9, not-an-ip"}, "10.1.2.3"},
		{"all trusted falls back to left-most trusted", "10.1.2.3:5555", []string{"10.4.4.4"}, "10.4.4.4"},
		{"ipv4-mapped peer", "[::ffff:203.0.113.7]:5555", nil, "203.0.113.7"},
		{"ipv6 trusted peer", "[::1]:5555", []string{"2001:db8::1"}, "2001:db8::1"},
		{"xff with port", "10.1.2.3:5555", []string{"198.51.100.9:1234"}, "198.51.100.9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := res.ClientIP(r).String(); got != tc.want {
				t.Fatalf("ClientIP = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestIsHTTPS(t *testing.T) {
	t.Parallel()
	res := NewIPResolver([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "203.0.113.7:1"
	r.Header.Set("X-Forwarded-Proto", "https")
	if res.IsHTTPS(r) {
		t.Fatal("untrusted peer's X-Forwarded-Proto was believed")
	}
	r.RemoteAddr = "10.0.0.1:1"
	if !res.IsHTTPS(r) {
		t.Fatal("trusted proxy's X-Forwarded-Proto: https was not believed")
	}
	r.Header.Set("X-Forwarded-Proto", "https, http")
	if res.IsHTTPS(r) {
		t.Fatal("only the closest proxy's value counts")
	}
}

func TestLimitKey(t *testing.T) {
	t.Parallel()
	a := LimitKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1"))
	b := LimitKey(netip.MustParseAddr("2001:db8:1:2:ffff::9"))
	c := LimitKey(netip.MustParseAddr("2001:db8:1:3::1"))
	if a != b || a == c {
		t.Fatalf("IPv6 /64 grouping wrong: %s %s %s", a, b, c)
	}
	if got, want := LimitKey(netip.MustParseAddr("::ffff:192.0.2.1")), "192.0.2.1"; got != want {
		t.Fatalf("mapped = %s, want %s", got, want)
	}
}

func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	lim, err := NewLimiter(config.Limit{{Tokens: 2, Interval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	m := metrics.Discard()
	h := RateLimit(lim, "ip", func(*http.Request) string { return "k" }, m, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(204)
	}))
	var last *httptest.ResponseRecorder
	for i, want := range []struct {
		code      int
		remaining string
	}{{204, "1"}, {204, "0"}, {429, "0"}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != want.code || rec.Header().Get("X-RateLimit-Remaining") != want.remaining || rec.Header().Get("X-RateLimit-Limit") != "2" {
			t.Fatalf("request %d: code %d remaining %q limit %q", i, rec.Code, rec.Header().Get("X-RateLimit-Remaining"), rec.Header().Get("X-RateLimit-Limit"))
		}
		reset, err := strconv.ParseInt(rec.Header().Get("X-RateLimit-Reset"), 10, 64)
		if err != nil || reset <= time.Now().Unix() {
			t.Fatalf("X-RateLimit-Reset = %q, want a future unix time", rec.Header().Get("X-RateLimit-Reset"))
		}
		last = rec
	}
	ra, err := strconv.Atoi(last.Header().Get("Retry-After"))
	if err != nil || ra < 1 || ra > 3600 {
		t.Fatalf("Retry-After = %q", last.Header().Get("Retry-After"))
	}
	var body struct{ Error struct{ Code string } }
	if err := json.Unmarshal(last.Body.Bytes(), &body); err != nil || body.Error.Code != "rate_limited" {
		t.Fatalf("body = %s", last.Body)
	}
}

func TestRetryAfterNeverZero(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	for _, reset := range []time.Time{now, now.Add(-time.Second), now.Add(10 * time.Millisecond)} {
		res := Result{Reset: reset}
		if got := res.RetryAfter(now); got < 1 {
			t.Fatalf("RetryAfter(%v) = %d", reset.Sub(now), got)
		}
		h := http.Header{}
		res.SetHeaders(h, now)
		if v, _ := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); v <= now.Unix() {
			t.Fatalf("reset header %d not after now", v)
		}
	}
}

func TestBurstAndSustained(t *testing.T) {
	t.Parallel()
	lim, err := NewLimiter(config.Limit{{Tokens: 5, Interval: time.Hour}, {Tokens: 3, Interval: 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	allowed := 0
	for range 10 {
		res, err := lim.Take(context.Background(), "x")
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("allowed %d, want 3 (the stricter window)", allowed)
	}
}

func TestLoginLimiter(t *testing.T) {
	t.Parallel()
	ll, err := NewLoginLimiter(config.Limit{{Tokens: 2, Interval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()
	ctx := context.Background()
	for i := range 2 {
		if ok, _ := ll.AllowLogin(ctx, "1.1.1.1", "alice"); !ok {
			t.Fatalf("attempt %d refused", i)
		}
	}
	ok, retry := ll.AllowLogin(ctx, "2.2.2.2", "ALICE")
	if ok || retry < time.Second {
		t.Fatalf("third attempt on the same user from another IP: ok=%v retry=%v", ok, retry)
	}
	if ok, _ := ll.AllowLogin(ctx, "1.1.1.1", "bob"); ok {
		t.Fatal("third attempt from the same IP for another user allowed")
	}
	// One IPv6 /64 is one client.
	for i := range 3 {
		ok, _ := ll.AllowLogin(ctx, fmt.Sprintf("2001:db8:1:2::%d", i+1), fmt.Sprintf("user%d", i))
		if want := i < 2; ok != want {
			t.Fatalf("IPv6 attempt %d from the same /64: ok=%v, want %v", i, ok, want)
		}
	}
}
