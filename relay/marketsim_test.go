package relay

import (
	"fmt"
	"testing"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/marketsim"
)

// TestWithMarketsim runs the relay against the real simulated vendor with
// its defaults (one connection per key, refuse_new, 10 messages per second)
// and the demo configuration's feed.
func TestWithMarketsim(t *testing.T) {
	sim, err := marketsim.New(marketsim.Options{Keys: []string{testKey}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, vendorOpts{}, func(c *Config) {
		c.Feeds = map[string]config.Feed{"demo": config.Demo(base).Feeds["demo"]}
	})

	universe := sim.Symbols()
	const n = 30
	browsers := make([]*browser, n)
	want := map[string]bool{}
	for i := range browsers {
		b := h.browser(sess(fmt.Sprintf("u%d", i)))
		a, c := universe[i%len(universe)], universe[(i*7+3)%len(universe)]
		want[a], want[c] = true, true
		b.send(`{"action":"subscribe","symbols":["` + a + `","` + c + `"]}`)
		browsers[i] = b
	}
	for _, b := range browsers {
		b.until("subscribed")
		b.until("data")
	}
	st := sim.Stats()
	if st.WSConnectionsTotal != 1 || st.WSRefusedByCap != 0 || st.RateViolations != 0 || st.SymbolLimitErrors != 0 {
		t.Fatalf("marketsim saw %d connections, %d refusals, %d rate violations, %d symbol limit errors; want 1, 0, 0, 0",
			st.WSConnectionsTotal, st.WSRefusedByCap, st.RateViolations, st.SymbolLimitErrors)
	}
	eventually(t, "every symbol subscribed upstream", func() bool {
		st := sim.Stats()
		return len(st.SymbolsPerConn) == 1 && st.SymbolsPerConn[0] == len(want)
	})

	// Drop: every browser hears reconnecting, then connected, then data.
	if sim.DropAll() != 1 {
		t.Fatal("DropAll dropped nothing")
	}
	for _, b := range browsers {
		b.awaitStatus("reconnecting")
		b.awaitStatus("connected")
		b.until("data")
	}
	eventually(t, "resubscribed after the drop", func() bool {
		st := sim.Stats()
		return len(st.SymbolsPerConn) == 1 && st.SymbolsPerConn[0] == len(want)
	})

	// Key rotation: the vendor now wants a new key and drops us; the
	// relay's key is refused, Invalidate returns the rotated key, and the
	// browsers never notice more than a reconnect.
	const rotated = "rotated-key-9876543210"
	if err := sim.SetKeys(rotated); err != nil {
		t.Fatal(err)
	}
	h.secrets.mu.Lock()
	h.secrets.next = rotated
	h.secrets.mu.Unlock()
	sim.DropAll()
	for _, b := range browsers {
		b.awaitStatus("reconnecting")
		b.awaitStatus("connected")
		b.until("data")
	}
	if got := h.secrets.invalidated(); got != 1 {
		t.Errorf("Invalidate called %d times, want 1", got)
	}
	if st := sim.Stats(); st.RateViolations != 0 || st.WSAuthFailures != 1 {
		t.Errorf("marketsim saw %d rate violations and %d auth failures; want 0 and 1", st.RateViolations, st.WSAuthFailures)
	}
}
