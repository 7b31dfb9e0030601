//go:build unix

package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/marketsim"
	"github.com/tickgate/tickgate/session"
)

// TestReplicasShareVendorBudget: two replicas with
// TICKGATE_LIMIT_STORE=redis spend one vendor budget (issue 5): the
// budget of 6 calls is used up by 3 calls through each, then both answer
// 429 upstream_budget with Retry-After and the vendor saw exactly 6
// calls. The bucket is in Redis under the deployment's prefix, named by
// the secret (never its value).
func TestReplicasShareVendorBudget(t *testing.T) {
	redisURL := testRedisURL(t)
	prefix := testRedisPrefix(t, redisURL)
	sim, err := marketsim.New(marketsim.Options{Keys: []string{testKey}, RESTRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	hash, err := session.HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "tickgate.yaml")
	writeFile(t, cfg, `upstreams:
  demo:
    base_url: `+sim.URL()+`
    key: {secret: VENDOR_KEY, placement: "query:apikey"}
    routes: [{paths: ["/v1/quote/*"]}]
    budget: {rate: 6/1h}
`)
	env := map[string]string{
		"TICKGATE_CONFIG":       cfg,
		"TICKGATE_USERS":        "demo:" + hash,
		"VENDOR_KEY":            testKey,
		"TICKGATE_LIMIT_STORE":  "redis",
		"TICKGATE_REDIS_URL":    redisURL,
		"TICKGATE_REDIS_PREFIX": prefix,
	}
	a, b := start(t, env), start(t, env)
	rec := &recorder{}
	ba, bb := newBrowser(t, a.url, rec), newBrowser(t, b.url, rec)
	login(t, ba)
	login(t, bb)

	const budget = 6
	symbols := []string{"AAPL", "MSFT", "GOOG", "AMZN", "TSLA", "NVDA", "META", "IBM"}
	for i := range budget {
		br := ba
		if i%2 == 1 {
			br = bb
		}
		resp, body := br.do("GET", "/api/demo/v1/quote/"+symbols[i], "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d through %s: %d %s, want 200", i+1, br.base, resp.StatusCode, body)
		}
	}
	for i, br := range []*browser{ba, bb} {
		resp, body := br.do("GET", "/api/demo/v1/quote/"+symbols[budget+i], "", nil)
		if resp.StatusCode != http.StatusTooManyRequests || errorCode(t, body) != "upstream_budget" {
			t.Errorf("call past the shared budget through %s: %d %s, want 429 upstream_budget", br.base, resp.StatusCode, body)
		}
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("429 through %s: Retry-After %q", br.base, resp.Header.Get("Retry-After"))
		}
	}
	if got := sim.Stats().RESTRequests; got != budget {
		t.Errorf("the vendor received %d calls, want %d (one budget across replicas)", got, budget)
	}

	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	keys, err := c.Keys(ctx, prefix+"budget:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !strings.Contains(keys[0], "VENDOR_KEY") {
		t.Errorf("budget keys under %sbudget: = %q, want one for VENDOR_KEY", prefix, keys)
	}
	for _, k := range keys {
		if strings.Contains(k, testKey) {
			t.Errorf("Redis key %q holds the vendor key", k)
		}
	}
	for _, inst := range []*instance{a, b} {
		if err := inst.stop(); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(inst.stderr.String(), testKey) {
			t.Error("the key reached the log")
		}
	}
	if strings.Contains(rec.String(), testKey) {
		t.Error("the key reached the browser")
	}
}

// TestOpenBudgetStore: the Redis budget store is opened only with
// TICKGATE_LIMIT_STORE=redis and a budget in the YAML; one that does not
// answer is one TICKGATE_REDIS_URL line without the URL's password.
func TestOpenBudgetStore(t *testing.T) {
	t.Parallel()
	withBudget := config.File{Upstreams: map[string]config.Upstream{
		"v": {Budget: config.Budget{Rate: config.Limit{{Tokens: 5, Interval: time.Second}}}},
	}}
	down := config.Settings{LimitStore: "redis", RedisURL: "redis://:hunter2-secret@127.0.0.1:1/0", RedisPrefix: "t:"}

	for name, tc := range map[string]struct {
		s config.Settings
		f config.File
	}{
		"memory store":          {config.Settings{LimitStore: "memory"}, withBudget},
		"no budget in the YAML": {down, config.File{Upstreams: map[string]config.Upstream{"v": {}}}},
	} {
		budgets, closeFn, err := openBudgetStore(context.Background(), tc.s, tc.f)
		if err != nil || budgets != nil {
			t.Errorf("%s: budgets %v, err %v; want the in-process default", name, budgets != nil, err)
		}
		closeFn()
	}

	_, _, err := openBudgetStore(context.Background(), down, withBudget)
	if err == nil {
		t.Fatal("a Redis that does not answer was accepted")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "TICKGATE_REDIS_URL: ") || strings.Contains(msg, "\n") || strings.Contains(msg, "hunter2") {
		t.Errorf("start-up error %q: want one TICKGATE_REDIS_URL line without the password", msg)
	}
}
