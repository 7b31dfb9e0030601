package relay

import (
	"slices"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/session"
)

// TestRoleSymbolPolicy: a session's roles narrow its symbol limit and
// allowlist on a feed; denials are error messages, the socket stays open,
// and they are counted.
func TestRoleSymbolPolicy(t *testing.T) {
	h := newHarness(t, vendorOpts{connCap: -1}, func(c *Config) {
		c.MaxSymbols = 5
		c.Access = func(s *session.Session, feed string) config.FeedAccess {
			if feed != "demo" {
				t.Errorf("Access asked for feed %q", feed)
			}
			if s.User == "free" {
				return config.FeedAccess{Allowed: true, MaxSymbols: 2, Symbols: map[string]bool{"AAPL": true, "MSFT": true, "TSLA": true}}
			}
			return config.FeedAccess{Allowed: true}
		}
	})
	free := h.browser(sess("free"))
	pro := h.browser(sess("pro"))

	free.send(`{"action":"subscribe","symbols":["AAPL","IBM","SPY"]}`)
	m := free.until("error")
	if m.Code != codeForbiddenSymbol || !slices.Equal(m.Symbols, []string{"IBM", "SPY"}) {
		t.Fatalf("got %s, want forbidden_symbol naming IBM and SPY", m.raw)
	}
	// Nothing was partially applied, and the socket is still usable.
	free.send(`{"action":"subscribe","symbols":["AAPL","MSFT"]}`)
	if m := free.until("subscribed"); !slices.Equal(m.Symbols, []string{"AAPL", "MSFT"}) {
		t.Fatalf("got %s", m.raw)
	}
	// The role's limit (2) applies below the feed's (5).
	free.send(`{"action":"subscribe","symbols":["TSLA"]}`)
	if m := free.until("error"); m.Code != codeTooManySymbols {
		t.Fatalf("got %s, want too_many_symbols", m.raw)
	}
	// Another session keeps the feed's limit and every symbol.
	pro.send(`{"action":"subscribe","symbols":["IBM","SPY","QQQ","AAPL","MSFT"]}`)
	pro.until("subscribed")

	if got := gauge(t, h.metrics.GuardDenials.WithLabelValues("symbol", codeForbiddenSymbol)); got != 1 {
		t.Fatalf("forbidden_symbol denials counted = %v, want 1", got)
	}
	eventually(t, "the denial logged", func() bool { return strings.Contains(h.log.String(), "ws symbols denied by role") })
}

// TestRoleLimitInReady: the ready message tells the session its own limit.
func TestRoleLimitInReady(t *testing.T) {
	h := newHarness(t, vendorOpts{connCap: -1}, func(c *Config) {
		c.MaxSymbols = 50
		c.Access = func(s *session.Session, _ string) config.FeedAccess {
			if s.User == "free" {
				return config.FeedAccess{Allowed: true, MaxSymbols: 20}
			}
			return config.FeedAccess{Allowed: true, MaxSymbols: 80} // never above the feed's
		}
	})
	for user, want := range map[string]int{"free": 20, "pro": 50} {
		c, _, err := h.dial("demo", sess(user), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.CloseNow() })
		b := &browser{t: t, c: c, user: user}
		m := b.next()
		if m.Type != "ready" || m.Limits == nil || m.Limits.MaxSymbols != want {
			t.Errorf("%s: first message %s, want ready with max_symbols %d", user, m.raw, want)
		}
	}
}
