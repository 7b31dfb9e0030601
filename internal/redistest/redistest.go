// Package redistest gives tests the test Redis (TICKGATE_TEST_REDIS_URL):
// a skip with a reason scripts/test.sh recognises when it is unset (a
// failure in CI), clients closed with the test, and key prefixes of their
// own whose keys are deleted when the test ends.
package redistest

import (
	"context"
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// URL returns TICKGATE_TEST_REDIS_URL, or skips the test with a reason
// starting REQUIRES_REDIS (in CI, where it must be set, fails it).
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TICKGATE_TEST_REDIS_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("TICKGATE_TEST_REDIS_URL must be set in CI (e.g. redis://127.0.0.1:6379/15)")
		}
		t.Skip("REQUIRES_REDIS: set TICKGATE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15) to run this test")
	}
	return u
}

// Client is a client of its own on the test Redis (one per simulated
// replica, or for looking behind a store's back), closed when t ends.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(URL(t))
	if err != nil {
		t.Fatalf("TICKGATE_TEST_REDIS_URL: %v", err)
	}
	opts.ContextTimeoutEnabled = true
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Prefix returns base followed by a random part and ":", so parallel
// tests and packages never share keys or channels, and deletes every key
// under it when t ends.
func Prefix(t testing.TB, base string) string {
	t.Helper()
	prefix := base + rand.Text()[:16] + ":"
	admin := Client(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		var keys []string
		iter := admin.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("redis cleanup: scan: %v", err)
			return
		}
		if len(keys) > 0 {
			if err := admin.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("redis cleanup: del: %v", err)
			}
		}
	})
	return prefix
}
