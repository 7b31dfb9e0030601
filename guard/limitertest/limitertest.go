// Package limitertest is the conformance suite for go-limiter's
// limiter.Store as tickgate uses it: every backend (go-limiter's
// memorystore, guard/redislimit) runs the same tests, so a limit means
// the same thing whichever store holds it.
//
//	func TestConformance(t *testing.T) {
//		limitertest.Run(t, func(t *testing.T, tokens uint64, interval time.Duration) limiter.Store {
//			s, err := memorystore.New(&memorystore.Config{Tokens: tokens, Interval: interval})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { _ = s.Close(context.Background()) })
//			return s
//		})
//	}
package limitertest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sethvargo/go-limiter"
)

// Patience bounds every wait in the suite; generous for a loaded machine.
const Patience = 15 * time.Second

// NewStore returns a fresh store allowing tokens per interval by default.
// Stores from separate calls must not share keys; the function arranges
// their cleanup with t.Cleanup (the suite may Close them itself first).
type NewStore func(t *testing.T, tokens uint64, interval time.Duration) limiter.Store

// Run runs the suite against stores from newStore.
func Run(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	t.Run("TakeCountsDown", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, 3, time.Hour)
		for i, want := range []struct {
			remaining uint64
			ok        bool
		}{{2, true}, {1, true}, {0, true}, {0, false}, {0, false}} {
			tokens, remaining, _, ok, err := s.Take(ctx, "k")
			if err != nil {
				t.Fatalf("take %d: %v", i, err)
			}
			if tokens != 3 || remaining != want.remaining || ok != want.ok {
				t.Fatalf("take %d = (tokens %d, remaining %d, ok %v), want (3, %d, %v)", i, tokens, remaining, ok, want.remaining, want.ok)
			}
		}
	})

	t.Run("KeysAreIndependent", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, 1, time.Hour)
		for _, k := range []string{"a", "b", "ip:192.0.2.1", "ip:2001:db8::/64"} {
			if _, _, _, ok, err := s.Take(ctx, k); err != nil || !ok {
				t.Fatalf("first take of %q: ok=%v err=%v", k, ok, err)
			}
		}
		if _, _, _, ok, _ := s.Take(ctx, "a"); ok {
			t.Fatal("second take of a allowed")
		}
	})

	t.Run("ResetIsTheEndOfTheWindow", func(t *testing.T) {
		t.Parallel()
		const interval = time.Hour
		s := newStore(t, 1, interval)
		for i := range 2 {
			before := time.Now()
			_, _, reset, _, err := s.Take(ctx, "k")
			after := time.Now()
			if err != nil {
				t.Fatal(err)
			}
			at := time.Unix(0, int64(reset))
			// A second of slack for a store on another clock.
			if !at.After(before) || at.After(after.Add(interval+time.Second)) {
				t.Fatalf("take %d: reset %v is not within (%v, %v]", i, at, before, after.Add(interval))
			}
			if i == 1 && at.Sub(after) < interval-time.Minute {
				t.Fatalf("refused take: reset in %v, want about %v", at.Sub(after), interval)
			}
		}
	})

	t.Run("RefillsAfterTheInterval", func(t *testing.T) {
		t.Parallel()
		const interval = 200 * time.Millisecond
		s := newStore(t, 2, interval)
		for range 2 {
			if _, _, _, ok, err := s.Take(ctx, "k"); err != nil || !ok {
				t.Fatalf("take: ok=%v err=%v", ok, err)
			}
		}
		_, _, reset, ok, err := s.Take(ctx, "k")
		if err != nil || ok {
			t.Fatalf("third take: ok=%v err=%v", ok, err)
		}
		if wait := time.Until(time.Unix(0, int64(reset))); wait > interval+time.Second {
			t.Fatalf("refused take says wait %v, longer than the interval %v", wait, interval)
		}
		deadline := time.Now().Add(Patience)
		for {
			_, remaining, _, ok, err := s.Take(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				if remaining != 1 {
					t.Fatalf("after refill remaining = %d, want 1", remaining)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no refill within %v", Patience)
			}
			time.Sleep(interval / 4)
		}
	})

	t.Run("GetDoesNotTake", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, 3, time.Hour)
		if tokens, remaining, err := s.Get(ctx, "unknown"); err != nil || tokens != 0 || remaining != 0 {
			t.Fatalf("Get(unknown) = %d, %d, %v; want 0, 0, nil", tokens, remaining, err)
		}
		if _, _, _, _, err := s.Take(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if tokens, remaining, err := s.Get(ctx, "k"); err != nil || tokens != 3 || remaining != 2 {
				t.Fatalf("Get = %d, %d, %v; want 3, 2, nil", tokens, remaining, err)
			}
		}
	})

	t.Run("SetOverridesTheLimit", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, 1, time.Hour)
		if err := s.Set(ctx, "k", 4, time.Hour); err != nil {
			t.Fatal(err)
		}
		if tokens, remaining, err := s.Get(ctx, "k"); err != nil || tokens != 4 || remaining != 4 {
			t.Fatalf("Get after Set = %d, %d, %v; want 4, 4, nil", tokens, remaining, err)
		}
		for i := range 5 {
			tokens, _, _, ok, err := s.Take(ctx, "k")
			if err != nil || tokens != 4 || ok != (i < 4) {
				t.Fatalf("take %d: tokens %d ok %v err %v", i, tokens, ok, err)
			}
		}
		if _, _, _, ok, _ := s.Take(ctx, "other"); !ok {
			t.Fatal("Set changed another key")
		}
		if _, _, _, ok, _ := s.Take(ctx, "other"); ok {
			t.Fatal("another key got Set's limit")
		}
	})

	t.Run("BurstAddsTokens", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, 2, time.Hour)
		for range 2 {
			if _, _, _, ok, err := s.Take(ctx, "k"); err != nil || !ok {
				t.Fatalf("take: ok=%v err=%v", ok, err)
			}
		}
		if err := s.Burst(ctx, "k", 3); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			if _, _, _, ok, err := s.Take(ctx, "k"); err != nil || ok != (i < 3) {
				t.Fatalf("take %d after burst: ok=%v err=%v", i, ok, err)
			}
		}
	})

	t.Run("ConcurrentTakesNeverOverspend", func(t *testing.T) {
		t.Parallel()
		const tokens = 25
		s := newStore(t, tokens, time.Hour)
		var allowed atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 80)
		for range 8 {
			wg.Go(func() {
				for range 10 {
					_, _, _, ok, err := s.Take(ctx, "k")
					if err != nil {
						errs <- err
						return
					}
					if ok {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if got := allowed.Load(); got != tokens {
			t.Fatalf("allowed %d of 80 concurrent takes, want %d", got, tokens)
		}
	})

	t.Run("CloseStops", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, 5, time.Hour)
		if _, _, _, ok, err := s.Take(ctx, "k"); err != nil || !ok {
			t.Fatalf("take: ok=%v err=%v", ok, err)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		_, _, _, ok, err := s.Take(ctx, "k")
		if ok || !errors.Is(err, limiter.ErrStopped) {
			t.Fatalf("Take after Close: ok=%v err=%v, want limiter.ErrStopped", ok, err)
		}
	})
}
