package sessiontest

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickgate/tickgate/session"
)

// testRoles: roles round-trip, survive Touch, and a record without roles
// reads back with nil Roles.
func testRoles(t *testing.T, st session.Store) {
	rec := record(Key(t))
	rec.Roles = []string{"realtime", "trading"}
	create(t, st, rec, time.Hour)
	rec.Roles[0] = "mutated" // the store must not share the caller's slice
	got := mustGet(t, st, rec.Key)
	if want := []string{"realtime", "trading"}; !slices.Equal(got.Roles, want) {
		t.Fatalf("Roles = %q, want %q", got.Roles, want)
	}
	if err := st.Touch(ctxFor(t), rec.Key, rec.LastSeen.Add(time.Second), time.Hour); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	if got := mustGet(t, st, rec.Key); len(got.Roles) != 2 {
		t.Fatalf("Roles after Touch = %q", got.Roles)
	}
	plain := record(Key(t))
	create(t, st, plain, time.Hour)
	if got := mustGet(t, st, plain.Key); got.Roles != nil {
		t.Fatalf("Roles of a record without roles = %#v, want nil", got.Roles)
	}
}

// valuesOf returns st's session.Values or skips the test.
func valuesOf(t *testing.T, st session.Store) session.Values {
	t.Helper()
	v, ok := st.(session.Values)
	if !ok {
		t.Skip("store does not implement session.Values")
	}
	return v
}

func testValues(t *testing.T, st session.Store) {
	v := valuesOf(t, st)
	ctx := ctxFor(t)
	key := "test:" + Key(t)
	if _, err := v.GetValue(ctx, key); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetValue of an absent key = %v, want ErrNotFound", err)
	}
	val := []byte(`{"symbols":["AAPL"]}`)
	if err := v.SetValue(ctx, key, val, 0); err != nil {
		t.Fatalf("SetValue: %v", err)
	}
	val[0] = 'X' // the store keeps its own copy
	got, err := v.GetValue(ctx, key)
	if err != nil || string(got) != `{"symbols":["AAPL"]}` {
		t.Fatalf("GetValue = %q, %v", got, err)
	}
	if err := v.SetValue(ctx, key, []byte("two"), time.Hour); err != nil {
		t.Fatalf("SetValue (replace): %v", err)
	}
	if got, err := v.GetValue(ctx, key); err != nil || string(got) != "two" {
		t.Fatalf("GetValue after replace = %q, %v", got, err)
	}
	if err := v.SetValue(ctx, key, nil, time.Hour); err != nil {
		t.Fatalf("SetValue (empty): %v", err)
	}
	if got, err := v.GetValue(ctx, key); err != nil || len(got) != 0 {
		t.Fatalf("GetValue of an empty value = %q, %v", got, err)
	}
	if err := v.DeleteValue(ctx, key); err != nil {
		t.Fatalf("DeleteValue: %v", err)
	}
	if err := v.DeleteValue(ctx, key); err != nil {
		t.Fatalf("DeleteValue of an absent key: %v", err)
	}
	if _, err := v.GetValue(ctx, key); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetValue after DeleteValue = %v, want ErrNotFound", err)
	}
	// A value never shadows a session record with the same name.
	rec := record(Key(t))
	create(t, st, rec, time.Hour)
	if err := v.SetValue(ctx, rec.Key, []byte("x"), time.Hour); err != nil {
		t.Fatalf("SetValue: %v", err)
	}
	if err := equalRecords(mustGet(t, st, rec.Key), rec); err != nil {
		t.Fatalf("a value overwrote a record: %v", err)
	}
	big := bytes.Repeat([]byte("a"), session.MaxValueBytes)
	if err := v.SetValue(ctx, key, big, time.Hour); err != nil {
		t.Fatalf("SetValue of MaxValueBytes: %v", err)
	}
}

func testValueExpiry(t *testing.T, st session.Store) {
	v := valuesOf(t, st)
	ctx := ctxFor(t)
	key := "test:" + Key(t)
	if err := v.SetValue(ctx, key, []byte("x"), 50*time.Millisecond); err != nil {
		t.Fatalf("SetValue: %v", err)
	}
	deadline := time.Now().Add(patience)
	for {
		_, err := v.GetValue(ctx, key)
		if errors.Is(err, session.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatalf("GetValue: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("value still present %v after its TTL", patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := v.TakeValue(ctx, key); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("TakeValue of an expired value = %v, want ErrNotFound", err)
	}
}

// testTakeValueOnce: of many concurrent takers exactly one gets the value.
func testTakeValueOnce(t *testing.T, st session.Store) {
	v := valuesOf(t, st)
	ctx := ctxFor(t)
	key := "test:" + Key(t)
	if err := v.SetValue(ctx, key, []byte("ticket"), time.Minute); err != nil {
		t.Fatalf("SetValue: %v", err)
	}
	const takers = 16
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  int
		errs []error
	)
	for range takers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := v.TakeValue(ctx, key)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && string(got) == "ticket":
				won++
			case errors.Is(err, session.ErrNotFound):
			default:
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 || won != 1 {
		t.Fatalf("%d takers got the value (want 1), errors %v", won, errs)
	}
	if _, err := v.GetValue(ctx, key); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("GetValue after TakeValue = %v, want ErrNotFound", err)
	}
}

func testValuesInvalid(t *testing.T, st session.Store) {
	v := valuesOf(t, st)
	ctx := ctxFor(t)
	for name, tc := range map[string]struct {
		key string
		val []byte
		ttl time.Duration
	}{
		"empty key":      {"", []byte("x"), 0},
		"long key":       {strings.Repeat("k", session.MaxValueKeyLen+1), []byte("x"), 0},
		"oversize value": {"test:" + Key(t), make([]byte, session.MaxValueBytes+1), 0},
		"negative ttl":   {"test:" + Key(t), []byte("x"), -time.Second},
	} {
		if err := v.SetValue(ctx, tc.key, tc.val, tc.ttl); !errors.Is(err, session.ErrInvalidArgument) {
			t.Errorf("%s: SetValue = %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := v.GetValue(ctx, ""); !errors.Is(err, session.ErrNotFound) && !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("GetValue(\"\") = %v", err)
	}
}
