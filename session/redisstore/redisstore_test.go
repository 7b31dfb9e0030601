package redisstore_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/redisstore"
	"github.com/tickgate/tickgate/session/sessiontest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t) // shared by the subtests: the suite uses random keys
	url := redisURL(t)
	sessiontest.Run(t, func(t *testing.T) session.Store {
		st, err := redisstore.New(redisstore.Config{URL: url, Prefix: prefix, OpTimeout: patience})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

// TestConformanceSharedClient runs the suite on stores sharing one client
// they did not make: closing a store must leave the client usable.
func TestConformanceSharedClient(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	client := adminClient(t)
	t.Cleanup(func() { // runs after the suite's subtests, before the client closes
		if err := client.Ping(ctxFor(t)).Err(); err != nil {
			t.Errorf("shared client unusable after its stores closed: %v", err)
		}
	})
	sessiontest.Run(t, func(t *testing.T) session.Store {
		st, err := redisstore.New(redisstore.Config{Client: client, Prefix: prefix, OpTimeout: patience})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	const password = "hunter2-secret"
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	tests := []struct {
		name string
		cfg  redisstore.Config
	}{
		{"nothing", redisstore.Config{}},
		{"URL and Client", redisstore.Config{URL: "redis://127.0.0.1:6379/0", Client: client}},
		{"negative OpTimeout", redisstore.Config{URL: "redis://127.0.0.1:6379/0", OpTimeout: -time.Second}},
		{"http scheme", redisstore.Config{URL: "http://127.0.0.1:6379/0"}},
		{"no scheme", redisstore.Config{URL: "127.0.0.1:6379"}},
		{"unix scheme", redisstore.Config{URL: "unix:///tmp/redis.sock"}},
		{"bad port", redisstore.Config{URL: "redis://:" + password + "@127.0.0.1:port/0"}},
		{"control character", redisstore.Config{URL: "redis://:" + password + "@127.0.0.1:6379/0\n"}},
		{"bad database", redisstore.Config{URL: "redis://:" + password + "@127.0.0.1:6379/db"}},
		{"unknown option", redisstore.Config{URL: "redis://:" + password + "@127.0.0.1:6379/0?frobnicate=1"}},
		{"bad option value", redisstore.Config{URL: "redis://:" + password + "@127.0.0.1:6379/0?dial_timeout=soon"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := redisstore.New(tt.cfg)
			if err == nil {
				_ = st.Close()
				t.Fatal("New accepted the config")
			}
			if !errors.Is(err, redisstore.ErrInvalidConfig) {
				t.Errorf("error %q does not wrap ErrInvalidConfig", err)
			}
			checkErrText(t, "New", err, password)
		})
	}
}

func TestNewDoesNotNeedRedis(t *testing.T) {
	t.Parallel()
	st, err := redisstore.New(redisstore.Config{URL: "rediss://user:pw@127.0.0.1:1/3?dial_timeout=1s"})
	if err != nil {
		t.Fatalf("New with an unreachable server: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// TestRedisLayout checks what lands in Redis: a hash under prefix+key with
// the ttl as its PTTL, a per-user index whose TTL covers ExpiresAt, and
// Touch resetting the PTTL.
func TestRedisLayout(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	st := newStore(t, redisstore.Config{Prefix: prefix})
	admin := adminClient(t)
	ctx := ctxFor(t)

	rec := record(sessiontest.Key(t), "alice")
	mustCreate(t, st, rec, 90*time.Second)

	h, err := admin.HGetAll(ctx, prefix+rec.Key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(h), 4; got != want {
		t.Errorf("record hash has %d fields (%v), want %d", got, h, want)
	}
	if got, want := h["u"], "alice"; got != want {
		t.Errorf("field u = %q, want %q", got, want)
	}
	pttl, err := admin.PTTL(ctx, prefix+rec.Key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if pttl <= 30*time.Second || pttl > 90*time.Second {
		t.Errorf("record PTTL = %v after Create with 90s, want (30s, 90s]", pttl)
	}

	score, err := admin.ZScore(ctx, prefix+"user:alice", rec.Key).Result()
	if err != nil {
		t.Fatalf("index entry: %v", err)
	}
	if got, want := int64(score), rec.ExpiresAt.UnixMilli(); got != want {
		t.Errorf("index score = %d, want ExpiresAt %d", got, want)
	}
	ipttl, err := admin.PTTL(ctx, prefix+"user:alice").Result()
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(rec.ExpiresAt); ipttl < left-time.Minute || ipttl > left+time.Minute {
		t.Errorf("index PTTL = %v, want about %v (until ExpiresAt)", ipttl, left)
	}

	if err := st.Touch(ctx, rec.Key, time.Now(), 45*time.Second); err != nil {
		t.Fatal(err)
	}
	pttl, err = admin.PTTL(ctx, prefix+rec.Key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if pttl <= 15*time.Second || pttl > 45*time.Second {
		t.Errorf("record PTTL = %v after Touch with 45s, want (15s, 45s]", pttl)
	}
	if err := st.Touch(ctx, rec.Key, time.Now(), 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if pttl, err = admin.PTTL(ctx, prefix+rec.Key).Result(); err != nil || pttl <= time.Hour {
		t.Errorf("record PTTL = %v, %v after Touch with 2h, want over 1h", pttl, err)
	}
}

// TestSubMillisecondTTL: a ttl below a millisecond is rounded up, not
// refused by Redis nor turned into "no expiry".
func TestSubMillisecondTTL(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	st := newStore(t, redisstore.Config{Prefix: prefix})
	admin := adminClient(t)
	rec := record(sessiontest.Key(t), "alice")
	mustCreate(t, st, rec, 300*time.Microsecond)
	pttl, err := admin.PTTL(ctxFor(t), prefix+rec.Key).Result()
	if err != nil {
		t.Fatal(err)
	}
	// -2ns: already gone; otherwise at most the rounded-up 1ms.
	if pttl != -2*time.Nanosecond && (pttl < 0 || pttl > time.Millisecond) {
		t.Errorf("PTTL = %v, want gone or at most 1ms", pttl)
	}
}

func TestTouchMissingCreatesNothing(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	st := newStore(t, redisstore.Config{Prefix: prefix})
	admin := adminClient(t)
	ctx := ctxFor(t)
	key := sessiontest.Key(t)
	if err := st.Touch(ctx, key, time.Now(), time.Hour); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Touch of a missing key = %v, want ErrNotFound", err)
	}
	n, err := admin.Exists(ctx, prefix+key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("Touch of a missing key created it")
	}
	keys, err := admin.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("Touch of a missing key left %d keys behind", len(keys))
	}
}

func TestKeysWithColonAreRefused(t *testing.T) {
	t.Parallel()
	st := newStore(t, redisstore.Config{})
	ctx := ctxFor(t)
	key := "user:alice" // would collide with alice's index
	if err := st.Create(ctx, record(key, "mallory"), time.Hour); !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("Create = %v, want ErrInvalidArgument", err)
	}
	if err := st.Touch(ctx, key, time.Now(), time.Hour); !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("Touch = %v, want ErrInvalidArgument", err)
	}
	if err := st.Publish(ctx, key); !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("Publish = %v, want ErrInvalidArgument", err)
	}
	if _, err := st.Get(ctx, key); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get = %v, want ErrNotFound", err)
	}
	if err := st.Delete(ctx, key); err != nil {
		t.Errorf("Delete = %v, want nil", err)
	}
	if got, err := st.GetMany(ctx, []string{key, ""}); err != nil || len(got) != 0 {
		t.Errorf("GetMany = %v, %v; want nothing, nil", got, err)
	}
}

// TestForeignValues: keys holding something this package did not write
// (a string, a hash with a missing or garbled field) are errors for Get,
// left out by GetMany, never overwritten by Create nor Touch, and no
// error text names the key.
func TestForeignValues(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	st := newStore(t, redisstore.Config{Prefix: prefix})
	admin := adminClient(t)
	ctx := ctxFor(t)

	str, partial, garbled := sessiontest.Key(t), sessiontest.Key(t), sessiontest.Key(t)
	if err := admin.Set(ctx, prefix+str, "not a record", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.HSet(ctx, prefix+partial, "u", "alice", "c", "1", "l", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.HSet(ctx, prefix+garbled, "u", "alice", "c", "1", "l", "yesterday", "e", "2").Err(); err != nil {
		t.Fatal(err)
	}
	good := record(sessiontest.Key(t), "bob")
	mustCreate(t, st, good, time.Hour)

	for _, key := range []string{str, partial, garbled} {
		_, err := st.Get(ctx, key)
		if !isStoreFailure(err) {
			t.Errorf("Get of a foreign value = %v, want an error", err)
		}
		checkErrText(t, "Get", err, key)
		err = st.Create(ctx, record(key, "mallory"), time.Hour)
		if !errors.Is(err, session.ErrExists) {
			t.Errorf("Create over a foreign value = %v, want ErrExists", err)
		}
		checkErrText(t, "Create", err, key)
	}
	for _, key := range []string{partial, garbled} {
		if _, err := st.Get(ctx, key); !errors.Is(err, redisstore.ErrMalformedRecord) {
			t.Errorf("Get of a malformed hash = %v, want ErrMalformedRecord", err)
		}
	}
	err := st.Touch(ctx, str, time.Now(), time.Hour)
	if !isStoreFailure(err) {
		t.Errorf("Touch of a string = %v, want an error", err)
	}
	checkErrText(t, "Touch", err, str)
	if v, err := admin.Get(ctx, prefix+str).Result(); err != nil || v != "not a record" {
		t.Errorf("foreign string changed to %q, %v", v, err)
	}
	err = st.Delete(ctx, str)
	checkErrText(t, "Delete", err, str)

	got, err := st.GetMany(ctx, []string{str, partial, garbled, good.Key})
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	if len(got) != 1 || got[good.Key].User != "bob" {
		t.Errorf("GetMany = %v, want only the good record", got)
	}
}

func TestTimesKeepNanoseconds(t *testing.T) {
	t.Parallel()
	st := newStore(t, redisstore.Config{})
	ctx := ctxFor(t)
	base := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)
	rec := session.Record{
		Key:       sessiontest.Key(t),
		User:      "alice",
		CreatedAt: time.Time{}, // the zero time (year 1) round-trips too
		LastSeen:  base,
		ExpiresAt: base.Add(time.Nanosecond),
	}
	mustCreate(t, st, rec, time.Hour)
	got, err := st.Get(ctx, rec.Key)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(rec.CreatedAt) || !got.LastSeen.Equal(rec.LastSeen) || !got.ExpiresAt.Equal(rec.ExpiresAt) {
		t.Errorf("times = %v %v %v, want %v %v %v", got.CreatedAt, got.LastSeen, got.ExpiresAt,
			rec.CreatedAt, rec.LastSeen, rec.ExpiresAt)
	}
	seen := base.Add(999 * time.Nanosecond)
	if err := st.Touch(ctx, rec.Key, seen, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get(ctx, rec.Key); err != nil || !got.LastSeen.Equal(seen) {
		t.Errorf("LastSeen = %v, %v; want %v", got.LastSeen, err, seen)
	}
}

func TestGetManyBatches(t *testing.T) {
	t.Parallel()
	st := newStore(t, redisstore.Config{})
	ctx := ctxFor(t)
	const n = 600 // more than one pipeline batch
	keys := make([]string, 0, n+1)
	for range n {
		rec := record(sessiontest.Key(t), "alice")
		mustCreate(t, st, rec, time.Hour)
		keys = append(keys, rec.Key)
	}
	keys = append(keys, sessiontest.Key(t)) // never stored
	got, err := st.GetMany(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("GetMany returned %d records, want %d", len(got), n)
	}
	for _, k := range keys[:n] {
		if got[k].Key != k {
			t.Fatalf("GetMany lost a record")
		}
	}
}

func TestClosedStore(t *testing.T) {
	t.Parallel()
	st := newStore(t, redisstore.Config{})
	ctx := ctxFor(t)
	key := sessiontest.Key(t)
	mustCreate(t, st, record(key, "alice"), time.Hour)
	for range 2 {
		if err := st.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	checks := map[string]error{
		"Create":  st.Create(ctx, record(sessiontest.Key(t), "alice"), time.Hour),
		"Touch":   st.Touch(ctx, key, time.Now(), time.Hour),
		"Delete":  st.Delete(ctx, key),
		"Ping":    st.Ping(ctx),
		"Publish": st.Publish(ctx, key),
	}
	_, checks["Get"] = st.Get(ctx, key)
	_, checks["GetMany"] = st.GetMany(ctx, []string{key})
	_, checks["UserKeys"] = st.UserKeys(ctx, "alice")
	_, checks["DeleteUser"] = st.DeleteUser(ctx, "alice")
	for op, err := range checks {
		if !errors.Is(err, session.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", op, err)
		}
		checkErrText(t, op, err, key)
	}
	stop := st.Subscribe(ctx, func(string) { t.Error("callback of a subscription made after Close") })
	stop()
	stop()
}

func TestCloseLeavesProvidedClientOpen(t *testing.T) {
	t.Parallel()
	client := adminClient(t)
	st := newStore(t, redisstore.Config{Client: client})
	if err := st.Ping(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(ctxFor(t)).Err(); err != nil {
		t.Fatalf("client closed by the Store: %v", err)
	}
}

// TestClientClosedUnderneath: a provided client closed by its owner makes
// the Store answer ErrClosed, not some other failure.
func TestClientClosedUnderneath(t *testing.T) {
	t.Parallel()
	opts, err := redis.ParseURL(redisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	st := newStore(t, redisstore.Config{Client: client})
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	key := sessiontest.Key(t)
	if _, err := st.Get(ctxFor(t), key); !errors.Is(err, session.ErrClosed) {
		t.Errorf("Get = %v, want ErrClosed", err)
	}
	if err := st.Ping(ctxFor(t)); !errors.Is(err, session.ErrClosed) {
		t.Errorf("Ping = %v, want ErrClosed", err)
	}
	if err := st.Create(ctxFor(t), record(key, "alice"), time.Hour); !errors.Is(err, session.ErrClosed) {
		t.Errorf("Create = %v, want ErrClosed", err)
	}
}

func TestErrorTextsNeverContainKeys(t *testing.T) {
	t.Parallel()
	st := newStore(t, redisstore.Config{OpTimeout: time.Nanosecond}) // every call times out
	ctx := ctxFor(t)
	key := sessiontest.Key(t)
	errs := map[string]error{
		"Create":  st.Create(ctx, record(key, "alice"), time.Hour),
		"Touch":   st.Touch(ctx, key, time.Now(), time.Hour),
		"Delete":  st.Delete(ctx, key),
		"Publish": st.Publish(ctx, key),
	}
	_, errs["Get"] = st.Get(ctx, key)
	_, errs["GetMany"] = st.GetMany(ctx, []string{key})
	for op, err := range errs {
		if !isStoreFailure(err) {
			t.Errorf("%s with a 1ns OpTimeout = %v, want a failure", op, err)
		}
		if !strings.HasPrefix(err.Error(), "redisstore: ") {
			t.Errorf("%s error %q does not name the package", op, err)
		}
		checkErrText(t, op, err, key)
	}
}

func TestWarnsWhenClientIgnoresDeadlines(t *testing.T) {
	t.Parallel()
	for _, honours := range []bool{false, true} {
		var buf bytes.Buffer
		client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: honours})
		st, err := redisstore.New(redisstore.Config{Client: client, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
		if err != nil {
			t.Fatal(err)
		}
		_ = st.Close()
		_ = client.Close()
		if got, want := strings.Contains(buf.String(), "ContextTimeoutEnabled"), !honours; got != want {
			t.Errorf("ContextTimeoutEnabled=%v: warning logged = %v, want %v (log: %q)", honours, got, want, buf.String())
		}
	}
}
