package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/marketsim"
)

// TestBudgetBeforeVendor: with tickgate's budget as large as marketsim's
// plan, 50 browsers asking for 50 quotes at once get 10 answers and 40
// 429 upstream_budget from tickgate; marketsim sees 10 calls and answers
// no 429.
func TestBudgetBeforeVendor(t *testing.T) {
	t.Parallel()
	const plan, browsers = 10, 50
	e := newSimEnv(t, marketsim.Options{}, nil, func(u *config.Upstream) {
		// 10 calls, then about one an hour: no refill during the test.
		u.Budget = config.Budget{Rate: config.Limit{{Tokens: plan, Interval: time.Hour}}}
	})
	// The vendor's own plan is the same: an 11th call would get its 429.
	if err := e.sim.SetRESTLimit(float64(plan)/3600, plan); err != nil {
		t.Fatal(err)
	}
	syms := e.sim.Symbols()[:browsers]
	answers := make([]response, browsers)
	var wg sync.WaitGroup
	for i, s := range syms {
		wg.Go(func() { answers[i] = e.do(t, http.MethodGet, "/api/demo/v1/quote/"+s, nil) })
	}
	wg.Wait()
	var ok, refused int
	var all strings.Builder
	for i, a := range answers {
		fmt.Fprintf(&all, "%v %s\n", a.header, a.body)
		switch a.status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			refused++
			wantError(t, a, http.StatusTooManyRequests, "upstream_budget")
			if s, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("browser %d: Retry-After %q", i, a.header.Get("Retry-After"))
			}
			if a.header.Get("X-Ratelimit-Limit") != strconv.Itoa(plan) || a.header.Get("X-Ratelimit-Remaining") != "0" ||
				a.header.Get("X-Ratelimit-Reset") == "" {
				t.Errorf("browser %d: X-RateLimit-* %v", i, a.header)
			}
		default:
			t.Errorf("browser %d: %d %q", i, a.status, a.body)
		}
	}
	st := e.sim.Stats()
	if ok != plan || refused != browsers-plan || st.RESTRequests != plan || st.RateLimited != 0 {
		t.Errorf("%d answered, %d refused by tickgate; marketsim saw %d calls and sent %d 429s; want %d, %d, %d, 0",
			ok, refused, st.RESTRequests, st.RateLimited, plan, browsers-plan, plan)
	}
	if c := strings.Count(e.logs.String(), "code=upstream_budget"); c != browsers-plan {
		t.Errorf("%d budget refusals logged, want %d", c, browsers-plan)
	}
	assertNoKey(t, "client bytes", all.String(), simKey)
	assertNoKey(t, "logs", e.logs.String(), simKey)
}

// TestBudgetQueue: a request waits up to queue for a token rather than
// being refused.
func TestBudgetQueue(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, marketsim.Options{}, nil, func(u *config.Upstream) {
		u.Budget = config.Budget{Rate: config.Limit{{Tokens: 20, Interval: time.Second}}, Burst: 1, Queue: config.Duration(30 * time.Second)}
	})
	for _, s := range []string{"AAPL", "MSFT", "TSLA"} {
		if r := e.do(t, http.MethodGet, "/api/demo/v1/quote/"+s, nil); r.status != http.StatusOK {
			t.Errorf("%s: %d %q (should have waited for a token)", s, r.status, r.body)
		}
	}
	if n := e.sim.Stats().RESTRequests; n != 3 {
		t.Errorf("marketsim saw %d calls, want 3", n)
	}
}

// TestCoolDownAfterVendor429: after marketsim's 429 no call goes out with
// that key until its Retry-After has passed; browsers get 429
// upstream_rate_limited with the time left.
func TestCoolDownAfterVendor429(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, marketsim.Options{}, nil, nil)
	if err := e.sim.SetRESTLimit(0.01, 1); err != nil { // one call, then one per 100 s
		t.Fatal(err)
	}
	if r := e.do(t, http.MethodGet, "/api/demo/v1/quote/AAPL", nil); r.status != http.StatusOK {
		t.Fatalf("first: %d %q", r.status, r.body)
	}
	r := e.do(t, http.MethodGet, "/api/demo/v1/quote/MSFT", nil)
	wantError(t, r, http.StatusTooManyRequests, "upstream_rate_limited")
	vendorRetry, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || vendorRetry < 90 || vendorRetry > 100 {
		t.Fatalf("Retry-After passed on = %q, want marketsim's (~100)", r.header.Get("Retry-After"))
	}
	assertNoKey(t, "429 answer", fmt.Sprint(r.header, r.body), simKey)
	// Other paths, HEAD too: refused by tickgate, marketsim not asked.
	for _, target := range []string{"/api/demo/v1/quote/TSLA", "/api/demo/v1/symbols", "/api/demo/v1/quote/SPY"} {
		r := e.do(t, http.MethodGet, target, nil)
		wantError(t, r, http.StatusTooManyRequests, "upstream_rate_limited")
		if s, _ := strconv.Atoi(r.header.Get("Retry-After")); s < 1 || s > vendorRetry {
			t.Errorf("%s: Retry-After %q, want 1..%d", target, r.header.Get("Retry-After"), vendorRetry)
		}
	}
	if st := e.sim.Stats(); st.RESTRequests != 2 || st.RateLimited != 1 {
		t.Errorf("marketsim saw %d calls, sent %d 429s; want 2, 1", st.RESTRequests, st.RateLimited)
	}
	// Past the vendor's Retry-After (one clock for both) calls go out again.
	e.clock.advance(time.Duration(vendorRetry+1) * time.Second)
	if r := e.do(t, http.MethodGet, "/api/demo/v1/quote/TSLA", nil); r.status != http.StatusOK {
		t.Errorf("after the cool-down: %d %q", r.status, r.body)
	}
}

// TestErrorsIn200 runs marketsim in "errors in 200" mode: the status in
// the body is the one that counts.
func TestErrorsIn200(t *testing.T) {
	t.Parallel()
	e := newSimEnv(t, marketsim.Options{ErrorsIn200: true}, nil, nil)
	var all strings.Builder
	get := func(path string) response {
		r := e.do(t, http.MethodGet, path, nil)
		fmt.Fprintf(&all, "%v %s\n", r.header, r.body)
		return r
	}
	if r := get("/api/demo/v1/quote/AAPL"); r.status != http.StatusOK || !strings.Contains(r.body, `"symbol":"AAPL"`) {
		t.Errorf("quote: %d %q", r.status, r.body)
	}
	// 404 in a 200: passed on as the 404 it is.
	if r := get("/api/demo/v1/quote/NOPE"); r.status != http.StatusNotFound || !strings.Contains(r.body, "unknown symbol") {
		t.Errorf("unknown symbol: %d %q", r.status, r.body)
	}
	// 401 in a 200 (the body echoes the URL with the key): re-read the key,
	// retry once, then 502 upstream_auth without the vendor body.
	e.sec.set(config.DemoKeySecret, "not-the-key-0123456789")
	r := get("/api/demo/v1/quote/AAPL")
	wantError(t, r, http.StatusBadGateway, "upstream_auth")
	if e.sec.count() != 1 {
		t.Errorf("%d invalidations, want 1", e.sec.count())
	}
	if !strings.Contains(e.logs.String(), "status_in_body=401") {
		t.Error("the status in the body is not logged")
	}
	e.sec.set(config.DemoKeySecret, simKey)
	// 429 in a 200: upstream_rate_limited, marketsim's Retry-After, cool-down.
	if err := e.sim.SetRESTLimit(0.01, 1); err != nil {
		t.Fatal(err)
	}
	get("/api/demo/v1/quote/MSFT")
	r = get("/api/demo/v1/quote/TSLA")
	wantError(t, r, http.StatusTooManyRequests, "upstream_rate_limited")
	if s, _ := strconv.Atoi(r.header.Get("Retry-After")); s < 90 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	before := e.sim.Stats().RESTRequests
	wantError(t, get("/api/demo/v1/quote/SPY"), http.StatusTooManyRequests, "upstream_rate_limited")
	if after := e.sim.Stats().RESTRequests; after != before {
		t.Errorf("a call went out during the cool-down (%d -> %d)", before, after)
	}
	assertNoKey(t, "client bytes", all.String(), simKey, "not-the-key-0123456789")
	assertNoKey(t, "logs", e.logs.String(), simKey, "not-the-key-0123456789")
}

func TestBodyErrorRule(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rule   config.ErrorInBody
		body   string
		status int
		isErr  bool
	}{
		{config.ErrorInBody{Field: "status", Value: "error", CodeField: "code"}, `{"status":"error","code":401}`, 401, true},
		{config.ErrorInBody{Field: "status", Value: "error", CodeField: "code"}, `{"status":"error","code":"429"}`, 429, true},
		{config.ErrorInBody{Field: "status", Value: "error", CodeField: "code"}, `{"status":"error","code":200}`, 0, true},
		{config.ErrorInBody{Field: "status", Value: "error", CodeField: "code"}, `{"status":"error"}`, 0, true},
		{config.ErrorInBody{Field: "status", Value: "error", CodeField: "code"}, `{"status":"ok","code":401}`, 0, false},
		{config.ErrorInBody{Field: "status", Value: "error", CodeField: "code"}, `[{"status":"error"}]`, 0, false},
		{config.ErrorInBody{Field: "status", Value: "error", CodeField: "code"}, `not json "status"`, 0, false},
		{config.ErrorInBody{Field: "error"}, `{"error":"Invalid API key"}`, 0, true},
		{config.ErrorInBody{Field: "error"}, `{"error":""}`, 0, false},
		{config.ErrorInBody{Field: "error"}, `{"error":null}`, 0, false},
		{config.ErrorInBody{Field: "error"}, `{"error":false}`, 0, false},
		{config.ErrorInBody{Field: "error"}, `{"c":1.5}`, 0, false},
		{config.ErrorInBody{Field: "meta.error", CodeField: "meta.http"}, `{"meta":{"error":true,"http":403}}`, 403, true},
		{config.ErrorInBody{Field: "meta.error", CodeField: "meta.http"}, `{"meta":"error"}`, 0, false},
	} {
		r, err := compileBodyErrorRule(tc.rule)
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := r.match([]byte(tc.body)); s != tc.status || ok != tc.isErr {
			t.Errorf("%+v on %s = %d %v, want %d %v", tc.rule, tc.body, s, ok, tc.status, tc.isErr)
		}
	}
	for _, bad := range []config.ErrorInBody{{Value: "x"}, {Field: "a..b"}, {Field: "a", CodeField: "b."}} {
		if _, err := compileBodyErrorRule(bad); err == nil {
			t.Errorf("%+v compiled", bad)
		}
	}
}

// TestMemoryBudget checks the token arithmetic on a fake clock.
func TestMemoryBudget(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	b, err := NewMemoryBudget(config.Budget{Rate: config.Limit{{Tokens: 2, Interval: time.Second}, {Tokens: 5, Interval: time.Minute}}, Burst: 3}, clock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	take := func(key string) BudgetDecision {
		t.Helper()
		d, err := b.Take(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for i := range 3 {
		if d := take("A"); !d.OK {
			t.Fatalf("take %d refused: %+v", i, d)
		}
	}
	d := take("A")
	if d.OK || d.RetryAfter != 500*time.Millisecond || d.Limit != 3 || d.Remaining != 0 {
		t.Fatalf("4th take: %+v, want refused, retry 500ms, limit 3", d)
	}
	if d := take("B"); !d.OK {
		t.Error("key B shares A's tokens")
	}
	now = now.Add(500 * time.Millisecond)
	take("A") // 4th of the minute's 5
	now = now.Add(500 * time.Millisecond)
	take("A") // 5th
	now = now.Add(10 * time.Second)
	d = take("A") // the second window has 11s * 5/60s = 0.917 tokens
	if d.OK || d.RetryAfter < time.Second || d.RetryAfter > time.Second+time.Millisecond || d.Limit != 5 {
		t.Fatalf("minute window: %+v, want refused, retry 1s, limit 5", d)
	}
	now = now.Add(d.RetryAfter)
	if d := take("A"); !d.OK {
		t.Errorf("after the retry: %+v", d)
	}
	for _, bad := range []config.Budget{{}, {Rate: config.Limit{{Tokens: 0, Interval: time.Second}}}, {Rate: config.Limit{{Tokens: 1}}}} {
		if _, err := NewMemoryBudget(bad, nil); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewMemoryBudget(%+v) = %v", bad, err)
		}
	}
}

// failingBudget is a store that does not answer.
type failingBudget struct{}

func (failingBudget) Take(context.Context, string) (BudgetDecision, error) {
	return BudgetDecision{}, errors.New("store down")
}

// TestBudgetStoreDown: a budget store that fails lets the call through
// (the vendor's 429 and the cool-down still protect the key) and is logged.
func TestBudgetStoreDown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", func(u *config.Upstream, _ *harness) {
		u.Budget = config.Budget{Rate: config.Limit{{Tokens: 1, Interval: time.Hour}}}
	})
	h.p.ups["demo"].budget = failingBudget{}
	if r := h.get(t, "/api/demo/v1/quote/A"); r.status != http.StatusOK {
		t.Errorf("%d %q", r.status, r.body)
	}
	if !strings.Contains(h.logs.String(), "upstream budget store failed") {
		t.Error("store failure not logged")
	}
}

// TestAccountsShareBudget: upstreams with the same first secret share one
// budget and one cool-down; different budgets on them are a config error.
func TestAccountsShareBudget(t *testing.T) {
	t.Parallel()
	v := newVendor(t, "")
	one := config.Budget{Rate: config.Limit{{Tokens: 1, Interval: time.Hour}}}
	mk := func(b config.Budget) config.Upstream {
		return config.Upstream{BaseURL: v.base, Key: config.KeyRef{Secret: secretName, Placement: "query:apikey"},
			Routes: testRoutesConfig(), Budget: b}
	}
	p, err := New(Config{Upstreams: map[string]config.Upstream{"a": mk(one), "b": mk(config.Budget{})}, Secrets: newFakeSecrets(secretName, vendorKey)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.ups["a"].budget == nil || p.ups["a"].budget != p.ups["b"].budget || p.ups["a"].cool != p.ups["b"].cool {
		t.Error("upstreams of one account do not share budget and cool-down")
	}
	two := config.Budget{Rate: config.Limit{{Tokens: 2, Interval: time.Hour}}}
	_, err = New(Config{Upstreams: map[string]config.Upstream{"a": mk(one), "b": mk(two)}, Secrets: newFakeSecrets(secretName, vendorKey)})
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "different budgets") || strings.Contains(err.Error(), vendorKey) {
		t.Errorf("different budgets: %v", err)
	}
}
