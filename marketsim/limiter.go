package marketsim

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// budget is the per-key REST token bucket (rate per second, burst). It is
// the vendor's plan limit that a proxy must respect.
type budget struct {
	unlimited atomic.Bool // rate < 0: checked without the lock

	mu      sync.Mutex
	rate    float64 // tokens per second; <0 disables the budget
	burst   float64
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// decision is the outcome of one take, with what the X-RateLimit-* headers
// report.
type decision struct {
	ok         bool
	unlimited  bool
	limit      int
	remaining  int
	reset      time.Time     // when the bucket is full again
	retryAfter time.Duration // until one token is available, on refusal
}

func newBudget(rate float64, burst int) *budget {
	b := &budget{rate: rate, burst: float64(burst), buckets: make(map[string]*bucket)}
	b.unlimited.Store(rate < 0)
	return b
}

func (b *budget) set(rate float64, burst int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rate, b.burst = rate, float64(burst)
	b.unlimited.Store(rate < 0)
	for _, bk := range b.buckets {
		bk.tokens = math.Min(bk.tokens, b.burst)
	}
}

// take spends one token of key at now.
func (b *budget) take(key string, now time.Time) decision {
	if b.unlimited.Load() {
		return decision{ok: true, unlimited: true}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate < 0 { // changed since the check above
		return decision{ok: true, unlimited: true}
	}
	bk := b.buckets[key]
	if bk == nil {
		bk = &bucket{tokens: b.burst, last: now}
		b.buckets[key] = bk
	}
	if el := now.Sub(bk.last).Seconds(); el > 0 {
		bk.tokens = math.Min(b.burst, bk.tokens+el*b.rate)
		bk.last = now
	}
	d := decision{limit: int(b.burst)}
	if bk.tokens >= 1 {
		bk.tokens--
		d.ok = true
	} else if b.rate > 0 {
		d.retryAfter = time.Duration((1 - bk.tokens) / b.rate * float64(time.Second))
	} else {
		d.retryAfter = time.Hour // a zero-rate bucket never refills
	}
	d.remaining = int(bk.tokens)
	if b.rate > 0 {
		d.reset = now.Add(time.Duration((b.burst - bk.tokens) / b.rate * float64(time.Second)))
	} else {
		d.reset = now.Add(time.Hour)
	}
	return d
}

// keep forgets the buckets of keys not in valid (after key rotation).
func (b *budget) keep(valid map[string]struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.buckets {
		if _, ok := valid[k]; !ok {
			delete(b.buckets, k)
		}
	}
}
