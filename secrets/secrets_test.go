package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secretText = "sk-live-VERYSECRET"

func TestValueNeverPrints(t *testing.T) {
	t.Parallel()
	v := NewValue(secretText)
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "v", v, "ptr", &v)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", v)
	j, _ := json.Marshal(struct{ V Value }{v})
	outs := []string{
		fmt.Sprint(v), fmt.Sprintf("%v %+v %#v %s %q %x %d", v, v, v, v, v, v, v),
		fmt.Sprintf("%v", struct{ V Value }{v}), fmt.Sprintf("%+v", &struct{ V Value }{v}),
		string(j), buf.String(), fmt.Errorf("wrap: %v", v).Error(),
	}
	for _, o := range outs {
		if strings.Contains(o, secretText) || strings.Contains(o, "VERYSECRET") {
			t.Fatalf("secret leaked: %s", o)
		}
	}
	if v.Reveal() != secretText {
		t.Fatal("Reveal lost the value")
	}
}

func TestEnv(t *testing.T) {
	t.Parallel()
	p := NewEnv(func(k string) string { return map[string]string{"A": "x"}[k] })
	if v, err := p.Get(context.Background(), "A"); err != nil || v.Reveal() != "x" {
		t.Fatalf("Get(A) = %v, %v", v, err)
	}
	_, err := p.Get(context.Background(), "B")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "B") {
		t.Fatalf("Get(B) err = %v", err)
	}
}

// fakeProvider counts calls and serves a mutable value.
type fakeProvider struct {
	mu    sync.Mutex
	vals  map[string]string
	fail  bool
	calls atomic.Int64
	gate  chan struct{} // when non-nil, Get waits for it
}

func (f *fakeProvider) Get(ctx context.Context, name string) (Value, error) {
	f.calls.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return Value{}, fmt.Errorf("secret %s: provider unreachable", name)
	}
	v, ok := f.vals[name]
	if !ok {
		return Value{}, fmt.Errorf("secret %s: %w", name, ErrNotFound)
	}
	return NewValue(v), nil
}

func (f *fakeProvider) set(name, v string, fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vals[name] = v
	f.fail = fail
}

func TestCacheLoadNamesEveryMissingSecret(t *testing.T) {
	t.Parallel()
	p := &fakeProvider{vals: map[string]string{"A": "a", "EMPTY": ""}}
	c := NewCache(p, CacheConfig{})
	err := c.Load(context.Background(), "A", "B", "EMPTY")
	if err == nil || !strings.Contains(err.Error(), "secret B") || !strings.Contains(err.Error(), "secret EMPTY") {
		t.Fatalf("Load err = %v", err)
	}
	if !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty secret not reported as ErrEmpty: %v", err)
	}
	if !c.Loaded("A") || c.Loaded("A", "B") {
		t.Fatal("Loaded wrong")
	}
}

func TestCacheRefreshKeepsLastGood(t *testing.T) {
	t.Parallel()
	p := &fakeProvider{vals: map[string]string{"K": "old"}}
	var results []string
	var mu sync.Mutex
	c := NewCache(p, CacheConfig{OnRefresh: func(r string) { mu.Lock(); results = append(results, r); mu.Unlock() }})
	ctx := context.Background()
	if err := c.Load(ctx, "K"); err != nil {
		t.Fatal(err)
	}
	p.set("K", "new", true)
	c.RefreshAll(ctx)
	if v, _ := c.Get(ctx, "K"); v.Reveal() != "old" {
		t.Fatalf("after failed refresh got %q, want old", v.Reveal())
	}
	p.set("K", "new", false)
	c.RefreshAll(ctx)
	if v, _ := c.Get(ctx, "K"); v.Reveal() != "new" {
		t.Fatalf("after refresh got %q, want new", v.Reveal())
	}
	mu.Lock()
	defer mu.Unlock()
	if got, want := strings.Join(results, ","), "ok,error,rotated"; got != want {
		t.Fatalf("results = %s, want %s", got, want)
	}
}

func TestInvalidateSingleFlight(t *testing.T) {
	t.Parallel()
	p := &fakeProvider{vals: map[string]string{"K": "old"}}
	now := time.Unix(1000, 0)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	c := NewCache(p, CacheConfig{Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	ctx := context.Background()
	if err := c.Load(ctx, "K"); err != nil {
		t.Fatal(err)
	}
	stale, _ := c.Get(ctx, "K")
	p.set("K", "new", false)
	clock.Add(int64(time.Minute)) // past MinReread
	p.calls.Store(0)
	p.gate = make(chan struct{})

	var wg sync.WaitGroup
	got := make([]string, 500)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.Invalidate(ctx, "K", stale)
			if err != nil {
				t.Error(err)
			}
			got[i] = v.Reveal()
		}()
	}
	// Let the flight finish once every caller is either waiting on it or
	// will see the new value.
	time.AfterFunc(50*time.Millisecond, func() { close(p.gate) })
	wg.Wait()
	for i, g := range got {
		if g != "new" {
			t.Fatalf("caller %d got %q", i, g)
		}
	}
	if n := p.calls.Load(); n != 1 {
		t.Fatalf("provider called %d times, want 1", n)
	}
	// Invalidating the same stale value again returns the new one with no call.
	if v, _ := c.Invalidate(ctx, "K", stale); v.Reveal() != "new" || p.calls.Load() != 1 {
		t.Fatalf("second invalidate: %q, calls %d", v.Reveal(), p.calls.Load())
	}
	// A vendor still refusing the new key cannot cause re-reads faster than MinReread.
	cur, _ := c.Get(ctx, "K")
	for range 10 {
		_, _ = c.Invalidate(ctx, "K", cur)
	}
	if n := p.calls.Load(); n != 1 {
		t.Fatalf("re-read within MinReread: %d calls", n)
	}
}

func TestCacheStartClose(t *testing.T) {
	t.Parallel()
	p := &fakeProvider{vals: map[string]string{"K": "v"}}
	c := NewCache(p, CacheConfig{Refresh: time.Millisecond})
	if err := c.Load(context.Background(), "K"); err != nil {
		t.Fatal(err)
	}
	c.Start()
	deadline := time.Now().Add(5 * time.Second)
	for p.calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if p.calls.Load() < 3 {
		t.Fatal("periodic refresh did not run")
	}
	c.Close()
	c.Close()
	NewCache(p, CacheConfig{}).Close() // never started
}

func TestSpellings(t *testing.T) {
	t.Parallel()
	got := Spellings(NewValue(`k+y/1=2&<3>"4`))
	want := []string{
		`k+y/1=2&<3>"4`,
		`k%2By%2F1%3D2%26%3C3%3E%224`, `k+y%2F1=2&%3C3%3E%224`,
		`k%2by%2f1%3d2%26%3c3%3e%224`, `k+y%2f1=2&%3c3%3e%224`,
		`k+y/1=2\u0026\u003c3\u003e\"4`, `k+y\/1=2\u0026\u003c3\u003e\"4`, `k+y/1=2&<3>\"4`, `k+y\/1=2&<3>\"4`,
		`k%2By/1%3D2%26%3C3%3E%224`,                                                                            // Python's quote keeps "/"
		`k\u002By/1=2\u0026\u003C3\u003E\u00224`,                                                               // .NET's JSON encoder
		`k\u002By\u002F1\u003D2\u0026\u003C3\u003E\u00224`, `k\u002by\u002f1\u003d2\u0026\u003c3\u003e\u00224`, // every symbol escaped
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Spellings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if Spellings(Value{}) != nil {
		t.Fatal("empty value has spellings")
	}
}

// TestInvalidateRightAfterLoad: a key rotated just after start-up is
// picked up by the first Invalidate; MinReread only spaces re-reads that
// Invalidate itself caused.
func TestInvalidateRightAfterLoad(t *testing.T) {
	t.Parallel()
	p := &fakeProvider{vals: map[string]string{"K": "old"}}
	now := time.Unix(1000, 0)
	c := NewCache(p, CacheConfig{Now: func() time.Time { return now }})
	ctx := context.Background()
	if err := c.Load(ctx, "K"); err != nil {
		t.Fatal(err)
	}
	stale, _ := c.Get(ctx, "K")
	p.set("K", "new", false)
	if v, err := c.Invalidate(ctx, "K", stale); err != nil || v.Reveal() != "new" {
		t.Fatalf("Invalidate right after Load = %q, %v; want new", v.Reveal(), err)
	}
	// The vendor refuses the new key too: no second read within MinReread.
	calls := p.calls.Load()
	cur, _ := c.Get(ctx, "K")
	if _, err := c.Invalidate(ctx, "K", cur); err != nil || p.calls.Load() != calls {
		t.Fatalf("re-read within MinReread of an invalidation: calls %d -> %d", calls, p.calls.Load())
	}
}
