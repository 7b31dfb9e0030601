package marketsim

import (
	"math"
	"math/rand/v2"
	"time"
)

// maxTickGap bounds the time one tick accounts for, so a stalled process
// does not answer with a burst of stale events.
const maxTickGap = 250 * time.Millisecond

// span locates one encoded event in batch.buf.
type span struct {
	sym        int32
	start, end int32
}

// batch is the events of one tick, each encoded once and shared by every
// connection that wants them.
type batch struct {
	buf []byte
	evs []span
}

// genState is owned by the generator goroutine (or a benchmark).
type genState struct {
	acc    []float64 // fractional events carried per symbol
	counts []int
	batch  batch
	conns  []*conn
}

func (s *Server) newGenState() *genState {
	g := &genState{acc: make([]float64, len(s.syms)), counts: make([]int, len(s.syms))}
	// Random phases, so symbols with the same rate do not all fire on the
	// same tick.
	rng := rand.New(rand.NewPCG(uint64(s.opts.Seed), 0x9e4))
	for i := range g.acc {
		g.acc[i] = rng.Float64()
	}
	return g
}

// generate produces data every TickInterval while any symbol is
// subscribed, and idles otherwise.
func (s *Server) generate() {
	defer s.wg.Done()
	g := s.newGenState()
	t := time.NewTicker(s.opts.TickInterval)
	defer t.Stop()
	last := time.Now()
	for {
		if s.active.Load() == 0 {
			t.Stop()
			select {
			case <-s.done:
				return
			case <-s.wake:
			}
			t.Reset(s.opts.TickInterval)
			last = time.Now()
			continue
		}
		select {
		case <-s.done:
			return
		case now := <-t.C:
			dt := min(now.Sub(last), maxTickGap)
			last = now
			s.tick(g, dt)
		}
	}
}

// tick generates the events of dt and queues them to the connections.
func (s *Server) tick(g *genState, dt time.Duration) {
	rate := math.Float64frombits(s.eventRate.Load())
	s.fill(g, rate*dt.Seconds(), s.now().UnixMilli())
	if len(g.batch.evs) == 0 {
		return
	}
	s.mu.Lock()
	g.conns = g.conns[:0]
	for _, c := range s.conns {
		g.conns = append(g.conns, c)
	}
	s.mu.Unlock()
	n := 0
	for _, c := range g.conns {
		n += c.deliver(&g.batch)
	}
	clear(g.conns) // do not keep closed connections alive
	s.stats.events.Add(int64(n))
}

// fill encodes perSym events (on average, carrying fractions) for every
// subscribed symbol, interleaving symbols so frames mix them.
func (s *Server) fill(g *genState, perSym float64, ts int64) {
	b := &g.batch
	b.buf = b.buf[:0]
	b.evs = b.evs[:0]
	maxN := 0
	for i := range s.syms {
		if s.refs[i].Load() <= 0 {
			g.counts[i] = 0
			continue
		}
		g.acc[i] += perSym
		n := int(g.acc[i])
		g.acc[i] -= float64(n)
		g.counts[i] = n
		maxN = max(maxN, n)
	}
	for k := range maxN {
		for i, n := range g.counts {
			if n > k {
				start := len(b.buf)
				b.buf = s.syms[i].appendEvent(b.buf, ts)
				b.evs = append(b.evs, span{sym: int32(i), start: int32(start), end: int32(len(b.buf))})
			}
		}
	}
}

// deliver queues the events of b that c subscribes to, as JSON arrays of
// at most MaxFrameBytes. It returns the number of events queued.
func (c *conn) deliver(b *batch) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.nsubs == 0 {
		return 0
	}
	limit := c.srv.opts.MaxFrameBytes
	var f *frame
	n := 0
	for _, ev := range b.evs {
		if !c.has(ev.sym) {
			continue
		}
		e := b.buf[ev.start:ev.end]
		if f != nil && len(f.b)+len(e)+2 > limit {
			f.b = append(f.b, ']')
			if !c.enqueueLocked(f) {
				return n
			}
			f = nil
		}
		if f == nil {
			f = c.srv.getFrame()
			f.b = append(f.b, '[')
		} else {
			f.b = append(f.b, ',')
		}
		f.b = append(f.b, e...)
		n++
	}
	if f != nil {
		f.b = append(f.b, ']')
		c.enqueueLocked(f)
	}
	return n
}
