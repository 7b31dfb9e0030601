package guard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/metrics"
)

// TestAttackFailOpenKeepsALimit: a fail-open limiter whose store cannot
// answer (Redis down, or slowed past its timeout by a flood of requests,
// which an attacker can cause) keeps enforcing its windows on this
// replica rather than letting every request through: traffic flows, a
// flood does not.
func TestAttackFailOpenKeepsALimit(t *testing.T) {
	t.Parallel()
	lim, err := NewLimiterWith(config.Limit{{Tokens: 3, Interval: time.Hour}, {Tokens: 100, Interval: 24 * time.Hour}},
		LimiterOptions{Name: "ip", Stores: brokenStores, RetryStoreAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	allowed := 0
	for range 50 {
		res, err := lim.Take(context.Background(), "ip:198.51.100.1")
		if err != nil || !res.Degraded {
			t.Fatalf("take during an outage: %+v %v, want a Degraded result", res, err)
		}
		if res.Allowed {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("during an outage %d of 50 requests were allowed, want the limit (3) on this replica", allowed)
	}
	// Other clients keep their own buckets.
	if res, _ := lim.Take(context.Background(), "ip:198.51.100.2"); !res.Allowed {
		t.Fatalf("another client refused during the outage: %+v", res)
	}

	// Through Enforce: allowed requests pass without figures, refused
	// ones get the contract's 429.
	h := RateLimit(lim, "ip", func(*http.Request) string { return "198.51.100.3" }, metrics.Discard(), nil)(
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	codes := map[int]int{}
	for range 5 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/x", nil))
		codes[rec.Code]++
		switch rec.Code {
		case http.StatusNoContent:
			if rec.Header().Get("X-RateLimit-Limit") != "" {
				t.Errorf("allowed fallback answer has X-RateLimit headers: %v", rec.Header())
			}
		case http.StatusTooManyRequests:
			if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("fallback 429 Retry-After %q", rec.Header().Get("Retry-After"))
			}
			if rec.Header().Get("X-RateLimit-Limit") != "3" || rec.Header().Get("X-RateLimit-Remaining") != "0" {
				t.Errorf("fallback 429 headers %v", rec.Header())
			}
		default:
			t.Errorf("unexpected answer %d", rec.Code)
		}
	}
	if codes[http.StatusNoContent] != 3 || codes[http.StatusTooManyRequests] != 2 {
		t.Errorf("answers %v, want 3 allowed and 2 refused", codes)
	}

	// The WebSocket connects limiter too.
	ws, err := NewWSGuard(config.Limit{{Tokens: 2, Interval: time.Hour}}, 0,
		LimiterOptions{Stores: brokenStores, RetryStoreAfter: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	admitted := 0
	for range 10 {
		if release, err := ws.Admit(context.Background(), netip.MustParseAddr("198.51.100.9")); err == nil {
			admitted++
			release()
		}
	}
	if admitted != 2 {
		t.Errorf("WebSocket connects admitted during an outage = %d, want 2", admitted)
	}
}

// TestAttackFallbackClosedWithTheLimiter: closing a limiter that fell
// back closes its fallback; a take after Close makes no new one (the
// package's goleak check sees any sweeper left running).
func TestAttackFallbackClosedWithTheLimiter(t *testing.T) {
	t.Parallel()
	lim, err := NewLimiterWith(config.Limit{{Tokens: 1, Interval: time.Minute}}, LimiterOptions{Stores: brokenStores})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lim.Take(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	lim.Close()
	if res, err := lim.Take(context.Background(), "k"); err != nil || !res.Allowed || !res.Degraded {
		t.Fatalf("take after Close: %+v %v", res, err)
	}
	lim.fbMu.Lock()
	n := len(lim.fallback)
	lim.fbMu.Unlock()
	if n != 0 {
		t.Fatalf("a fallback was made after Close")
	}
}

// TestAttackLongPathsInLogs: denial and rate-limit log lines carry the
// request path cut short: a client choosing a 60 KB path cannot make
// each refused request write a 60 KB line.
func TestAttackLongPathsInLogs(t *testing.T) {
	t.Parallel()
	hs := newGuardHarness(t, `
guard:
  deny: [203.0.113.0/24]
  routes:
    "/x/*": {limit: "1/1h"}
`)
	long := "/x/" + strings.Repeat("a", 60000)
	if rec := hs.do(req{path: long, remote: "203.0.113.1:1"}); rec.Code != http.StatusForbidden {
		t.Fatalf("denied = %d", rec.Code)
	}
	for range 2 {
		hs.do(req{path: long, remote: "198.51.100.1:1"})
	}
	out := hs.logs.String()
	if !strings.Contains(out, "request denied by network rules") || !strings.Contains(out, "rate limited") {
		t.Fatalf("log lacks the denial or the refusal:\n%.500s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if len(line) > 1024 {
			t.Errorf("log line of %d bytes: %.200s...", len(line), line)
		}
	}
	if got := logText("ab\u00e9cd", 3); got != "ab..." {
		t.Errorf("logText cut inside a rune: %q", got)
	}
}
