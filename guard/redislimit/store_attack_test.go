package redislimit_test

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tickgate/tickgate/guard"
)

// TestAttackConcurrentReplicasExact: many goroutines on two replicas (two
// clients, two connection pools: to Redis, two processes) hammering one
// bucket of a burst-and-sustained limit get exactly the limit, no more:
// the Lua script is one atomic step per take, and the windows agree.
func TestAttackConcurrentReplicasExact(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	const workers, each, sustained = 100, 6, 250
	l := mustLimit(t, "1000/1h,250/24h")
	var replicas [2]*guard.Limiter
	for i := range replicas {
		lim, err := guard.NewLimiterWith(l, guard.LimiterOptions{Name: "ip", Stores: newBackend(t, prefix).Store})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(lim.Close)
		replicas[i] = lim
	}
	var allowed, failed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				res, err := replicas[w%2].Take(context.Background(), "ip:198.51.100.77")
				switch {
				case err != nil || res.Degraded:
					failed.Add(1)
				case res.Allowed:
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d takes failed or degraded; the test needs Redis answering", n)
	}
	if got := allowed.Load(); got != sustained {
		t.Fatalf("%d concurrent takes over two replicas allowed %d, want exactly %d", workers*each, got, sustained)
	}
}

// TestAttackClientControlledKeys: bucket keys are built from what clients
// send (addresses, session ids, user names); whatever they hold (Redis
// glob characters, cluster hash tags, CR LF, binary, a megabyte) the
// Redis key is the limiter's prefix and a fixed-length hash, nothing of
// the client's string.
func TestAttackClientControlledKeys(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	lim, err := guard.NewLimiterWith(mustLimit(t, "3/1h"), guard.LimiterOptions{Name: "route:/api/{x}/*", Stores: newBackend(t, prefix).Store})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	hostile := []string{
		"*", "?", "[a-z]", "{tag}", "a}{b", "\r\nFLUSHALL\r\n", "\x00\xff\xfe", "ip:1.2.3.4 ip:5.6.7.8",
		strings.Repeat("k", 1<<20), prefix + "other",
	}
	for _, k := range hostile {
		res, err := lim.Take(context.Background(), k)
		if err != nil || !res.Allowed || res.Remaining != 2 {
			t.Fatalf("take %.40q = %+v %v, want a fresh bucket", k, res, err)
		}
	}
	keys, err := newClient(t).Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(hostile) {
		t.Fatalf("%d keys for %d distinct buckets: %q", len(keys), len(hostile), keys)
	}
	shape := regexp.MustCompile("^" + regexp.QuoteMeta(prefix+"route:/api/(x)/*:3/1h:") + "[0-9a-f]{32}$")
	for _, k := range keys {
		if !shape.MatchString(k) {
			t.Errorf("key %.80q is not the limiter's prefix and a hash", k)
		}
	}
}

// TestAttackRedisDownStillLimits: with Redis unreachable, a fail-open
// limiter lets traffic flow but not a flood: each replica applies the
// limit on its own until Redis answers again.
func TestAttackRedisDownStillLimits(t *testing.T) {
	t.Parallel()
	lim, err := guard.NewLimiterWith(mustLimit(t, "5/1h"), guard.LimiterOptions{Name: "ip", Stores: unreachable(t).Store})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	allowed := 0
	for range 40 {
		res, err := lim.Take(context.Background(), "ip:198.51.100.1")
		if err != nil || !res.Degraded {
			t.Fatalf("take with Redis down: %+v %v, want a Degraded decision", res, err)
		}
		if res.Allowed {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("with Redis down %d of 40 requests were allowed, want 5 (the limit, on this replica)", allowed)
	}
}
