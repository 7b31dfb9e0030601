package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/redisstore"
	"github.com/tickgate/tickgate/session/sessiontest"
)

// opTimeout is the OpTimeout of the outage tests, and slack what a loaded
// machine may add to it: the point is "fails fast, never hangs", not a
// latency figure.
const (
	opTimeout = 300 * time.Millisecond
	slack     = 5 * time.Second
)

// everyOp runs each store operation once on key and returns its error.
func everyOp(st *redisstore.Store, key string) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"Create": func(ctx context.Context) error { return st.Create(ctx, record(key, "alice"), time.Hour) },
		"Get": func(ctx context.Context) error {
			_, err := st.Get(ctx, key)
			return err
		},
		"GetMany": func(ctx context.Context) error {
			_, err := st.GetMany(ctx, []string{key})
			return err
		},
		"Touch":   func(ctx context.Context) error { return st.Touch(ctx, key, time.Now(), time.Hour) },
		"Delete":  func(ctx context.Context) error { return st.Delete(ctx, key) },
		"Ping":    func(ctx context.Context) error { return st.Ping(ctx) },
		"Publish": func(ctx context.Context) error { return st.Publish(ctx, key) },
		"UserKeys": func(ctx context.Context) error {
			_, err := st.UserKeys(ctx, "alice")
			return err
		},
		"DeleteUser": func(ctx context.Context) error {
			_, err := st.DeleteUser(ctx, "alice")
			return err
		},
	}
}

// checkOutage runs every operation against a store that cannot reach
// Redis: each must fail (not answer "not found"), within OpTimeout plus
// slack, with an error text free of the key.
func checkOutage(t *testing.T, st *redisstore.Store) {
	t.Helper()
	key := sessiontest.Key(t)
	for op, fn := range everyOp(st, key) {
		start := time.Now()
		err := fn(context.Background()) // only OpTimeout bounds it
		took := time.Since(start)
		if !isStoreFailure(err) {
			t.Errorf("%s during an outage = %v, want a store failure", op, err)
		}
		if took > opTimeout+slack {
			t.Errorf("%s took %v during an outage, want about OpTimeout (%v)", op, took, opTimeout)
		}
		checkErrText(t, op, err, key)
	}
	start := time.Now()
	stop := st.Subscribe(context.Background(), func(string) {})
	if took := time.Since(start); took > opTimeout+slack {
		t.Errorf("Subscribe took %v during an outage", took)
	}
	stop()
}

// TestOutageClosedPort: nothing listens (connection refused).
func TestOutageClosedPort(t *testing.T) {
	t.Parallel()
	st, err := redisstore.New(redisstore.Config{URL: "redis://127.0.0.1:1/0", OpTimeout: opTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkOutage(t, st)
}

// TestOutageStalledServer: the server accepts connections and never
// answers, the case where only a deadline helps.
func TestOutageStalledServer(t *testing.T) {
	t.Parallel()
	st, err := redisstore.New(redisstore.Config{URL: "redis://" + stalledServer(t) + "/0", OpTimeout: opTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkOutage(t, st)
}

// TestCallerDeadlineShortensOpTimeout: a request's own deadline wins over
// a longer OpTimeout.
func TestCallerDeadlineShortensOpTimeout(t *testing.T) {
	t.Parallel()
	st, err := redisstore.New(redisstore.Config{URL: "redis://" + stalledServer(t) + "/0", OpTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	start := time.Now()
	_, err = st.Get(ctx, sessiontest.Key(t))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get past the caller's deadline = %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > opTimeout+slack {
		t.Errorf("Get took %v with a %v caller deadline", took, opTimeout)
	}
}

// TestRecoveryAfterOutage: Redis goes away mid-test and comes back with its
// data; the store fails meanwhile (never "not found", so the Manager does
// not clear cookies) and recovers by itself, subscriptions included.
func TestRecoveryAfterOutage(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	p := startProxy(t)
	st := newStore(t, redisstore.Config{URL: urlWithHost(t, p.addr()), Prefix: prefix, OpTimeout: opTimeout + slack})
	publisher := newStore(t, redisstore.Config{Prefix: prefix}) // direct, unaffected
	ctx := ctxFor(t)

	rec := record(sessiontest.Key(t), "alice")
	mustCreate(t, st, rec, time.Hour)
	got := make(chan string, 100)
	stop := st.Subscribe(ctx, func(key string) { got <- key })
	defer stop()

	p.cut()
	if _, err := st.Get(ctx, rec.Key); !isStoreFailure(err) {
		t.Fatalf("Get while Redis is away = %v, want a store failure", err)
	}
	if err := st.Touch(ctx, rec.Key, time.Now(), time.Hour); !isStoreFailure(err) {
		t.Fatalf("Touch while Redis is away = %v, want a store failure", err)
	}
	if err := st.Ping(ctx); !isStoreFailure(err) {
		t.Fatalf("Ping while Redis is away = %v, want a store failure", err)
	}

	p.restore()
	eventually(t, "Get works again", func() bool {
		got, err := st.Get(ctx, rec.Key)
		return err == nil && got.User == "alice"
	})
	if err := st.Touch(ctx, rec.Key, time.Now(), time.Hour); err != nil {
		t.Fatalf("Touch after recovery: %v", err)
	}

	// The subscription reconnects (go-redis health-checks it every few
	// seconds); events published after that arrive again.
	want := sessiontest.Key(t)
	eventually(t, "revocation events arrive again", func() bool {
		if err := publisher.Publish(ctx, want); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		select {
		case k := <-got:
			return k == want
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
}

// TestExpiredContext: a caller whose context is already done gets its
// error at once, not ErrNotFound.
func TestExpiredContext(t *testing.T) {
	t.Parallel()
	st := newStore(t, redisstore.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	key := sessiontest.Key(t)
	for op, fn := range everyOp(st, key) {
		if err := fn(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want context.Canceled", op, err)
		}
	}
	if _, err := st.Get(ctxFor(t), key); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get = %v, want ErrNotFound (nothing was created)", err)
	}
}

// TestServerErrorRepliesAreFailures: a Redis that is loading its data (or
// read-only, out of memory...) answers with an error reply. Those concern
// the server, not a key: Get and GetMany must fail rather than report the
// sessions absent, which would end every watched session during a
// restart.
func TestServerErrorRepliesAreFailures(t *testing.T) {
	t.Parallel()
	for _, reply := range []string{
		"-LOADING Redis is loading the dataset in memory\r\n",
		"-READONLY You can't write against a read only replica.\r\n",
		"-OOM command not allowed when used memory > 'maxmemory'.\r\n",
	} {
		st, err := redisstore.New(redisstore.Config{URL: "redis://" + fakeRedis(t, reply) + "/0", OpTimeout: opTimeout})
		if err != nil {
			t.Fatal(err)
		}
		key := sessiontest.Key(t)
		for op, fn := range everyOp(st, key) {
			if err := fn(context.Background()); !isStoreFailure(err) {
				t.Errorf("%q: %s = %v, want a store failure", reply[:9], op, err)
			}
		}
		_ = st.Close()
	}
}
