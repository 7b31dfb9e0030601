package redislimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/tickgate/tickgate/guard/redislimit"
	"github.com/tickgate/tickgate/internal/redistest"
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

func redisURL(t testing.TB) string { return redistest.URL(t) }

// newClient is an independent client on the test Redis (one per
// simulated replica), closed when t ends.
func newClient(t testing.TB) *redis.Client { return redistest.Client(t) }

// testPrefix returns a fresh key prefix, its keys deleted when t ends.
func testPrefix(t testing.TB) string { return redistest.Prefix(t, "tickgate-test:ratelimit:") }

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
