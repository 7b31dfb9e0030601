package redisstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/tickgate/tickgate/session/redisstore"
	"github.com/tickgate/tickgate/session/sessiontest"
)

// The benchmarks run against the Redis in TICKGATE_TEST_REDIS_URL, so
// they measure a round trip on loopback plus the Store's own work.

func benchStore(b *testing.B) *redisstore.Store {
	b.Helper()
	return newStore(b, redisstore.Config{OpTimeout: redisstore.DefaultOpTimeout})
}

// BenchmarkGet is the per-request session lookup (one HMGET).
func BenchmarkGet(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	rec := record(sessiontest.Key(b), "alice")
	mustCreate(b, st, rec, time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Get(ctx, rec.Key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetParallel is the lookup under concurrent requests.
func BenchmarkGetParallel(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	rec := record(sessiontest.Key(b), "alice")
	mustCreate(b, st, rec, time.Hour)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := st.Get(ctx, rec.Key); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkTouch is the throttled activity write (EVALSHA).
func BenchmarkTouch(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	rec := record(sessiontest.Key(b), "alice")
	mustCreate(b, st, rec, time.Hour)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := st.Touch(ctx, rec.Key, now, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreate is a login's store work: index update plus record.
func BenchmarkCreate(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	base := sessiontest.Key(b)
	users := make([]string, 100)
	for i := range users {
		users[i] = "user" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rec := record(base+strconv.Itoa(i), users[i%len(users)])
		if err := st.Create(ctx, rec, time.Minute); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkGetMany100 is one periodic check of 100 watched sessions.
func BenchmarkGetMany100(b *testing.B) {
	st := benchStore(b)
	ctx := context.Background()
	keys := make([]string, 100)
	for i := range keys {
		rec := record(sessiontest.Key(b), "alice")
		mustCreate(b, st, rec, time.Hour)
		keys[i] = rec.Key
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := st.GetMany(ctx, keys)
		if err != nil || len(got) != len(keys) {
			b.Fatalf("GetMany = %d records, %v", len(got), err)
		}
	}
}
