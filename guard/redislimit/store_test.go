package redislimit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sethvargo/go-limiter"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/guard"
	"github.com/tickgate/tickgate/guard/limitertest"
	"github.com/tickgate/tickgate/guard/redislimit"
	"github.com/tickgate/tickgate/metrics"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	b := newBackend(t, testPrefix(t))
	var n atomic.Int64
	limitertest.Run(t, func(t *testing.T, tokens uint64, interval time.Duration) limiter.Store {
		s, err := b.NewStore(fmt.Sprintf("conformance-%d:", n.Add(1)), tokens, interval)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(context.Background()) })
		return s
	})
}

func mustLimit(t testing.TB, s string) config.Limit {
	t.Helper()
	l, err := config.ParseLimit(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestLimitHoldsAcrossReplicas: two limiters on two independent Redis
// clients (two tickgate replicas) share one budget, under concurrency.
func TestLimitHoldsAcrossReplicas(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	const burst, sustained = 10, 15
	l := mustLimit(t, fmt.Sprintf("%d/1h,%d/24h", burst, sustained))
	var replicas []*guard.Limiter
	for range 2 {
		lim, err := guard.NewLimiterWith(l, guard.LimiterOptions{Name: "ip", Stores: newBackend(t, prefix).Store})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(lim.Close)
		replicas = append(replicas, lim)
	}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			res, err := replicas[i%2].Take(context.Background(), "ip:198.51.100.7")
			if err != nil || res.Degraded {
				errs <- fmt.Errorf("take: degraded=%v err=%v", res.Degraded, err)
				return
			}
			if res.Allowed {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := allowed.Load(); got != burst {
		t.Fatalf("two replicas allowed %d requests, want %d (the burst window)", got, burst)
	}
	// Another client is another bucket on both replicas.
	res, err := replicas[1].Take(context.Background(), "ip:198.51.100.8")
	if err != nil || !res.Allowed || res.Remaining != burst-1 || res.Limit != burst {
		t.Fatalf("other client: %+v %v", res, err)
	}
	// A different limiter name never shares buckets.
	other, err := guard.NewLimiterWith(l, guard.LimiterOptions{Name: "session", Stores: newBackend(t, prefix).Store})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if res, err := other.Take(context.Background(), "ip:198.51.100.7"); err != nil || !res.Allowed {
		t.Fatalf("limiter session shares buckets with limiter ip: %+v %v", res, err)
	}
}

// TestRateLimitHeadersAcrossReplicas drives two RateLimit middlewares (two
// replicas behind a load balancer) and checks the contract's headers.
func TestRateLimitHeadersAcrossReplicas(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	l := mustLimit(t, "3/1m")
	var handlers []http.Handler
	for range 2 {
		lim, err := guard.NewLimiterWith(l, guard.LimiterOptions{Name: "ip", Stores: newBackend(t, prefix).Store})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(lim.Close)
		handlers = append(handlers, guard.RateLimit(lim, "ip", func(*http.Request) string { return "203.0.113.9" }, metrics.Discard(), nil)(
			http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })))
	}
	for i, want := range []struct {
		code      int
		remaining string
	}{{204, "2"}, {204, "1"}, {204, "0"}, {429, "0"}, {429, "0"}} {
		rec := httptest.NewRecorder()
		before := time.Now()
		handlers[i%2].ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		h := rec.Header()
		if rec.Code != want.code || h.Get("X-RateLimit-Remaining") != want.remaining || h.Get("X-RateLimit-Limit") != "3" {
			t.Fatalf("request %d on replica %d: code %d remaining %q limit %q", i, i%2, rec.Code, h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Limit"))
		}
		reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
		if err != nil || reset < before.Unix()+1 || reset > time.Now().Add(time.Minute+2*time.Second).Unix() {
			t.Fatalf("request %d: X-RateLimit-Reset = %q, want within a minute from now", i, h.Get("X-RateLimit-Reset"))
		}
		if rec.Code == 429 {
			ra, err := strconv.Atoi(h.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 61 {
				t.Fatalf("request %d: Retry-After = %q", i, h.Get("Retry-After"))
			}
		} else if h.Get("Retry-After") != "" {
			t.Fatalf("request %d: Retry-After on an allowed request", i)
		}
	}
}

// TestWindowEdges: right at the end of a short window, Reset and
// Retry-After stay positive and refills are seen by every replica.
func TestWindowEdges(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	l := mustLimit(t, "1/300ms")
	var lims []*guard.Limiter
	for range 2 {
		lim, err := guard.NewLimiterWith(l, guard.LimiterOptions{Name: "edge", Stores: newBackend(t, prefix).Store})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(lim.Close)
		lims = append(lims, lim)
	}
	ctx := context.Background()
	refills := 0
	deadline := time.Now().Add(patience)
	for i := 0; refills < 3; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("saw %d refills in %v", refills, patience)
		}
		res, err := lims[i%2].Take(ctx, "k")
		now := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed {
			refills++
		}
		h := http.Header{}
		res.SetHeaders(h, now)
		if reset, _ := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); reset < now.Unix()+1 {
			t.Fatalf("X-RateLimit-Reset %d is not after now %d", reset, now.Unix())
		}
		if ra := res.RetryAfter(now); ra < 1 || ra > 2 {
			t.Fatalf("Retry-After %d for a 300ms window", ra)
		}
		if !res.Allowed && res.Reset.Sub(now) > 300*time.Millisecond+time.Second {
			t.Fatalf("refused take says wait %v", res.Reset.Sub(now))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLoginLimiterAcrossReplicas(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	l := mustLimit(t, "2/1h")
	var lls []*guard.LoginLimiter
	for range 2 {
		ll, err := guard.NewLoginLimiterWith(l, guard.LimiterOptions{Stores: newBackend(t, prefix).Store})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ll.Close)
		lls = append(lls, ll)
	}
	ctx := context.Background()
	for i := range 2 {
		if ok, _ := lls[i].AllowLogin(ctx, "2001:db8:1:2::1", "alice"); !ok {
			t.Fatalf("attempt %d refused", i)
		}
	}
	// Same user from elsewhere, on either replica: refused.
	if ok, retry := lls[0].AllowLogin(ctx, "192.0.2.50", "Alice"); ok || retry < time.Second {
		t.Fatalf("third attempt for alice: ok=%v retry=%v", ok, retry)
	}
	// Same /64, another user: refused.
	if ok, _ := lls[1].AllowLogin(ctx, "2001:db8:1:2::99", "bob"); ok {
		t.Fatal("third attempt from the same /64 allowed")
	}
}

// TestKeysAreHashedAndExpire: client addresses never appear in Redis, and
// every bucket has a TTL.
func TestKeysAreHashedAndExpire(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	lim, err := guard.NewLimiterWith(mustLimit(t, "5/1s,100/1h"), guard.LimiterOptions{Name: "ip", Stores: newBackend(t, prefix).Store})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	if _, err := lim.Take(context.Background(), "ip:198.51.100.23"); err != nil {
		t.Fatal(err)
	}
	admin := newClient(t)
	keys, err := admin.Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("keys = %v, want one per window", keys)
	}
	for _, k := range keys {
		if strings.Contains(k, "198.51.100.23") {
			t.Fatalf("key %q holds the client address", k)
		}
		if !strings.HasPrefix(k, prefix+"ip:5/1s:") && !strings.HasPrefix(k, prefix+"ip:100/1h:") {
			t.Fatalf("key %q does not name its limiter and window", k)
		}
		ttl, err := admin.PTTL(context.Background(), k).Result()
		if err != nil || ttl <= 0 || ttl > 2*time.Hour+time.Minute {
			t.Fatalf("PTTL(%s) = %v, %v", k, ttl, err)
		}
	}
}

// closedPort returns an address nothing listens on.
const closedPort = "redis://127.0.0.1:1/0"

func unreachable(t *testing.T) *redislimit.Backend {
	t.Helper()
	b, err := redislimit.New(redislimit.Config{URL: closedPort, OpTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// lockedBuffer is a log sink safe for concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRedisDownPolicies: with Redis unreachable, market-data limits fail
// open, login fails closed, each logged once and counted per request.
func TestRedisDownPolicies(t *testing.T) {
	t.Parallel()
	b := unreachable(t)
	var logs lockedBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	storeErrs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "store_errors"}, []string{"limiter", "policy"})
	l := mustLimit(t, "5/1s,100/1h")

	open, err := guard.NewLimiterWith(l, guard.LimiterOptions{Name: "ip", Stores: b.Store, Logger: log, StoreErrors: storeErrs})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	h := guard.RateLimit(open, "ip", func(*http.Request) string { return "198.51.100.1" }, metrics.Discard(), log)(
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for i := range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/demo/quote", nil))
		if rec.Code != http.StatusNoContent || rec.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatalf("fail-open request %d: code %d, headers %v", i, rec.Code, rec.Header())
		}
	}
	if got := counterValue(storeErrs.WithLabelValues("ip", "open")); got != 3 {
		t.Fatalf("store errors counted (ip, open) = %v, want 3", got)
	}

	closed, err := guard.NewLimiterWith(l, guard.LimiterOptions{Name: "route:/api/*", Stores: b.Store, OnStoreError: guard.FailClosed, Logger: log, StoreErrors: storeErrs})
	if err != nil {
		t.Fatal(err)
	}
	defer closed.Close()
	h = guard.RateLimit(closed, "route", func(*http.Request) string { return "x" }, metrics.Discard(), log)(
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { t.Error("fail-closed limiter let a request through") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/demo/quote", nil))
	var body struct{ Error struct{ Code string } }
	if rec.Code != http.StatusServiceUnavailable || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error.Code != "rate_limit_unavailable" || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("fail-closed: code %d body %s headers %v", rec.Code, rec.Body, rec.Header())
	}
	if _, err := closed.Take(context.Background(), "x"); !errors.Is(err, guard.ErrStoreUnavailable) {
		t.Fatalf("fail-closed Take err = %v, want ErrStoreUnavailable", err)
	}

	ll, err := guard.NewLoginLimiterWith(mustLimit(t, "5/1m"), guard.LimiterOptions{Stores: b.Store, Logger: log, StoreErrors: storeErrs})
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()
	if ok, retry := ll.AllowLogin(context.Background(), "198.51.100.1", "alice"); ok || retry != time.Second {
		t.Fatalf("login with Redis down: ok=%v retry=%v, want refused for 1s", ok, retry)
	}
	if got := counterValue(storeErrs.WithLabelValues("login", "closed")); got != 1 {
		t.Fatalf("store errors counted (login, closed) = %v, want 1", got)
	}

	out := logs.String()
	if n := strings.Count(out, `"msg":"rate-limit store unavailable","limiter":"ip"`); n != 1 {
		t.Fatalf("ip limiter outage logged %d times, want once:\n%s", n, out)
	}
	for _, want := range []string{`"limiter":"login","policy":"closed"`, `"limiter":"route:/api/*","policy":"closed"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %s:\n%s", want, out)
		}
	}
}

// TestRecoversAfterOutage: a limiter whose store failed asks it again
// after RetryStoreAfter and logs the recovery.
func TestRecoversAfterOutage(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	good := newBackend(t, prefix)
	bad := unreachable(t)
	var failing atomic.Bool
	failing.Store(true)
	stores := func(name string, r config.Rate) (limiter.Store, error) {
		gs, err := good.Store(name, r)
		if err != nil {
			return nil, err
		}
		bs, err := bad.Store(name, r)
		if err != nil {
			return nil, err
		}
		return switchStore{good: gs, bad: bs, failing: &failing}, nil
	}
	var logs lockedBuffer
	lim, err := guard.NewLimiterWith(mustLimit(t, "2/1h"), guard.LimiterOptions{
		Name: "ip", Stores: stores, RetryStoreAfter: 10 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	ctx := context.Background()
	if res, err := lim.Take(ctx, "k"); err != nil || !res.Degraded {
		t.Fatalf("during outage: %+v %v", res, err)
	}
	failing.Store(false)
	deadline := time.Now().Add(patience)
	for {
		res, err := lim.Take(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if !res.Degraded {
			if !res.Allowed || res.Remaining != 1 {
				t.Fatalf("after recovery: %+v", res)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("limiter never asked the store again")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "rate-limit store answering again") {
		t.Fatalf("recovery not logged:\n%s", logs.String())
	}
}

type switchStore struct {
	good, bad limiter.Store
	failing   *atomic.Bool
}

func (s switchStore) pick() limiter.Store {
	if s.failing.Load() {
		return s.bad
	}
	return s.good
}

func (s switchStore) Take(ctx context.Context, k string) (uint64, uint64, uint64, bool, error) {
	return s.pick().Take(ctx, k)
}
func (s switchStore) Get(ctx context.Context, k string) (uint64, uint64, error) {
	return s.pick().Get(ctx, k)
}
func (s switchStore) Set(ctx context.Context, k string, n uint64, i time.Duration) error {
	return s.pick().Set(ctx, k, n, i)
}
func (s switchStore) Burst(ctx context.Context, k string, n uint64) error {
	return s.pick().Burst(ctx, k, n)
}
func (s switchStore) Close(ctx context.Context) error {
	_ = s.bad.Close(ctx)
	return s.good.Close(ctx)
}

// TestOpTimeoutBoundsAStalledServer: a server that accepts and never
// answers costs OpTimeout, not a hang.
func TestOpTimeoutBoundsAStalledServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	conns.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
		}
	})
	defer func() {
		_ = ln.Close()
		conns.Wait()
		mu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		mu.Unlock()
	}()
	b, err := redislimit.New(redislimit.Config{URL: "redis://" + ln.Addr().String() + "/0", OpTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	s, err := b.NewStore("stall:", 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, _, ok, err := s.Take(context.Background(), "k")
	if err == nil || ok {
		t.Fatalf("Take on a stalled server: ok=%v err=%v", ok, err)
	}
	if took := time.Since(start); took > patience {
		t.Fatalf("Take took %v", took)
	}
}

func TestNewConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  redislimit.Config
		want string
	}{
		{"neither", redislimit.Config{}, "URL or Client is required"},
		{"scheme", redislimit.Config{URL: "http://user:hunter2@localhost:6379"}, "scheme must be redis or rediss"},
		{"garbage", redislimit.Config{URL: "redis://user:hunter2@[::1"}, "URL"},
		{"negative timeout", redislimit.Config{URL: "redis://127.0.0.1:6379", OpTimeout: -1}, "OpTimeout must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := redislimit.New(tc.cfg)
			if !errors.Is(err, redislimit.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidConfig containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error reveals the password: %v", err)
			}
		})
	}
	b, err := redislimit.New(redislimit.Config{URL: closedPort})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	if _, err := b.NewStore("x:", 0, time.Second); !errors.Is(err, redislimit.ErrInvalidConfig) {
		t.Fatalf("zero tokens: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	if err := newBackend(t, testPrefix(t)).Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := unreachable(t).Ping(context.Background()); err == nil {
		t.Fatal("Ping of a closed port succeeded")
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
