package marketsim

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// fakeConn is a conn without a socket, subscribed to syms, for tests of
// the generator's fan-out.
func fakeConn(s *Server, syms ...int) *conn {
	c := s.newConn(nil)
	c.authed = true
	for _, i := range syms {
		c.subs[i>>6] |= 1 << (uint(i) & 63)
		c.nsubs++
	}
	return c
}

// subscribeAll marks every symbol subscribed for fill without waking the
// generator goroutine (s.active stays zero).
func subscribeAll(s *Server) {
	for i := range s.refs {
		s.refs[i].Store(1)
	}
}

func TestFillRateAndInterleaving(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{Symbols: []string{"A", "B", "C"}})
	s.refs[0].Store(1)
	s.refs[2].Store(1)
	g := s.newGenState()
	counts := map[int32]int{}
	for range 100 {
		s.fill(g, 2.5, 42)
		for _, ev := range g.batch.evs {
			counts[ev.sym]++
			var obj map[string]any
			if err := json.Unmarshal(g.batch.buf[ev.start:ev.end], &obj); err != nil {
				t.Fatalf("event %q: %v", g.batch.buf[ev.start:ev.end], err)
			}
			if obj["t"] != float64(42) {
				t.Fatalf("event %v: t is not the tick time", obj)
			}
		}
	}
	// 2.5 per tick over 100 ticks; the carried fraction may add one.
	for _, i := range []int32{0, 2} {
		if n := counts[i]; n < 250 || n > 251 {
			t.Errorf("symbol %d: %d events, want 250", i, n)
		}
	}
	if counts[1] != 0 {
		t.Errorf("unsubscribed symbol got %d events", counts[1])
	}
	// Symbols alternate within a tick instead of coming in runs.
	s.fill(g, 3, 42)
	var order []int32
	for _, ev := range g.batch.evs {
		order = append(order, ev.sym)
	}
	if fmt.Sprint(order[:4]) != "[0 2 0 2]" {
		t.Errorf("order = %v, want symbols interleaved", order)
	}
}

func TestDeliverSplitsFrames(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{MaxFrameBytes: 256, OutQueue: 1000})
	subscribeAll(s)
	g := s.newGenState()
	s.fill(g, 10, 42)
	c := fakeConn(s, 0, 5, 99)
	n := c.deliver(&g.batch)
	if n != 30 {
		t.Fatalf("delivered %d events, want 30", n)
	}
	got := 0
	for len(c.out) > 0 {
		f := <-c.out
		if len(f.b) > 256 {
			t.Errorf("frame of %d bytes, limit 256", len(f.b))
		}
		var evs []map[string]any
		if err := json.Unmarshal(f.b, &evs); err != nil {
			t.Fatalf("frame %q: %v", f.b, err)
		}
		for _, e := range evs {
			if sym := e["sym"]; sym != s.syms[0].name && sym != s.syms[5].name && sym != s.syms[99].name {
				t.Fatalf("event for %v, not subscribed", sym)
			}
		}
		got += len(evs)
	}
	if got != 30 {
		t.Errorf("frames hold %d events, want 30", got)
	}
}

func TestDeliverOverflowIsSlowClient(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{OutQueue: 1})
	g := s.newGenState()
	c := fakeConn(s)
	c.mu.Lock()
	c.subs[0] = 1
	c.nsubs = 1
	c.mu.Unlock()
	s.ref(0, 1)
	s.fill(g, 1, 42)
	if c.deliver(&g.batch) != 1 {
		t.Fatal("first frame not queued")
	}
	c.deliver(&g.batch) // the queue of one is full
	select {
	case <-c.done:
	default:
		t.Fatal("overflow did not start closing")
	}
	if c.kind != closeSlow || c.nsubs != 0 || s.refs[0].Load() != 0 || s.active.Load() != 0 {
		t.Errorf("after overflow: kind %v, nsubs %d, refs %d, active %d", c.kind, c.nsubs, s.refs[0].Load(), s.active.Load())
	}
	if got := s.Stats().SlowClients; got != 1 {
		t.Errorf("Stats.SlowClients = %d, want 1", got)
	}
}

func TestGeneratorIdlesAndWakes(t *testing.T) {
	t.Parallel()
	s := newServer(t, Options{TickInterval: time.Millisecond, EventsPerSecond: 1000, OutQueue: 10000})
	c := fakeConn(s, 0)
	s.mu.Lock()
	s.nextID++
	c.id = s.nextID
	s.conns[c.id] = c
	s.mu.Unlock()
	s.ref(0, 1) // wakes the generator
	waitFor(t, "a data frame", func() bool { return len(c.out) > 0 })
	c.shutdown(closePeer)
	s.mu.Lock()
	delete(s.conns, c.id)
	s.mu.Unlock()
	if s.active.Load() != 0 {
		t.Fatalf("active = %d after the last unsubscribe", s.active.Load())
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	s := newServer(b, Options{})
	sym := s.syms[0]
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = sym.appendEvent(buf[:0], 1733241600123)
	}
}

// BenchmarkTick is one 10ms tick at 1000 events/s for each of 100 symbols
// (100,000 events/s), fanned out to a connection subscribed to everything
// and to 100 connections with 5 symbols each.
func BenchmarkTick(b *testing.B) {
	for _, tc := range []struct {
		name  string
		conns int
		per   int
	}{{"1conn_100sym", 1, 100}, {"100conns_5sym", 100, 5}} {
		b.Run(tc.name, func(b *testing.B) {
			s := newServer(b, Options{OutQueue: 4})
			subscribeAll(s)
			g := s.newGenState()
			conns := make([]*conn, tc.conns)
			for i := range conns {
				syms := make([]int, tc.per)
				for j := range syms {
					syms[j] = (i*tc.per + j) % len(s.syms)
				}
				conns[i] = fakeConn(s, syms...)
			}
			b.ReportAllocs()
			delivered := 0
			for b.Loop() {
				s.fill(g, 10, 1733241600123)
				for _, c := range conns {
					delivered += c.deliver(&g.batch)
					for len(c.out) > 0 {
						s.putFrame(<-c.out)
					}
				}
			}
			b.ReportMetric(float64(delivered)/b.Elapsed().Seconds(), "delivered/s")
		})
	}
}
