package redisbudget_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/internal/redistest"
	"github.com/tickgate/tickgate/proxy"
	"github.com/tickgate/tickgate/proxy/redisbudget"
	"github.com/tickgate/tickgate/secrets"
)

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{})
	goleak.VerifyTestMain(m)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

const (
	secretName = "VENDOR_KEY"
	vendorKey  = "vk-redis-budget-0123456789"
)

func redisURL(t testing.TB) string { return redistest.URL(t) }

// testPrefix is a fresh key prefix, its keys deleted when t ends.
func testPrefix(t *testing.T) string { return redistest.Prefix(t, "tickgate-test:budget:") }

// newBackend is one replica's Backend, with its own client.
func newBackend(t *testing.T, prefix string) *redisbudget.Backend {
	t.Helper()
	b, err := redisbudget.Open(context.Background(), redisbudget.Config{URL: redisURL(t), Prefix: prefix, OpTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

type staticSecrets struct{}

func (staticSecrets) Get(context.Context, string) (secrets.Value, error) {
	return secrets.NewValue(vendorKey), nil
}

func (staticSecrets) Invalidate(_ context.Context, _ string, v secrets.Value) (secrets.Value, error) {
	return v, nil
}

// TestTwoReplicasShareOneBudget: two Proxy instances (two replicas, each
// with its own Redis client) in front of one vendor spend one budget of
// 6 calls: of 30 concurrent requests spread over both, exactly 6 reach
// the vendor, which never answers 429; the others get 429
// upstream_budget with Retry-After.
func TestTwoReplicasShareOneBudget(t *testing.T) {
	t.Parallel()
	const plan, requests = 6, 30
	var calls, over atomic.Int64
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) > plan {
			over.Add(1)
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	}))
	defer vendor.Close()
	prefix := testPrefix(t)
	up := config.Upstream{
		BaseURL: vendor.URL,
		Key:     config.KeyRef{Secret: secretName, Placement: "query:apikey"},
		Routes:  []config.Route{{Paths: []string{"/v1/quote/*"}}},
		Budget:  config.Budget{Rate: config.Limit{{Tokens: plan, Interval: time.Hour}}},
	}
	var replicas [2]*proxy.Proxy
	for i := range replicas {
		p, err := proxy.New(proxy.Config{
			Upstreams: map[string]config.Upstream{"demo": up},
			Secrets:   staticSecrets{},
			Budgets:   newBackend(t, prefix).Budget,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		replicas[i] = p
	}
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	for i := range requests {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			replicas[i%2].ServeHTTP(rec, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/api/demo/v1/quote/S%d", i), nil))
			body, _ := io.ReadAll(rec.Body)
			switch {
			case rec.Code == http.StatusOK:
				ok.Add(1)
			case rec.Code == http.StatusTooManyRequests && strings.Contains(string(body), `"upstream_budget"`) &&
				rec.Header().Get("Retry-After") != "" && rec.Header().Get("Retry-After") != "0":
				refused.Add(1)
			default:
				t.Errorf("request %d: %d %s %v", i, rec.Code, body, rec.Header())
			}
			if strings.Contains(string(body), vendorKey) {
				t.Errorf("request %d: key in the answer", i)
			}
		})
	}
	wg.Wait()
	if ok.Load() != plan || refused.Load() != requests-plan || calls.Load() != plan || over.Load() != 0 {
		t.Errorf("%d answered, %d refused; vendor saw %d calls, answered %d 429s; want %d, %d, %d, 0",
			ok.Load(), refused.Load(), calls.Load(), over.Load(), plan, requests-plan, plan)
	}
}

// TestTake checks the bucket arithmetic: burst, the window that refuses,
// Retry-After, separate accounts.
func TestTake(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newBackend(t, testPrefix(t))
	// 2 per hour with a burst of 3, and 100 per day.
	bu, err := b.Budget(config.Budget{Rate: config.Limit{{Tokens: 2, Interval: time.Hour}, {Tokens: 100, Interval: 24 * time.Hour}}, Burst: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		d, err := bu.Take(ctx, "ACCOUNT_A")
		if err != nil || !d.OK {
			t.Fatalf("take %d: %+v %v", i, d, err)
		}
		if i == 2 && (d.Limit != 3 || d.Remaining != 0) {
			t.Errorf("third take: %+v, want limit 3 remaining 0", d)
		}
	}
	d, err := bu.Take(ctx, "ACCOUNT_A")
	if err != nil || d.OK {
		t.Fatalf("fourth take: %+v %v, want refused", d, err)
	}
	// One token per 30 minutes: the wait is a little under that.
	if d.Limit != 3 || d.Remaining != 0 || d.RetryAfter <= 29*time.Minute || d.RetryAfter > 30*time.Minute {
		t.Errorf("refusal: %+v", d)
	}
	if until := time.Until(d.Reset); until <= 59*time.Minute || until > 91*time.Minute {
		t.Errorf("reset in %v, want about 1.5h (3 tokens at 2/h)", until)
	}
	if d, err := bu.Take(ctx, "ACCOUNT_{B}"); err != nil || !d.OK {
		t.Errorf("another account: %+v %v", d, err)
	}
	// The second window refuses when it is the one without tokens.
	day, err := b.Budget(config.Budget{Rate: config.Limit{{Tokens: 100, Interval: time.Second}, {Tokens: 2, Interval: 24 * time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if d, err := day.Take(ctx, "ACCOUNT_C"); err != nil || !d.OK {
			t.Fatalf("day take: %+v %v", d, err)
		}
	}
	d, err = day.Take(ctx, "ACCOUNT_C")
	if err != nil || d.OK || d.Limit != 2 || d.RetryAfter <= 11*time.Hour || d.RetryAfter > 12*time.Hour {
		t.Errorf("day window refusal: %+v %v", d, err)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, cfg := range []redisbudget.Config{
		{},
		{URL: "http://user:hunter2@host/"},
		{URL: "redis://user:hunter2@host:notaport/x"},
		{URL: "redis://h", Client: redis.NewClient(&redis.Options{})},
		{URL: "redis://h", OpTimeout: -1},
	} {
		_, err := redisbudget.New(cfg)
		if !errors.Is(err, redisbudget.ErrInvalidConfig) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("New(%q): %v", cfg.URL, err)
		}
		if cfg.Client != nil {
			_ = cfg.Client.Close()
		}
	}
	b, err := redisbudget.New(redisbudget.Config{URL: "redis://127.0.0.1:1/0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, spec := range []config.Budget{{}, {Rate: config.Limit{{Tokens: 0, Interval: time.Second}}}} {
		if _, err := b.Budget(spec); !errors.Is(err, redisbudget.ErrInvalidConfig) {
			t.Errorf("Budget(%+v): %v", spec, err)
		}
	}
}

// TestRedisDown: a Redis that does not answer is an error from Take (the
// proxy then lets the call through and logs it), quickly.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	b, err := redisbudget.New(redisbudget.Config{URL: "redis://:hunter2@127.0.0.1:1/0", OpTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bu, err := b.Budget(config.Budget{Rate: config.Limit{{Tokens: 1, Interval: time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bu.Take(context.Background(), "A"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Take on a closed port: %v", err)
	}
	if err := b.Ping(context.Background()); err == nil {
		t.Error("Ping on a closed port succeeded")
	}
	if _, err := redisbudget.Open(context.Background(), redisbudget.Config{URL: "redis://:hunter2@127.0.0.1:1/0"}); err == nil ||
		strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "not answering") {
		t.Errorf("Open on a closed port: %v", err)
	}
}
