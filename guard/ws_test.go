package guard

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/metrics"
)

func TestConnCounter(t *testing.T) {
	t.Parallel()
	c := NewConnCounter(2)
	acquireThree := func(what string) {
		t.Helper()
		for i, want := range []bool{true, true, false} {
			if got := c.Acquire("a"); got != want {
				t.Fatalf("%s: acquisition %d of a = %v, want %v", what, i, got, want)
			}
		}
	}
	acquireThree("fresh")
	if !c.Acquire("b") {
		t.Fatal("keys are not independent")
	}
	c.Release("a")
	if got := c.Count("a"); got != 1 {
		t.Fatalf("Count(a) = %d, want 1", got)
	}
	c.Release("a")
	c.Release("a") // more releases than acquisitions never go negative
	if got := c.Count("a"); got != 0 {
		t.Fatalf("Count(a) = %d, want 0", got)
	}
	acquireThree("after spurious releases")
	unlimited := NewConnCounter(0)
	for range 1000 {
		if !unlimited.Acquire("x") {
			t.Fatal("no limit refused")
		}
	}
}

func TestConnCounterConcurrent(t *testing.T) {
	t.Parallel()
	c := NewConnCounter(10)
	var mu sync.Mutex
	held := 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if c.Acquire("k") {
				mu.Lock()
				held++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if held != 10 || c.Count("k") != 10 {
		t.Fatalf("held %d, count %d; want 10", held, c.Count("k"))
	}
}

func TestWSAdmit(t *testing.T) {
	t.Parallel()
	m := metrics.Discard()
	w, err := NewWSGuard(config.Limit{{Tokens: 4, Interval: time.Hour}}, 2, LimiterOptions{}, m)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	a := netip.MustParseAddr("2001:db8:1:2::1")
	sameNet := netip.MustParseAddr("2001:db8:1:2::ffff")

	r1, err := w.Admit(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := w.Admit(ctx, sameNet) // one /64 is one client
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Admit(ctx, a); !errors.Is(err, ErrTooManyConns) {
		t.Fatalf("third open socket: %v, want ErrTooManyConns", err)
	}
	if got := w.Open(a); got != 2 {
		t.Fatalf("Open = %d, want 2", got)
	}
	r1()
	r1() // release is idempotent
	if got := w.Open(a); got != 1 {
		t.Fatalf("after release Open = %d, want 1", got)
	}
	r3, err := w.Admit(ctx, a) // 4th connect of the window
	if err != nil {
		t.Fatal(err)
	}
	r2()
	r3()
	if _, err := w.Admit(ctx, a); !errors.Is(err, ErrTooManyConnects) {
		t.Fatalf("5th connect in the window: %v, want ErrTooManyConnects", err)
	}
	// Another address is unaffected; IPv4-mapped is IPv4.
	other, err := w.Admit(ctx, netip.MustParseAddr("::ffff:192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	other()
	if got := w.conns.Count("192.0.2.1"); got != 0 {
		t.Fatalf("mapped address counted under another key: %d", got)
	}
	for scope, want := range map[string]float64{"ws_connect": 1, "ws_conns_ip": 1} {
		if got := counterValue(t, m.RateLimitRejections.WithLabelValues(scope)); got != want {
			t.Errorf("rejections{%s} = %v, want %v", scope, got, want)
		}
	}
}

func TestWSAdmitFailClosed(t *testing.T) {
	t.Parallel()
	w, err := NewWSGuard(config.Limit{{Tokens: 4, Interval: time.Hour}}, 2, LimiterOptions{Stores: brokenStores, OnStoreError: FailClosed}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Admit(context.Background(), netip.MustParseAddr("192.0.2.1")); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("err = %v, want ErrStoreUnavailable", err)
	}
	open, err := NewWSGuard(config.Limit{{Tokens: 4, Interval: time.Hour}}, 2, LimiterOptions{Stores: brokenStores}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	release, err := open.Admit(context.Background(), netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		t.Fatalf("fail-open admit: %v", err)
	}
	release()
}

func ExampleWSGuard_Admit() {
	ws, err := NewWSGuard(config.Limit{{Tokens: 30, Interval: time.Minute}}, 20, LimiterOptions{}, nil)
	if err != nil {
		panic(err)
	}
	defer ws.Close()
	release, err := ws.Admit(context.Background(), netip.MustParseAddr("198.51.100.7"))
	if err != nil {
		// errors.Is(err, ErrTooManyConnects) or ErrTooManyConns: close
		// the socket with 4008; ErrStoreUnavailable: 1013.
		return
	}
	defer release() // when the socket closes
	fmt.Println("admitted")
	// Output: admitted
}
