package guard

import (
	"context"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sethvargo/go-limiter"

	"github.com/tickgate/tickgate/config"
)

// memorystoreRefills reports whether go-limiter v0.7.1's memorystore
// enforces r. Its buckets refill, at each new interval, to
// min(tokens, intervals elapsed × interval-in-ns / tokens): with more
// tokens than the square root of the interval in nanoseconds (31,622
// for 1s, 244,948 for 1m) a bucket refills only interval/tokens tokens a
// window, so 1000000/1s would allow about 1000 a second once the first
// window is spent.
func memorystoreRefills(r config.Rate) bool {
	if r.Interval <= 0 {
		return true // refused by memorystore.New itself
	}
	hi, sq := bits.Mul64(r.Tokens, r.Tokens)
	return hi == 0 && sq <= uint64(r.Interval)
}

// windowStore is an in-memory limiter.Store with memorystore's semantics
// (a key gets tokens per interval, in windows starting at its first
// take; Burst adds tokens until the window ends) that refills every
// window in full whatever the token count. MemoryStore uses it for the
// rates memorystore cannot enforce.
type windowStore struct {
	tokens   uint64
	interval int64 // ns
	ttl      int64 // ns a key is kept after its window ended
	now      func() int64

	mu        sync.RWMutex
	keys      map[string]*window
	lastSweep int64
	stopped   atomic.Bool
}

type window struct {
	mu       sync.Mutex
	max      uint64
	interval int64
	start    int64  // ns, start of the current window
	left     uint64 // tokens left in it
}

var _ limiter.Store = (*windowStore)(nil)

func newWindowStore(r config.Rate, now func() int64) *windowStore {
	if now == nil {
		now = func() int64 { return time.Now().UnixNano() }
	}
	return &windowStore{
		tokens:   r.Tokens,
		interval: int64(r.Interval),
		ttl:      int64(max(2*r.Interval, 5*time.Minute)),
		now:      now,
		keys:     make(map[string]*window),
	}
}

// advance starts the window now falls in; w.mu is held.
func (w *window) advance(now int64) {
	if now-w.start >= w.interval {
		w.start += (now - w.start) / w.interval * w.interval
		w.left = w.max
	}
}

// get returns key's window, made (full) when missing.
func (s *windowStore) get(key string, now int64) *window {
	s.mu.RLock()
	w := s.keys[key]
	s.mu.RUnlock()
	if w != nil {
		return w
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if w = s.keys[key]; w == nil {
		w = &window{max: s.tokens, interval: s.interval, start: now, left: s.tokens}
		s.keys[key] = w
	}
	return w
}

// sweepLocked forgets, at most once per interval (and at least once a
// minute), the keys whose window ended more than ttl ago; s.mu is held.
func (s *windowStore) sweepLocked(now int64) {
	if now-s.lastSweep < min(s.interval, int64(time.Minute)) {
		return
	}
	s.lastSweep = now
	for k, w := range s.keys {
		w.mu.Lock()
		idle := now-(w.start+w.interval) > s.ttl
		w.mu.Unlock()
		if idle {
			delete(s.keys, k)
		}
	}
}

func (s *windowStore) Take(_ context.Context, key string) (tokens, remaining, reset uint64, ok bool, err error) {
	if s.stopped.Load() {
		return 0, 0, 0, false, limiter.ErrStopped
	}
	now := s.now()
	w := s.get(key, now)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.advance(now)
	if w.left > 0 {
		w.left--
		ok = true
	}
	return w.max, w.left, uint64(w.start + w.interval), ok, nil
}

func (s *windowStore) Get(_ context.Context, key string) (tokens, remaining uint64, err error) {
	if s.stopped.Load() {
		return 0, 0, limiter.ErrStopped
	}
	s.mu.RLock()
	w := s.keys[key]
	s.mu.RUnlock()
	if w == nil {
		return 0, 0, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.advance(s.now())
	return w.max, w.left, nil
}

func (s *windowStore) Set(_ context.Context, key string, tokens uint64, interval time.Duration) error {
	if s.stopped.Load() {
		return limiter.ErrStopped
	}
	if interval <= 0 {
		interval = time.Duration(s.interval)
	}
	now := s.now()
	s.mu.Lock()
	s.keys[key] = &window{max: tokens, interval: int64(interval), start: now, left: tokens}
	s.mu.Unlock()
	return nil
}

func (s *windowStore) Burst(_ context.Context, key string, tokens uint64) error {
	if s.stopped.Load() {
		return limiter.ErrStopped
	}
	now := s.now()
	w := s.get(key, now)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.advance(now)
	w.left += tokens
	return nil
}

func (s *windowStore) Close(context.Context) error {
	if s.stopped.CompareAndSwap(false, true) {
		s.mu.Lock()
		s.keys = map[string]*window{}
		s.mu.Unlock()
	}
	return nil
}
