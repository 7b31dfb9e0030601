// Package sessiontest is the conformance suite for session.Store
// implementations. Every backend runs it from its tests:
//
//	func TestConformance(t *testing.T) {
//		sessiontest.Run(t, func(t *testing.T) session.Store {
//			st, err := memstore.New(memstore.Config{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return st
//		})
//	}
//
// newStore is called once per subtest and may return stores that share
// data (one Redis database): the suite uses random keys and user names.
// Stores that implement session.MultiGetter or session.UserIndex are
// checked for those too. The suite closes
// every store it gets. Expiry is observed in real time with short TTLs and
// polling, never fixed sleeps, so it stays reliable on a loaded machine.
package sessiontest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tickgate/tickgate/session"
)

// patience bounds every wait for an expiry to show.
const patience = 15 * time.Second

// Run runs the conformance suite against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) session.Store) {
	t.Helper()
	open := func(t *testing.T) session.Store {
		t.Helper()
		st := newStore(t)
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, st session.Store)
	}{
		{"CreateGet", testCreateGet},
		{"GetMissing", testGetMissing},
		{"CreateExisting", testCreateExisting},
		{"CreateInvalid", testCreateInvalid},
		{"Touch", testTouch},
		{"TouchMissing", testTouchMissing},
		{"TouchInvalid", testTouchInvalid},
		{"Delete", testDelete},
		{"Expiry", testExpiry},
		{"TouchSetsTTL", testTouchSetsTTL},
		{"TouchAfterExpiry", testTouchAfterExpiry},
		{"CreateAfterExpiry", testCreateAfterExpiry},
		{"TimesRoundTrip", testTimesRoundTrip},
		{"KeysIndependent", testKeysIndependent},
		{"Concurrent", testConcurrent},
		{"GetMany", testGetMany},
		{"PingClose", testPingClose},
		{"DeleteUser", testDeleteUser},
		{"DeleteUserReusedKey", testDeleteUserReusedKey},
		{"Roles", testRoles},
		{"Values", testValues},
		{"ValueExpiry", testValueExpiry},
		{"TakeValueOnce", testTakeValueOnce},
		{"ValuesInvalid", testValuesInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// Key returns a random key shaped like the Manager's (64 hex digits).
func Key(t testing.TB) string {
	t.Helper()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// record returns a record for key with millisecond-precision times.
func record(key string) session.Record {
	now := time.Now().Truncate(time.Millisecond)
	return session.Record{
		Key:       key,
		User:      "alice@example.com",
		CreatedAt: now.Add(-time.Minute),
		LastSeen:  now.Add(-10 * time.Second),
		ExpiresAt: now.Add(12 * time.Hour),
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	t.Cleanup(cancel)
	return ctx
}

func create(t *testing.T, st session.Store, rec session.Record, ttl time.Duration) {
	t.Helper()
	if err := st.Create(ctxFor(t), rec, ttl); err != nil {
		t.Fatalf("Create: %v", err)
	}
}

func mustGet(t *testing.T, st session.Store, key string) session.Record {
	t.Helper()
	rec, err := st.Get(ctxFor(t), key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return rec
}

func wantNotFound(t *testing.T, st session.Store, key string) {
	t.Helper()
	if _, err := st.Get(ctxFor(t), key); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get = %v, want ErrNotFound", err)
	}
}

// eventuallyGone polls until key is no longer found.
func eventuallyGone(t *testing.T, st session.Store, key string) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		_, err := st.Get(ctxFor(t), key)
		if errors.Is(err, session.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("record still present %v after its TTL", patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func equalRecords(a, b session.Record) error {
	switch {
	case a.Key != b.Key:
		return errors.New("record: Key differs")
	case a.User != b.User:
		return fmt.Errorf("record: User = %q, want %q", a.User, b.User)
	case !slices.Equal(a.Roles, b.Roles):
		return fmt.Errorf("record: Roles = %q, want %q", a.Roles, b.Roles)
	case !a.CreatedAt.Equal(b.CreatedAt):
		return fmt.Errorf("record: CreatedAt = %v, want %v", a.CreatedAt, b.CreatedAt)
	case !a.LastSeen.Equal(b.LastSeen):
		return fmt.Errorf("record: LastSeen = %v, want %v", a.LastSeen, b.LastSeen)
	case !a.ExpiresAt.Equal(b.ExpiresAt):
		return fmt.Errorf("record: ExpiresAt = %v, want %v", a.ExpiresAt, b.ExpiresAt)
	}
	return nil
}

func testCreateGet(t *testing.T, st session.Store) {
	rec := record(Key(t))
	create(t, st, rec, time.Hour)
	if err := equalRecords(mustGet(t, st, rec.Key), rec); err != nil {
		t.Fatal(err)
	}
}

func testGetMissing(t *testing.T, st session.Store) {
	wantNotFound(t, st, Key(t))
}

func testCreateExisting(t *testing.T, st session.Store) {
	rec := record(Key(t))
	create(t, st, rec, time.Hour)
	other := rec
	other.User = "mallory"
	if err := st.Create(ctxFor(t), other, time.Hour); !errors.Is(err, session.ErrExists) {
		t.Fatalf("Create of an existing key = %v, want ErrExists", err)
	}
	if got := mustGet(t, st, rec.Key); got.User != rec.User {
		t.Fatalf("existing record overwritten: User = %q", got.User)
	}
}

func testCreateInvalid(t *testing.T, st session.Store) {
	tests := []struct {
		name string
		key  string
		ttl  time.Duration
	}{
		{"empty key", "", time.Hour},
		{"zero ttl", Key(t), 0},
		{"negative ttl", Key(t), -time.Second},
	}
	for _, tt := range tests {
		rec := record(tt.key)
		if err := st.Create(ctxFor(t), rec, tt.ttl); !errors.Is(err, session.ErrInvalidArgument) {
			t.Errorf("%s: Create = %v, want ErrInvalidArgument", tt.name, err)
		}
		if tt.key != "" {
			wantNotFound(t, st, tt.key)
		}
	}
}

func testTouch(t *testing.T, st session.Store) {
	rec := record(Key(t))
	create(t, st, rec, time.Hour)
	seen := rec.LastSeen.Add(5 * time.Second)
	if err := st.Touch(ctxFor(t), rec.Key, seen, time.Hour); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	want := rec
	want.LastSeen = seen
	if err := equalRecords(mustGet(t, st, rec.Key), want); err != nil {
		t.Fatalf("after Touch: %v", err)
	}
}

func testTouchMissing(t *testing.T, st session.Store) {
	key := Key(t)
	if err := st.Touch(ctxFor(t), key, time.Now(), time.Hour); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Touch of a missing key = %v, want ErrNotFound", err)
	}
	wantNotFound(t, st, key) // Touch must not create
}

func testTouchInvalid(t *testing.T, st session.Store) {
	rec := record(Key(t))
	create(t, st, rec, time.Hour)
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := st.Touch(ctxFor(t), rec.Key, time.Now(), ttl); !errors.Is(err, session.ErrInvalidArgument) {
			t.Errorf("Touch with ttl %v = %v, want ErrInvalidArgument", ttl, err)
		}
	}
	if err := st.Touch(ctxFor(t), "", time.Now(), time.Hour); !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("Touch with an empty key = %v, want ErrInvalidArgument", err)
	}
	if err := equalRecords(mustGet(t, st, rec.Key), rec); err != nil {
		t.Fatalf("a refused Touch changed the record: %v", err)
	}
}

func testDelete(t *testing.T, st session.Store) {
	rec := record(Key(t))
	create(t, st, rec, time.Hour)
	if err := st.Delete(ctxFor(t), rec.Key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, st, rec.Key)
	if err := st.Delete(ctxFor(t), rec.Key); err != nil {
		t.Fatalf("Delete of a deleted key: %v", err)
	}
	if err := st.Delete(ctxFor(t), Key(t)); err != nil {
		t.Fatalf("Delete of a never stored key: %v", err)
	}
	if err := st.Touch(ctxFor(t), rec.Key, time.Now(), time.Hour); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Touch after Delete = %v, want ErrNotFound", err)
	}
	wantNotFound(t, st, rec.Key)
}

func testExpiry(t *testing.T, st session.Store) {
	rec := record(Key(t))
	create(t, st, rec, 100*time.Millisecond)
	eventuallyGone(t, st, rec.Key)
}

func testTouchSetsTTL(t *testing.T, st session.Store) {
	rec := record(Key(t))
	create(t, st, rec, time.Hour)
	if err := st.Touch(ctxFor(t), rec.Key, time.Now(), 100*time.Millisecond); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	eventuallyGone(t, st, rec.Key)
}

func testTouchAfterExpiry(t *testing.T, st session.Store) {
	rec := record(Key(t))
	create(t, st, rec, 50*time.Millisecond)
	eventuallyGone(t, st, rec.Key)
	if err := st.Touch(ctxFor(t), rec.Key, time.Now(), time.Hour); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Touch after expiry = %v, want ErrNotFound", err)
	}
	wantNotFound(t, st, rec.Key)
}

func testCreateAfterExpiry(t *testing.T, st session.Store) {
	rec := record(Key(t))
	create(t, st, rec, 50*time.Millisecond)
	eventuallyGone(t, st, rec.Key)
	rec.User = "bob"
	create(t, st, rec, time.Hour)
	if got := mustGet(t, st, rec.Key); got.User != "bob" {
		t.Fatalf("User = %q, want bob", got.User)
	}
}

func testTimesRoundTrip(t *testing.T, st session.Store) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	base := time.Date(2031, 3, 9, 23, 59, 58, 123_000_000, zone)
	rec := session.Record{
		Key:       Key(t),
		User:      "Zed_1.x-y@example.org",
		CreatedAt: base,
		LastSeen:  base.Add(1500 * time.Millisecond),
		ExpiresAt: base.Add(12*time.Hour + 999*time.Millisecond),
	}
	create(t, st, rec, time.Hour)
	if err := equalRecords(mustGet(t, st, rec.Key), rec); err != nil {
		t.Fatal(err)
	}
	seen := time.Date(2031, 3, 10, 0, 0, 1, 7_000_000, time.UTC)
	if err := st.Touch(ctxFor(t), rec.Key, seen, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, st, rec.Key); !got.LastSeen.Equal(seen) {
		t.Fatalf("LastSeen = %v, want %v", got.LastSeen, seen)
	}
}

func testKeysIndependent(t *testing.T, st session.Store) {
	a, b := record(Key(t)), record(Key(t))
	b.User = "bob"
	create(t, st, a, time.Hour)
	create(t, st, b, time.Hour)
	if err := st.Delete(ctxFor(t), a.Key); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, st, a.Key)
	if err := equalRecords(mustGet(t, st, b.Key), b); err != nil {
		t.Fatalf("deleting one key changed another: %v", err)
	}
}

func testConcurrent(t *testing.T, st session.Store) {
	const workers, rounds = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			ctx := ctxFor(t)
			for range rounds {
				rec := record(Key(t))
				if err := st.Create(ctx, rec, time.Hour); err != nil {
					errs <- fmt.Errorf("create: %w", err)
					return
				}
				got, err := st.Get(ctx, rec.Key)
				if err == nil {
					err = equalRecords(got, rec)
				}
				if err != nil {
					errs <- fmt.Errorf("get: %w", err)
					return
				}
				if err := st.Touch(ctx, rec.Key, time.Now(), time.Hour); err != nil {
					errs <- fmt.Errorf("touch: %w", err)
					return
				}
				if err := st.Delete(ctx, rec.Key); err != nil {
					errs <- fmt.Errorf("delete: %w", err)
					return
				}
				if _, err := st.Get(ctx, rec.Key); !errors.Is(err, session.ErrNotFound) {
					errs <- fmt.Errorf("get after delete = %v, want ErrNotFound", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testGetMany(t *testing.T, st session.Store) {
	mg, ok := st.(session.MultiGetter)
	if !ok {
		t.Skip("store does not implement session.MultiGetter")
	}
	live, deleted, expired, never := record(Key(t)), record(Key(t)), record(Key(t)), Key(t)
	create(t, st, live, time.Hour)
	create(t, st, deleted, time.Hour)
	create(t, st, expired, 50*time.Millisecond)
	if err := st.Delete(ctxFor(t), deleted.Key); err != nil {
		t.Fatal(err)
	}
	eventuallyGone(t, st, expired.Key)
	got, err := mg.GetMany(ctxFor(t), []string{live.Key, deleted.Key, expired.Key, never})
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("GetMany returned %d records, want 1 (the live one)", len(got))
	}
	if err := equalRecords(got[live.Key], live); err != nil {
		t.Fatal(err)
	}
	if got, err := mg.GetMany(ctxFor(t), nil); err != nil || len(got) != 0 {
		t.Fatalf("GetMany(nil) = %d records, %v; want none, nil", len(got), err)
	}
}

func testPingClose(t *testing.T, st session.Store) {
	if err := st.Ping(ctxFor(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_ = st.Close() // safe twice; its error, if any, is not checked
	if err := st.Ping(ctxFor(t)); !errors.Is(err, session.ErrClosed) {
		t.Fatalf("Ping after Close = %v, want ErrClosed", err)
	}
}

// userIndex returns st's session.UserIndex or skips the test.
func userIndex(t *testing.T, st session.Store) session.UserIndex {
	t.Helper()
	idx, ok := st.(session.UserIndex)
	if !ok {
		t.Skip("store does not implement session.UserIndex")
	}
	return idx
}

// userName returns a random user name, so that stores sharing data do not
// share users.
func userName(t *testing.T, base string) string {
	return base + "-" + Key(t)[:12] + "@example.com"
}

func recordOf(key, user string) session.Record {
	rec := record(key)
	rec.User = user
	return rec
}

func deleteUser(t *testing.T, idx session.UserIndex, user string) []string {
	t.Helper()
	keys, err := idx.DeleteUser(ctxFor(t), user)
	if err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	slices.Sort(keys)
	return keys
}

func sorted(keys ...string) []string {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	return keys
}

func testDeleteUser(t *testing.T, st session.Store) {
	idx := userIndex(t, st)
	alice, bob := userName(t, "alice"), userName(t, "bob")
	a1, a2, deleted, expired := recordOf(Key(t), alice), recordOf(Key(t), alice), recordOf(Key(t), alice), recordOf(Key(t), alice)
	b1 := recordOf(Key(t), bob)
	for _, rec := range []session.Record{a1, a2, deleted, b1} {
		create(t, st, rec, time.Hour)
	}
	create(t, st, expired, 50*time.Millisecond)
	if err := st.Delete(ctxFor(t), deleted.Key); err != nil {
		t.Fatal(err)
	}
	if err := st.Touch(ctxFor(t), a2.Key, time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	eventuallyGone(t, st, expired.Key)

	// Only alice's live sessions are deleted, and returned.
	if got, want := deleteUser(t, idx, alice), sorted(a1.Key, a2.Key); !slices.Equal(got, want) {
		t.Fatalf("DeleteUser returned %d keys, want alice's 2 live sessions", len(got))
	}
	wantNotFound(t, st, a1.Key)
	wantNotFound(t, st, a2.Key)
	if err := equalRecords(mustGet(t, st, b1.Key), b1); err != nil {
		t.Fatalf("another user's session: %v", err)
	}
	if got := deleteUser(t, idx, alice); len(got) != 0 {
		t.Fatalf("second DeleteUser returned %d keys, want none", len(got))
	}
	if got := deleteUser(t, idx, userName(t, "nobody")); len(got) != 0 {
		t.Fatalf("DeleteUser of a user without sessions returned %d keys", len(got))
	}
	// The index keeps working for sessions created afterwards.
	a3 := recordOf(Key(t), alice)
	create(t, st, a3, time.Hour)
	if got := deleteUser(t, idx, alice); !slices.Equal(got, []string{a3.Key}) {
		t.Fatalf("DeleteUser after a new login returned %d keys, want 1", len(got))
	}
	wantNotFound(t, st, a3.Key)
	if got := deleteUser(t, idx, bob); !slices.Equal(got, []string{b1.Key}) {
		t.Fatalf("DeleteUser(bob) returned %d keys, want 1", len(got))
	}

	if _, err := idx.DeleteUser(ctxFor(t), ""); !errors.Is(err, session.ErrInvalidArgument) {
		t.Fatalf("DeleteUser(\"\") = %v, want ErrInvalidArgument", err)
	}
}

// testDeleteUserReusedKey: a key that expired for one user and was created
// again for another belongs to the other; DeleteUser of the first must
// leave it alone.
func testDeleteUserReusedKey(t *testing.T, st session.Store) {
	idx := userIndex(t, st)
	alice, bob := userName(t, "alice"), userName(t, "bob")
	key := Key(t)
	create(t, st, recordOf(key, alice), 50*time.Millisecond)
	eventuallyGone(t, st, key)
	bobs := recordOf(key, bob)
	create(t, st, bobs, time.Hour)
	if got := deleteUser(t, idx, alice); len(got) != 0 {
		t.Fatalf("DeleteUser(alice) returned %d keys; the only one is bob's now", len(got))
	}
	if err := equalRecords(mustGet(t, st, key), bobs); err != nil {
		t.Fatalf("bob's session after DeleteUser(alice): %v", err)
	}
	if got := deleteUser(t, idx, bob); !slices.Equal(got, []string{key}) {
		t.Fatalf("DeleteUser(bob) returned %d keys, want 1", len(got))
	}
}
