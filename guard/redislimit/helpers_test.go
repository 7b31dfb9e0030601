package redislimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/tickgate/tickgate/guard/redislimit"
)

func TestMain(m *testing.M) {
	// go-redis reports failed dials on its own global logger; the
	// outage tests dial a closed port on purpose.
	redis.SetLogger(quietLogger{})
	goleak.VerifyTestMain(m)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// patience bounds every wait; generous for a loaded machine.
const patience = 15 * time.Second

// redisURL returns TICKGATE_TEST_REDIS_URL. Without it the test is
// skipped, or fails under CI, which must provide a Redis.
func redisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TICKGATE_TEST_REDIS_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("TICKGATE_TEST_REDIS_URL must be set in CI (e.g. redis://127.0.0.1:6379/15)")
		}
		t.Skip("REQUIRES_REDIS: set TICKGATE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15) to run the Redis rate-limit tests")
	}
	return u
}

// newClient is an independent client on the test Redis (one per
// simulated replica), closed when t ends.
func newClient(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(redisURL(t))
	if err != nil {
		t.Fatalf("TICKGATE_TEST_REDIS_URL: %v", err)
	}
	opts.ContextTimeoutEnabled = true
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testPrefix returns a fresh key prefix, so parallel tests and other
// packages never share buckets, and deletes its keys when t ends.
func testPrefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	prefix := "tickgate-test:ratelimit:" + hex.EncodeToString(b) + ":"
	admin := newClient(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		keys, err := admin.Keys(ctx, prefix+"*").Result()
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		if len(keys) > 0 {
			if err := admin.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return prefix
}

// newBackend is a Backend with its own client (a replica) on prefix.
func newBackend(t testing.TB, prefix string) *redislimit.Backend {
	t.Helper()
	b, err := redislimit.New(redislimit.Config{URL: redisURL(t), Prefix: prefix, OpTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}
