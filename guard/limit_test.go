package guard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/sethvargo/go-limiter"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/guard/limitertest"
	"github.com/tickgate/tickgate/metrics"
)

// brokenStores is a StoreFactory of brokenStore.
func brokenStores(string, config.Rate) (limiter.Store, error) { return brokenStore{}, nil }

// brokenStore fails every call, like an unreachable Redis.
type brokenStore struct{}

var errBroken = errors.New("connection refused")

func (brokenStore) Take(context.Context, string) (uint64, uint64, uint64, bool, error) {
	return 0, 0, 0, false, errBroken
}
func (brokenStore) Get(context.Context, string) (uint64, uint64, error) { return 0, 0, errBroken }
func (brokenStore) Set(context.Context, string, uint64, time.Duration) error {
	return errBroken
}
func (brokenStore) Burst(context.Context, string, uint64) error { return errBroken }
func (brokenStore) Close(context.Context) error                 { return nil }

// TestWindowStoreConformance runs the suite on the fixed-window store
// MemoryStore uses for very large limits (the suite's small token counts
// never select it through MemoryStore).
func TestWindowStoreConformance(t *testing.T) {
	t.Parallel()
	limitertest.Run(t, func(t *testing.T, tokens uint64, interval time.Duration) limiter.Store {
		s := newWindowStore(config.Rate{Tokens: tokens, Interval: interval}, nil)
		t.Cleanup(func() { _ = s.Close(context.Background()) })
		return s
	})
}

func TestMemoryStoreConformance(t *testing.T) {
	t.Parallel()
	limitertest.Run(t, func(t *testing.T, tokens uint64, interval time.Duration) limiter.Store {
		s, err := MemoryStore("test", config.Rate{Tokens: tokens, Interval: interval})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(context.Background()) })
		return s
	})
}

// TestRefusedRequestsDoNotDrainSustained: requests the burst window
// refuses are not charged to the sustained window.
func TestRefusedRequestsDoNotDrainSustained(t *testing.T) {
	t.Parallel()
	lim, err := NewLimiter(config.Limit{{Tokens: 2, Interval: time.Hour}, {Tokens: 3, Interval: 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	ctx := context.Background()
	for i := range 10 {
		res, err := lim.Take(ctx, "k")
		if err != nil || res.Allowed != (i < 2) {
			t.Fatalf("take %d: %+v %v", i, res, err)
		}
	}
	// The sustained window was charged twice, not ten times.
	_, remaining, err := lim.stores[1].Get(ctx, "k")
	if err != nil || remaining != 1 {
		t.Fatalf("sustained remaining = %d, %v; want 1", remaining, err)
	}
}

func TestLimiterFailurePolicies(t *testing.T) {
	t.Parallel()
	broken := brokenStores
	l := config.Limit{{Tokens: 1, Interval: time.Second}}
	ctx := context.Background()

	open, err := NewLimiterWith(l, LimiterOptions{Stores: broken})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if res, err := open.Take(ctx, "k"); err != nil || !res.Allowed || !res.Degraded {
		t.Fatalf("fail-open: %+v %v", res, err)
	}

	closed, err := NewLimiterWith(l, LimiterOptions{Stores: broken, OnStoreError: FailClosed})
	if err != nil {
		t.Fatal(err)
	}
	defer closed.Close()
	_, err = closed.Take(ctx, "k")
	if !errors.Is(err, ErrStoreUnavailable) || !errors.Is(err, errBroken) {
		t.Fatalf("fail-closed: %v, want ErrStoreUnavailable wrapping the cause", err)
	}

	// A caller that gave up is not a store failure.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	fresh, err := NewLimiterWith(l, LimiterOptions{Stores: broken, OnStoreError: FailClosed})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if _, err := fresh.Take(cctx, "k"); !errors.Is(err, context.Canceled) || errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("cancelled: %v", err)
	}
	if fresh.failing.Load() {
		t.Fatal("a cancelled caller tripped the breaker")
	}

	// The breaker: while it is open the store is not asked.
	calls := 0
	counting := func(string, config.Rate) (limiter.Store, error) { return &countingStore{calls: &calls}, nil }
	cb, err := NewLimiterWith(l, LimiterOptions{Stores: counting, RetryStoreAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	for range 5 {
		if res, err := cb.Take(ctx, "k"); err != nil || !res.Degraded {
			t.Fatalf("breaker: %+v %v", res, err)
		}
	}
	if calls != 1 {
		t.Fatalf("store asked %d times during an outage, want once", calls)
	}
}

type countingStore struct {
	brokenStore
	calls *int
}

func (c *countingStore) Take(ctx context.Context, k string) (uint64, uint64, uint64, bool, error) {
	*c.calls++
	return c.brokenStore.Take(ctx, k)
}

func TestNewLimiterErrors(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		l    config.Limit
		opts LimiterOptions
	}{
		"empty":          {nil, LimiterOptions{}},
		"zero tokens":    {config.Limit{{Tokens: 0, Interval: time.Second}}, LimiterOptions{}},
		"zero interval":  {config.Limit{{Tokens: 1}}, LimiterOptions{}},
		"bad policy":     {config.Limit{{Tokens: 1, Interval: time.Second}}, LimiterOptions{OnStoreError: 9}},
		"negative retry": {config.Limit{{Tokens: 1, Interval: time.Second}}, LimiterOptions{RetryStoreAfter: -1}},
	} {
		if _, err := NewLimiterWith(tc.l, tc.opts); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := ParseFailurePolicy("sometimes"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("ParseFailurePolicy: %v", err)
	}
	for s, want := range map[string]FailurePolicy{"": PolicyDefault, "open": FailOpen, "closed": FailClosed} {
		if got, err := ParseFailurePolicy(s); err != nil || got != want {
			t.Errorf("ParseFailurePolicy(%q) = %v, %v", s, got, err)
		}
	}
}

// TestHeadersDescribeTheTightestLimit: with a per-IP and a per-route
// limit on one request, the headers are those closest to refusing.
func TestHeadersDescribeTheTightestLimit(t *testing.T) {
	t.Parallel()
	loose, _ := NewLimiter(config.Limit{{Tokens: 100, Interval: time.Hour}})
	tight, _ := NewLimiter(config.Limit{{Tokens: 3, Interval: time.Hour}})
	defer loose.Close()
	defer tight.Close()
	key := func(*http.Request) string { return "k" }
	m := metrics.Discard()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	for _, order := range []struct {
		name         string
		outer, inner *Limiter
	}{{"tight inside", loose, tight}, {"tight outside", tight, loose}} {
		h := RateLimit(order.outer, "a-"+order.name, key, m, nil)(RateLimit(order.inner, "b-"+order.name, key, m, nil)(ok))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if got := rec.Header().Get("X-RateLimit-Limit"); got != "3" {
			t.Errorf("%s: X-RateLimit-Limit = %s, want the tight limit 3", order.name, got)
		}
		if got := rec.Header().Get("X-RateLimit-Remaining"); got != "2" {
			t.Errorf("%s: X-RateLimit-Remaining = %s, want 2", order.name, got)
		}
	}
}

// TestHeadersAtWindowEdges takes through several ends of a short window:
// Reset is always a future second, Retry-After 1 or 2, never 0.
func TestHeadersAtWindowEdges(t *testing.T) {
	t.Parallel()
	lim, err := NewLimiter(config.Limit{{Tokens: 1, Interval: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	refills := 0
	deadline := time.Now().Add(patience)
	for refills < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("saw %d refills in %v", refills, patience)
		}
		res, err := lim.Take(context.Background(), "k")
		now := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed {
			refills++
		}
		h := http.Header{}
		res.SetHeaders(h, now)
		if reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err != nil || reset < now.Unix()+1 {
			t.Fatalf("X-RateLimit-Reset %q is not after now %d", h.Get("X-RateLimit-Reset"), now.Unix())
		}
		if !res.Allowed {
			if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
				t.Fatalf("Retry-After %q for a 300ms window", h.Get("Retry-After"))
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}
