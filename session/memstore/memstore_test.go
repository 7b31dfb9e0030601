package memstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/memstore"
	"github.com/tickgate/tickgate/session/sessiontest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	t.Parallel()
	sessiontest.Run(t, func(t *testing.T) session.Store {
		st, err := memstore.New(memstore.Config{SweepInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

func TestConformanceDefaultConfig(t *testing.T) {
	t.Parallel()
	sessiontest.Run(t, func(t *testing.T) session.Store {
		st, err := memstore.New(memstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

func TestNewRejectsNegativeSweep(t *testing.T) {
	t.Parallel()
	if _, err := memstore.New(memstore.Config{SweepInterval: -time.Second}); err == nil {
		t.Fatal("New accepted a negative SweepInterval")
	}
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestDeadlineBoundary(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	st, err := memstore.New(memstore.Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	key := sessiontest.Key(t)
	if err := st.Create(ctx, session.Record{Key: key, User: "alice"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute - time.Nanosecond)
	if _, err := st.Get(ctx, key); err != nil {
		t.Fatalf("Get just before the deadline: %v", err)
	}
	if err := st.Touch(ctx, key, clk.Now(), time.Minute); err != nil {
		t.Fatalf("Touch just before the deadline: %v", err)
	}
	clk.Add(time.Minute)
	if _, err := st.Get(ctx, key); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get at the touched deadline = %v, want ErrNotFound", err)
	}
}

func TestSweeperReclaimsMemory(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	st, err := memstore.New(memstore.Config{Now: clk.Now, SweepInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	keep, drop := sessiontest.Key(t), sessiontest.Key(t)
	if err := st.Create(ctx, session.Record{Key: keep}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, session.Record{Key: drop}, time.Minute); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute)
	deadline := time.Now().Add(15 * time.Second)
	for st.Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("Len = %d after sweeps, want 1", st.Len())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := st.Get(ctx, keep); err != nil {
		t.Fatalf("live record swept: %v", err)
	}
}

func TestClosedStore(t *testing.T) {
	t.Parallel()
	st, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := sessiontest.Key(t)
	if err := st.Create(ctx, session.Record{Key: key}, time.Hour); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := st.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	checks := map[string]error{
		"Create": st.Create(ctx, session.Record{Key: key}, time.Hour),
		"Touch":  st.Touch(ctx, key, time.Now(), time.Hour),
		"Delete": st.Delete(ctx, key),
		"Ping":   st.Ping(ctx),
	}
	_, checks["Get"] = st.Get(ctx, key)
	_, checks["GetMany"] = st.GetMany(ctx, []string{key})
	_, checks["DeleteUser"] = st.DeleteUser(ctx, "alice")
	for op, err := range checks {
		if !errors.Is(err, session.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", op, err)
		}
	}
}

// TestUserIndexFollowsRecords: the per-user index forgets keys when their
// records go, whichever way (Delete, a Touch that finds them expired, the
// sweeper, DeleteUser), so it does not grow with past sessions.
func TestUserIndexFollowsRecords(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	st, err := memstore.New(memstore.Config{Now: clk.Now, SweepInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	create := func(user string, ttl time.Duration) string {
		t.Helper()
		key := sessiontest.Key(t)
		if err := st.Create(ctx, session.Record{Key: key, User: user}, ttl); err != nil {
			t.Fatal(err)
		}
		return key
	}
	deleted, touched, swept := create("alice", time.Hour), create("bob", time.Minute), create("carol", time.Minute)
	live := create("dave", time.Hour)
	if got := st.IndexedUsers(); got != 4 {
		t.Fatalf("IndexedUsers = %d, want 4", got)
	}
	if err := st.Delete(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute)
	if err := st.Touch(ctx, touched, clk.Now(), time.Hour); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Touch of an expired record = %v, want ErrNotFound", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for st.Len() != 1 || st.IndexedUsers() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("after sweeps: Len = %d, IndexedUsers = %d; want 1 and 1", st.Len(), st.IndexedUsers())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := st.Get(ctx, swept); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get of a swept record = %v", err)
	}
	keys, err := st.DeleteUser(ctx, "dave")
	if err != nil || len(keys) != 1 || keys[0] != live {
		t.Fatalf("DeleteUser(dave) = %d keys, %v; want his one session", len(keys), err)
	}
	if st.Len() != 0 || st.IndexedUsers() != 0 {
		t.Fatalf("after DeleteUser: Len = %d, IndexedUsers = %d; want 0 and 0", st.Len(), st.IndexedUsers())
	}
}

// TestDeleteUserSkipsExpired: DeleteUser removes a user's expired records
// not yet swept but returns only the live ones (their connections are
// already being closed by the expiry).
func TestDeleteUserSkipsExpired(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	st, err := memstore.New(memstore.Config{Now: clk.Now, SweepInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	old, live := sessiontest.Key(t), sessiontest.Key(t)
	for key, ttl := range map[string]time.Duration{old: time.Minute, live: time.Hour} {
		if err := st.Create(ctx, session.Record{Key: key, User: "alice"}, ttl); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(time.Minute)
	keys, err := st.DeleteUser(ctx, "alice")
	if err != nil || len(keys) != 1 || keys[0] != live {
		t.Fatalf("DeleteUser = %d keys, %v; want the live one only", len(keys), err)
	}
	if st.Len() != 0 {
		t.Fatalf("Len = %d after DeleteUser, want 0", st.Len())
	}
}

func BenchmarkGet(b *testing.B) {
	st, err := memstore.New(memstore.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	key := sessiontest.Key(b)
	if err := st.Create(ctx, session.Record{Key: key, User: "alice"}, time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := st.Get(ctx, key); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
