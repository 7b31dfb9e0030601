package relay

import (
	"fmt"
	"strings"
	"testing"
)

// TestPerUserSymbolCap: one user with many sessions, each within its own
// budget, cannot take more than twice the per-session limit of distinct
// symbols on a feed, so the feed-wide cap stays available to other users.
// Symbols the user already holds cost nothing; freeing some makes room; the
// refusal is all or nothing and names the per-user limit.
func TestPerUserSymbolCap(t *testing.T) {
	h := newHarness(t, vendorOpts{}, func(c *Config) {
		c.MaxSymbols = 3
		c.MaxFeedSymbols = 8
		f := c.Feeds["demo"]
		f.Adapter = f.Adapter.Resolved()
		f.Adapter.Preset = ""
		f.Adapter.MaxSymbols = 0
		c.Feeds["demo"] = f
	})
	mallory := func(i int) *browser { return h.browser(fmt.Sprintf("sk-m%d:mallory", i)) }
	m0, m1, m2 := mallory(0), mallory(1), mallory(2)
	m0.send(`{"action":"subscribe","symbols":["A1","A2","A3"]}`)
	m0.until("subscribed")
	m1.send(`{"action":"subscribe","symbols":["A4","A5","A6"]}`)
	m1.until("subscribed")

	// A third session of the same user: each new symbol is past the
	// user's 6 although the session holds none.
	m2.send(`{"action":"subscribe","symbols":["A7"]}`)
	if m := m2.until("error"); m.Code != codeTooManySymbols || !strings.Contains(m.Message, "6 symbols per user") {
		t.Fatalf("got %s, want too_many_symbols naming the per-user limit", m.raw)
	}
	// All or nothing: a held symbol plus a new one is refused as a whole.
	m2.send(`{"action":"subscribe","symbols":["A1","A8"]}`)
	if m := m2.until("error"); m.Code != codeTooManySymbols {
		t.Fatalf("got %s, want too_many_symbols", m.raw)
	}
	// Symbols the user already holds in another session cost nothing.
	m2.send(`{"action":"subscribe","symbols":["A1","A2"]}`)
	m2.until("subscribed")

	// Another user still finds room on the feed.
	other := h.browser(sess("alice"))
	other.send(`{"action":"subscribe","symbols":["B1","B2"]}`)
	other.until("subscribed")

	// Freeing a symbol in every session of the user that holds it makes
	// room for one new symbol; freeing it in only one does not.
	m1.send(`{"action":"unsubscribe","symbols":["A4"]}`)
	m1.until("unsubscribed")
	m2.send(`{"action":"subscribe","symbols":["A7"]}`)
	m2.until("subscribed")
	m2.send(`{"action":"subscribe","symbols":["A8"]}`)
	if m := m2.until("error"); m.Code != codeTooManySymbols {
		t.Fatalf("got %s, want too_many_symbols", m.raw)
	}
	m2.send(`{"action":"unsubscribe","symbols":["A1"]}`) // m0 still holds A1
	m2.until("unsubscribed")
	m2.send(`{"action":"subscribe","symbols":["A8"]}`)
	if m := m2.until("error"); m.Code != codeTooManySymbols {
		t.Fatalf("got %s, want too_many_symbols while another session holds A1", m.raw)
	}

	// Closing a socket releases its symbols from the user's count.
	_ = m0.c.CloseNow()
	eventually(t, "m0's symbols released", func() bool {
		h.relay.hubs["demo"].mu.Lock()
		defer h.relay.hubs["demo"].mu.Unlock()
		return len(h.relay.hubs["demo"].users["u:mallory"]) == 4 // A2 (m2), A5, A6, A7
	})
	m2.send(`{"action":"subscribe","symbols":["A8"]}`)
	m2.until("subscribed")
}
