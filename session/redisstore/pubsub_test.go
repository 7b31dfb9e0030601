package redisstore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickgate/tickgate/session/redisstore"
	"github.com/tickgate/tickgate/session/sessiontest"
)

// receive waits for the next key on got.
func receive(t *testing.T, got <-chan string) string {
	t.Helper()
	select {
	case k := <-got:
		return k
	case <-time.After(patience):
		t.Fatal("no revocation event")
		return ""
	}
}

// numSub is the number of subscribers to prefix's revocation channel.
func numSub(t *testing.T, prefix string) int64 {
	t.Helper()
	n, err := adminClient(t).PubSubNumSub(ctxFor(t), prefix+"revoked").Result()
	if err != nil {
		t.Fatal(err)
	}
	return n[prefix+"revoked"]
}

func TestPublishSubscribe(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	a := newStore(t, redisstore.Config{Prefix: prefix}) // replica A
	b := newStore(t, redisstore.Config{Prefix: prefix}) // replica B
	ctx := ctxFor(t)

	gotA, gotB := make(chan string, 10), make(chan string, 10)
	var afterStop atomic.Bool
	stopA := a.Subscribe(ctx, func(k string) {
		if afterStop.Load() {
			t.Error("callback after stop returned")
		}
		gotA <- k
	})
	stopB := b.Subscribe(ctx, func(k string) { gotB <- k })
	defer stopB()

	key := sessiontest.Key(t)
	if err := b.Publish(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, gotA); got != key {
		t.Errorf("A received %q, want the published key", got)
	}
	if got := receive(t, gotB); got != key {
		t.Errorf("B received %q, want the published key", got)
	}

	stopA()
	afterStop.Store(true)
	stopA() // safe twice
	next := sessiontest.Key(t)
	if err := a.Publish(ctx, next); err != nil { // publishing needs no subscription
		t.Fatal(err)
	}
	if got := receive(t, gotB); got != next {
		t.Errorf("B received %q, want the second key", got)
	}
}

// TestSubscribeIsolatedByPrefix: a deployment with another prefix on the
// same server (even another database) does not see our events.
func TestSubscribeIsolatedByPrefix(t *testing.T) {
	t.Parallel()
	ours := newStore(t, redisstore.Config{})
	theirs := newStore(t, redisstore.Config{})
	ctx := ctxFor(t)
	got := make(chan string, 10)
	stop := ours.Subscribe(ctx, func(k string) { got <- k })
	defer stop()
	foreign, own := sessiontest.Key(t), sessiontest.Key(t)
	if err := theirs.Publish(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	if err := ours.Publish(ctx, own); err != nil {
		t.Fatal(err)
	}
	// Both publishes use one connection in order, so the foreign event,
	// were it delivered, would come first.
	if k := receive(t, got); k != own {
		t.Errorf("received another prefix's event")
	}
}

func TestSubscribeEndsWithContext(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	st := newStore(t, redisstore.Config{Prefix: prefix})
	ctx, cancel := context.WithCancel(ctxFor(t))
	stop := st.Subscribe(ctx, func(string) {})
	defer stop()
	if n := numSub(t, prefix); n != 1 {
		t.Fatalf("%d subscribers after Subscribe returned, want 1", n)
	}
	cancel()
	eventually(t, "subscription ends with its context", func() bool { return numSub(t, prefix) == 0 })
}

func TestCloseEndsSubscriptions(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	st := newStore(t, redisstore.Config{Prefix: prefix})
	for range 3 {
		st.Subscribe(ctxFor(t), func(string) {}) // stop deliberately not called
	}
	if n := numSub(t, prefix); n != 3 {
		t.Fatalf("%d subscribers, want 3", n)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Close ends subscriptions", func() bool { return numSub(t, prefix) == 0 })
}

func TestSubscribeWithDoneContext(t *testing.T) {
	t.Parallel()
	st := newStore(t, redisstore.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stop := st.Subscribe(ctx, func(string) { t.Error("callback of a subscription with a done context") })
	stop()
}
