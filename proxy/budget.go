package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tickgate/tickgate/apierr"
	"github.com/tickgate/tickgate/config"
)

// Budget is a per-key request budget toward a vendor: the vendor plan's
// limit, kept by tickgate so that it refuses before the vendor would
// (and, with some vendors, before the vendor bans the key). The proxy
// takes one token for every call it sends to the vendor; answers from
// the cache or shared with an identical request take none.
//
// MemoryBudget counts in one process. Replicas that share a vendor key
// need an implementation on a shared store (Redis), passed as
// Config.Budgets.
type Budget interface {
	// Take spends one token of key's budget. When none is left, OK is
	// false and RetryAfter says when one will be. key is a secret's name
	// (never its value), so the set of keys is small and fixed.
	Take(ctx context.Context, key string) (BudgetDecision, error)
}

// BudgetDecision is the outcome of one Take, with what the X-RateLimit-*
// headers of a refusal report.
type BudgetDecision struct {
	OK         bool
	Limit      uint64        // size of the window closest to refusing
	Remaining  uint64        // tokens left in it
	Reset      time.Time     // when it is full again
	RetryAfter time.Duration // on refusal: until every window has a token
}

// MemoryBudget is an in-memory Budget: one token bucket per window of a
// config.Budget, for each key. It starts no goroutine; keys are never
// forgotten, which is fine for secret names.
type MemoryBudget struct {
	now     func() time.Time
	windows []bucketSpec

	mu   sync.Mutex
	keys map[string]*buckets
}

var _ Budget = (*MemoryBudget)(nil)

type bucketSpec struct {
	size  float64 // tokens the bucket holds
	perNs float64 // tokens added per nanosecond
}

type buckets struct {
	tokens []float64
	last   time.Time
}

// NewMemoryBudget returns a MemoryBudget for b. now is its clock; nil
// means time.Now.
func NewMemoryBudget(b config.Budget, now func() time.Time) (*MemoryBudget, error) {
	if len(b.Rate) == 0 {
		return nil, fmt.Errorf("%w: a budget needs a rate (N/duration)", ErrInvalidConfig)
	}
	if now == nil {
		now = time.Now
	}
	m := &MemoryBudget{now: now, keys: make(map[string]*buckets)}
	for i, r := range b.Rate {
		if r.Tokens == 0 || r.Interval <= 0 {
			return nil, fmt.Errorf("%w: budget rate %s is not positive", ErrInvalidConfig, r)
		}
		size := r.Tokens
		if i == 0 {
			size = b.BurstSize()
		}
		m.windows = append(m.windows, bucketSpec{size: float64(size), perNs: float64(r.Tokens) / float64(r.Interval)})
	}
	return m, nil
}

// Take implements Budget.
func (m *MemoryBudget) Take(_ context.Context, key string) (BudgetDecision, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	bk := m.keys[key]
	if bk == nil {
		bk = &buckets{tokens: make([]float64, len(m.windows)), last: now}
		for i, w := range m.windows {
			bk.tokens[i] = w.size
		}
		m.keys[key] = bk
	}
	if el := now.Sub(bk.last); el > 0 {
		for i, w := range m.windows {
			bk.tokens[i] = math.Min(w.size, bk.tokens[i]+float64(el)*w.perNs)
		}
		bk.last = now
	}
	ok := true
	for _, t := range bk.tokens {
		if t < 1 {
			ok = false
		}
	}
	d := BudgetDecision{OK: ok, Remaining: math.MaxUint64}
	full := func(i int) time.Time {
		return now.Add(time.Duration(math.Ceil((m.windows[i].size - bk.tokens[i]) / m.windows[i].perNs)))
	}
	for i, w := range m.windows {
		switch {
		case ok:
			bk.tokens[i]--
			if rem := uint64(bk.tokens[i]); rem < d.Remaining {
				d.Limit, d.Remaining, d.Reset = uint64(w.size), rem, full(i)
			}
		case bk.tokens[i] < 1:
			wait := time.Duration(math.Ceil((1 - bk.tokens[i]) / w.perNs))
			if d.Limit == 0 {
				// The first refusing window decides the headers.
				d.Limit, d.Remaining, d.Reset = uint64(w.size), 0, full(i)
			}
			d.RetryAfter = max(d.RetryAfter, wait)
		}
	}
	return d, nil
}

// refusal is an apierr.Error with headers that replace those tickgate's
// middleware set: a budget's X-RateLimit-* describe the limit that
// refused, not the session's.
type refusal struct {
	e      *apierr.Error
	header http.Header
}

func (r *refusal) Error() string { return r.e.Error() }
func (r *refusal) Unwrap() error { return r.e }

// Client messages of the budget refusals.
const msgBudget = "the upstream's request budget is used up; retry later"

// admit is asked before every call to the vendor. It refuses while the
// vendor's Retry-After after a 429 runs (429 upstream_rate_limited), and
// when the account's budget has no token within the queue time (429
// upstream_budget). A budget store that fails lets the call through and
// is logged: the vendor's own 429 and the cool-down still protect the
// key.
func (p *Proxy) admit(ctx context.Context, st *state) error {
	u := st.u
	if until := u.cool.Load(); until != 0 {
		if left := time.Duration(until - p.now().UnixNano()); left > 0 {
			p.m.RateLimitRejections.WithLabelValues("upstream_cooldown").Inc()
			e := apierr.Wrap(errCoolingDown, http.StatusTooManyRequests, "upstream_rate_limited", msgRateLimited)
			e.RetryAfter = ceilSeconds(left)
			return e
		}
	}
	if u.budget == nil {
		return nil
	}
	var waited time.Duration
	for {
		d, err := u.budget.Take(ctx, u.account)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			p.log.LogAttrs(ctx, slog.LevelError, "upstream budget store failed; allowing the call",
				slog.String("upstream", u.name), slog.String("secret", u.account), slog.String("err", err.Error()))
			return nil
		}
		if d.OK {
			return nil
		}
		wait := max(d.RetryAfter, time.Millisecond)
		dl, hasDL := ctx.Deadline()
		if waited+wait > u.queue || hasDL && time.Until(dl) < wait {
			return p.budgetRefusal(d)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			waited += wait
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		}
	}
}

func (p *Proxy) budgetRefusal(d BudgetDecision) error {
	p.m.RateLimitRejections.WithLabelValues("upstream_budget").Inc()
	e := apierr.Wrap(errBudget, http.StatusTooManyRequests, "upstream_budget", msgBudget)
	e.RetryAfter = ceilSeconds(d.RetryAfter)
	h := make(http.Header, 3)
	h.Set("X-RateLimit-Limit", strconv.FormatUint(d.Limit, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatUint(d.Remaining, 10))
	reset := d.Reset
	if now := p.now(); !reset.After(now) {
		reset = now.Add(time.Second)
	}
	h.Set("X-RateLimit-Reset", strconv.FormatInt(int64(math.Ceil(float64(reset.UnixNano())/1e9)), 10))
	return &refusal{e: e, header: h}
}

// coolDown records a vendor 429 for the upstream's account: no call goes
// out with that key until the vendor's Retry-After has passed. It
// returns the whole seconds to pass on to the client.
func (p *Proxy) coolDown(u *upstream, h http.Header) int {
	now := p.now()
	secs := vendorRetryAfter(h, now)
	until := now.Add(time.Duration(secs) * time.Second).UnixNano()
	for {
		cur := u.cool.Load()
		if cur >= until || u.cool.CompareAndSwap(cur, until) {
			break
		}
	}
	return secs
}

// ceilSeconds is d in whole seconds, rounded up, at least 1.
func ceilSeconds(d time.Duration) int {
	return max(int(math.Ceil(d.Seconds())), 1)
}
