package redisstore_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/redisstore"
	"github.com/tickgate/tickgate/session/sessiontest"
)

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestUserIndex(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	st := newStore(t, redisstore.Config{Prefix: prefix})
	admin := adminClient(t)
	ctx := ctxFor(t)

	var alice []string
	for range 3 {
		rec := record(sessiontest.Key(t), "alice")
		mustCreate(t, st, rec, time.Hour)
		alice = append(alice, rec.Key)
	}
	bob := record(sessiontest.Key(t), "bob")
	mustCreate(t, st, bob, time.Hour)

	got, err := st.UserKeys(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sorted(got), sorted(alice)) {
		t.Fatalf("UserKeys(alice) = %v, want %v", got, alice)
	}

	// Delete removes the session from the index too.
	if err := st.Delete(ctx, alice[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ZScore(ctx, prefix+"user:alice", alice[0]).Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("deleted session still in the index: %v", err)
	}
	if got, err := st.UserKeys(ctx, "alice"); err != nil || !slices.Equal(sorted(got), sorted(alice[1:])) {
		t.Fatalf("UserKeys after Delete = %v, %v; want %v", got, err, alice[1:])
	}

	deleted, err := st.DeleteUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sorted(deleted), sorted(alice[1:])) {
		t.Fatalf("DeleteUser = %v, want %v", deleted, alice[1:])
	}
	for _, k := range alice {
		if _, err := st.Get(ctx, k); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Get after DeleteUser = %v, want ErrNotFound", err)
		}
	}
	if n, err := admin.Exists(ctx, prefix+"user:alice").Result(); err != nil || n != 0 {
		t.Errorf("alice's index still exists (%d, %v)", n, err)
	}
	if got, err := st.Get(ctx, bob.Key); err != nil || got.User != "bob" {
		t.Errorf("bob's session = %v, %v after DeleteUser(alice)", got, err)
	}
	if got, err := st.UserKeys(ctx, "alice"); err != nil || len(got) != 0 {
		t.Errorf("UserKeys after DeleteUser = %v, %v; want none", got, err)
	}
	if deleted, err := st.DeleteUser(ctx, "alice"); err != nil || len(deleted) != 0 {
		t.Errorf("second DeleteUser = %v, %v; want none", deleted, err)
	}
	if deleted, err := st.DeleteUser(ctx, "nobody"); err != nil || len(deleted) != 0 {
		t.Errorf("DeleteUser of an unknown user = %v, %v; want none", deleted, err)
	}
}

// TestUserIndexStaleEntries: entries whose record belongs to someone else,
// is not a record or has an unusable key are never acted on and are
// dropped by UserKeys and DeleteUser; entries whose record is absent are
// skipped but kept, as a Create may be about to write the record.
func TestUserIndexStaleEntries(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	st := newStore(t, redisstore.Config{Prefix: prefix})
	admin := adminClient(t)
	ctx := ctxFor(t)

	mine := record(sessiontest.Key(t), "alice")
	mustCreate(t, st, mine, time.Hour)
	bobs := record(sessiontest.Key(t), "bob")
	mustCreate(t, st, bobs, time.Hour)
	absent, foreign := sessiontest.Key(t), sessiontest.Key(t)
	if err := admin.Set(ctx, prefix+foreign, "x", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	index := prefix + "user:alice"
	future := float64(time.Now().Add(time.Hour).UnixMilli())
	addEntries := func(keys ...string) {
		t.Helper()
		for _, k := range keys {
			if err := admin.ZAdd(ctx, index, redis.Z{Score: future, Member: k}).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantIndex := func(when string, want ...string) {
		t.Helper()
		members, err := admin.ZRange(ctx, index, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(sorted(members), sorted(want)) {
			t.Errorf("index %s = %v, want %v", when, members, want)
		}
	}
	addEntries(bobs.Key, absent, foreign, "bad:key")

	got, err := st.UserKeys(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{mine.Key}) {
		t.Fatalf("UserKeys = %v, want only alice's session", got)
	}
	wantIndex("after UserKeys", mine.Key, absent)

	addEntries(bobs.Key, foreign, "bad:key")
	deleted, err := st.DeleteUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(deleted, []string{mine.Key}) {
		t.Errorf("DeleteUser = %v, want only alice's session", deleted)
	}
	wantIndex("after DeleteUser", absent)
	if got, err := st.Get(ctx, bobs.Key); err != nil || got.User != "bob" {
		t.Errorf("bob's session after DeleteUser(alice) = %v, %v", got, err)
	}
	if v, err := admin.Get(ctx, prefix+foreign).Result(); err != nil || v != "x" {
		t.Errorf("foreign key after DeleteUser = %q, %v", v, err)
	}
}

// TestDeleteUserDuringCreate: a DeleteUser that runs between Create's
// index update and its record write leaves the entry, so the next
// DeleteUser still finds the session.
func TestDeleteUserDuringCreate(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	st := newStore(t, redisstore.Config{Prefix: prefix})
	admin := adminClient(t)
	ctx := ctxFor(t)

	rec := record(sessiontest.Key(t), "alice")
	// Create's first step, done by hand: the index entry, no record yet.
	score := float64(rec.ExpiresAt.UnixMilli())
	if err := admin.ZAdd(ctx, prefix+"user:alice", redis.Z{Score: score, Member: rec.Key}).Err(); err != nil {
		t.Fatal(err)
	}
	if deleted, err := st.DeleteUser(ctx, "alice"); err != nil || len(deleted) != 0 {
		t.Fatalf("DeleteUser before the record exists = %v, %v; want none", deleted, err)
	}
	mustCreate(t, st, rec, time.Hour) // Create completes
	deleted, err := st.DeleteUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(deleted, []string{rec.Key}) {
		t.Fatalf("next DeleteUser = %v, want the new session", deleted)
	}
}

// TestUserIndexPrunesExpired: a Create drops entries whose records can no
// longer exist, so the index of a user who logs in every day stays small.
func TestUserIndexPrunesExpired(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	st := newStore(t, redisstore.Config{Prefix: prefix})
	admin := adminClient(t)
	ctx := ctxFor(t)

	short := record(sessiontest.Key(t), "alice")
	short.ExpiresAt = time.Now().Add(-time.Hour) // the ttl decides
	mustCreate(t, st, short, 50*time.Millisecond)
	eventually(t, "short session expires", func() bool {
		_, err := st.Get(ctx, short.Key)
		return errors.Is(err, session.ErrNotFound)
	})
	index := prefix + "user:alice"
	// The index deadline is at most the record's, which has passed.
	eventually(t, "index entry prunable", func() bool {
		long := record(sessiontest.Key(t), "alice")
		mustCreate(t, st, long, time.Hour)
		_, err := admin.ZScore(ctx, index, short.Key).Result()
		return errors.Is(err, redis.Nil)
	})
}

// TestUserIndexTTLNeverShrinks: the index lives as long as its
// longest-lived session, whatever the order of logins.
func TestUserIndexTTLNeverShrinks(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	st := newStore(t, redisstore.Config{Prefix: prefix})
	admin := adminClient(t)
	ctx := ctxFor(t)

	long := record(sessiontest.Key(t), "alice")
	long.ExpiresAt = time.Now().Add(10 * time.Hour)
	mustCreate(t, st, long, time.Hour)
	short := record(sessiontest.Key(t), "alice")
	short.ExpiresAt = time.Now().Add(time.Minute)
	mustCreate(t, st, short, time.Minute)
	pttl, err := admin.PTTL(ctx, prefix+"user:alice").Result()
	if err != nil {
		t.Fatal(err)
	}
	if pttl < 9*time.Hour {
		t.Errorf("index PTTL = %v after a shorter session, want about 10h", pttl)
	}
}

func TestUserIndexOptional(t *testing.T) {
	t.Parallel()
	prefix := testPrefix(t)
	st := newStore(t, redisstore.Config{Prefix: prefix})
	admin := adminClient(t)
	ctx := ctxFor(t)
	rec := record(sessiontest.Key(t), "")
	mustCreate(t, st, rec, time.Hour)
	if err := st.Delete(ctx, rec.Key); err != nil {
		t.Fatal(err)
	}
	keys, err := admin.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("a session without a user left keys %v", keys)
	}
	if _, err := st.UserKeys(ctx, ""); !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("UserKeys(\"\") = %v, want ErrInvalidArgument", err)
	}
	if _, err := st.DeleteUser(ctx, ""); !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("DeleteUser(\"\") = %v, want ErrInvalidArgument", err)
	}
}

// TestUserNamesAreOpaque: user names with ':' or spaces (OIDC subjects)
// get their own index without touching anything else.
func TestUserNamesAreOpaque(t *testing.T) {
	t.Parallel()
	st := newStore(t, redisstore.Config{})
	ctx := ctxFor(t)
	users := []string{"auth0|abc:def", "a b", "user:x", "*"}
	keys := map[string]string{}
	for _, u := range users {
		rec := record(sessiontest.Key(t), u)
		mustCreate(t, st, rec, time.Hour)
		keys[u] = rec.Key
	}
	for _, u := range users {
		got, err := st.UserKeys(ctx, u)
		if err != nil || !slices.Equal(got, []string{keys[u]}) {
			t.Errorf("UserKeys(%q) = %v, %v; want its one session", u, got, err)
		}
	}
	if deleted, err := st.DeleteUser(ctx, "*"); err != nil || !slices.Equal(deleted, []string{keys["*"]}) {
		t.Errorf("DeleteUser(*) = %v, %v", deleted, err)
	}
	for _, u := range users[:3] {
		if _, err := st.Get(ctx, keys[u]); err != nil {
			t.Errorf("session of %q after DeleteUser(*): %v", u, err)
		}
	}
}
