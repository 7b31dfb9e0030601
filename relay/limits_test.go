package relay

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/marketsim"
)

// TestFeedWideSymbolCap: many sessions, each within its own budget, cannot
// together make the relay hold more than the feed's cap upstream, even
// when the adapter has no per-connection cap.
func TestFeedWideSymbolCap(t *testing.T) {
	h := newHarness(t, vendorOpts{}, func(c *Config) {
		c.MaxFeedSymbols = 1000
		f := c.Feeds["demo"]
		f.Adapter = f.Adapter.Resolved()
		f.Adapter.Preset = ""
		f.Adapter.MaxSymbols = 0 // no vendor cap: only the feed's
		f.MaxFeedSymbols = 4     // the feed's own setting wins over Config
		c.Feeds["demo"] = f
	})
	var last *browser
	for i := range 4 {
		b := h.browser(sess(fmt.Sprintf("u%d", i)))
		b.send(fmt.Sprintf(`{"action":"subscribe","symbols":["S%d"]}`, i))
		b.until("subscribed")
		last = b
	}
	late := h.browser(sess("late"))
	late.send(`{"action":"subscribe","symbols":["S4","S5"]}`)
	m := late.until("error")
	if m.Code != codeTooManySymbols || !strings.Contains(m.Message, "limit of 4 symbols") {
		t.Fatalf("got %s, want too_many_symbols naming the feed limit", m.raw)
	}
	// A symbol the feed already holds costs nothing.
	late.send(`{"action":"subscribe","symbols":["S0"]}`)
	late.until("subscribed")
	// Freeing one makes room (Linger is off in the harness).
	last.send(`{"action":"unsubscribe","symbols":["S3"]}`)
	last.until("unsubscribed")
	late.send(`{"action":"subscribe","symbols":["S4"]}`)
	late.until("subscribed")
	eventually(t, "vendor holds S0,S1,S2,S4", func() bool {
		return slices.Equal(h.vendor.subscribed(), []string{"S0", "S1", "S2", "S4"})
	})
}

func TestFeedSymbolCapDefault(t *testing.T) {
	open := testFeed("ws://127.0.0.1:1/x")
	open.Adapter = open.Adapter.Resolved()
	open.Adapter.Preset, open.Adapter.MaxSymbols = "", 0
	r, err := New(Config{
		Feeds:          map[string]config.Feed{"a": testFeed("ws://127.0.0.1:1/x"), "b": open},
		Secrets:        &fakeSecrets{value: testKey},
		Sessions:       newSessions(),
		AllowedOrigins: []string{testOrigin},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.hubs["a"].feedCap; got != 200 {
		t.Errorf("marketsim feed cap %d, want the preset's 200 per connection", got)
	}
	if got := r.hubs["b"].feedCap; got != 1000 {
		t.Errorf("uncapped adapter: feed cap %d, want the default 1000", got)
	}
	if _, err := New(Config{Sessions: newSessions(), AllowedOrigins: []string{testOrigin}, MaxFeedSymbols: -1}); err == nil {
		t.Error("negative MaxFeedSymbols accepted")
	}
}

// TestUnknownSymbolAnswered: a symbol the vendor does not know is not
// swallowed: its subscribers get unknown_symbol and lose it, later
// subscribes are answered at once, and the rest keeps flowing.
func TestUnknownSymbolAnswered(t *testing.T) {
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
	a := h.browser(sess("alice"))
	a.send(`{"action":"subscribe","symbols":["AAPL","nope1"]}`)
	if m := a.until("subscribed"); !slices.Equal(m.Symbols, []string{"AAPL", "NOPE1"}) {
		t.Fatalf("ack %s", m.raw)
	}
	m := a.until("error")
	if m.Code != codeUnknownSymbol || !slices.Equal(m.Symbols, []string{"NOPE1"}) {
		t.Fatalf("got %s, want unknown_symbol for NOPE1", m.raw)
	}
	if got := dataSymbols(t, a.until("data")); !slices.Contains(got, "AAPL") {
		t.Fatalf("data for %v", got)
	}
	// Another browser asking for it is answered without asking the vendor.
	b := h.browser(sess("bob"))
	b.send(`{"action":"subscribe","symbols":["MSFT","NOPE1"]}`)
	if m := b.until("error"); m.Code != codeUnknownSymbol || !slices.Equal(m.Symbols, []string{"NOPE1"}) {
		t.Fatalf("got %s, want unknown_symbol for NOPE1", m.raw)
	}
	// All or nothing: MSFT was not subscribed either.
	b.send(`{"action":"subscribe","symbols":["MSFT"]}`)
	b.until("subscribed")
	// The session's budget no longer counts the refused symbol.
	if held := h.relay.hubs["demo"].sessionSymbols(sess("alice")); held != 1 {
		t.Errorf("alice holds %d symbols, want 1", held)
	}
	eventually(t, "vendor holds AAPL and MSFT", func() bool {
		st := sim.Stats()
		return len(st.SymbolsPerConn) == 1 && st.SymbolsPerConn[0] == 2
	})
	if st := sim.Stats(); st.WSConnectionsTotal != 1 {
		t.Errorf("vendor saw %d connections, want 1", st.WSConnectionsTotal)
	}
}

// sessionSymbols is how many symbols session key holds on the feed.
func (h *hub) sessionSymbols(sess string) int {
	key, _, _ := strings.Cut(sess, ":")
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions[key])
}

func TestListedSymbols(t *testing.T) {
	tests := []struct {
		raw  string
		want []string
	}{
		{`{"symbols":["aapl","MSFT","aapl"]}`, []string{"AAPL", "MSFT"}},
		{`{"symbols":"AAPL, tsla"}`, []string{"AAPL", "TSLA"}},
		{`{"symbols":"BTC/USD"}`, []string{"BTC/USD"}},
		{`{"symbols":[1,"ok",null,"bad sym"]}`, []string{"OK"}},
		{`{"symbols":42}`, []string{}},
		{`{"other":["AAPL"]}`, nil},
		{`{"symbols":["A\u0041"]}`, []string{"AA"}},
		{`{"symbols":[{"symbol":"EUR/USD"},{"other":"X"}]}`, []string{"EUR/USD"}},
	}
	for _, tc := range tests {
		got := listedSymbols([]byte(tc.raw), "symbols", "symbol", normalizeSymbol)
		if len(got) != len(tc.want) || (len(got) > 0 && !slices.Equal(got, tc.want)) {
			t.Errorf("listedSymbols(%s) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

// TestControlRateIsPerSession: a session's sockets share one budget, so
// opening more sockets does not multiply it.
func TestControlRateIsPerSession(t *testing.T) {
	h := newHarness(t, vendorOpts{}, func(c *Config) { c.ControlRate = 5 })
	a := h.browser(sess("alice"))
	b := h.browser(sess("alice"))
	other := h.browser(sess("bob"))
	for range 5 {
		a.send(`{"action":"ping"}`)
		a.until("pong")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	for range 3 {
		if err := b.c.Write(ctx, websocket.MessageText, []byte(`{"action":"ping"}`)); err != nil {
			break
		}
	}
	if got := b.closed(); got != 4008 {
		t.Fatalf("close code %d, want 4008", got)
	}
	// Another session is not affected.
	other.send(`{"action":"ping"}`)
	other.until("pong")
}

// TestNeverReadingBrowserClosed4008: a browser that stops reading while
// the vendor sends fast (the fake with big messages, and marketsim at a
// high event rate) is conflated (its queue stays bounded), then closed
// with 4008, which it reads after the data it had not read: not an
// abnormal closure. A healthy browser keeps its data throughout.
func TestNeverReadingBrowserClosed4008(t *testing.T) {
	small := func(c *Config) {
		c.QueueSize = 8
		c.SendWindow = 8 << 10 // conflated data is small: keep the test short
		c.WriteTimeout = 300 * time.Millisecond
	}
	t.Run("fake", func(t *testing.T) {
		neverReading(t, newHarness(t, vendorOpts{pad: 2000, tick: 2 * time.Millisecond}, small))
	})
	t.Run("marketsim", func(t *testing.T) {
		sim, err := marketsim.New(marketsim.Options{Keys: []string{testKey}, EventsPerSecond: 1000})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sim.Close() })
		base, err := sim.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		neverReading(t, newHarness(t, vendorOpts{}, func(c *Config) {
			small(c)
			c.Feeds = map[string]config.Feed{"demo": config.Demo(base).Feeds["demo"]}
		}))
	})
}

func neverReading(t *testing.T, h *harness) {
	syms := `["AAPL","MSFT","TSLA"]`
	slow := h.browser(sess("slow"))
	healthy := h.browser(sess("healthy"))
	slow.send(`{"action":"subscribe","symbols":` + syms + `}`)
	slow.until("subscribed")
	healthy.send(`{"action":"subscribe","symbols":` + syms + `}`)
	healthy.until("subscribed")

	hb := h.relay.hubs["demo"]
	var slowClient *client
	hb.mu.Lock()
	for c := range hb.clients {
		if c.user == "slow" {
			slowClient = c
		}
	}
	hb.mu.Unlock()
	// The healthy browser reads on until the relay decides to close the
	// slow one; then the slow one reads what it had not (as a browser on a
	// slow network would go on reading) and finds the close code.
	maxQueued := 0
	for !slowClient.closeRequested() {
		if got := dataSymbols(t, healthy.until("data")); len(got) == 0 {
			t.Fatal("empty data message")
		}
		slowClient.mu.Lock()
		maxQueued = max(maxQueued, len(slowClient.data))
		slowClient.mu.Unlock()
	}
	if maxQueued > 8 {
		t.Errorf("the slow browser's queue reached %d messages, want at most QueueSize 8", maxQueued)
	}
	if got := gauge(t, h.metrics.WSDropped.WithLabelValues("demo", "conflated")); got == 0 {
		t.Error("nothing conflated for the slow browser")
	}
	if got := slow.closed(); got != 4008 {
		t.Fatalf("slow browser: close code %d, want 4008", got)
	}
	eventually(t, "slow browser released", func() bool {
		return gauge(t, h.metrics.WSClientsByFeed.WithLabelValues("demo")) == 1
	})
	for range 20 {
		healthy.until("data")
	}
	if !strings.Contains(h.log.String(), "slow client dropped: data not taken") {
		t.Errorf("slow client not logged as stalled:\n%s", h.log.String())
	}
}

// TestRedialBacksOff: a vendor that refuses every attempt (HTTP 503, or
// the key) is dialled once per backoff sleep, and the sleeps grow with
// jitter up to ReconnectMax: never a hot loop.
func TestRedialBacksOff(t *testing.T) {
	for _, refusal := range []string{"http_503", "auth_failed"} {
		t.Run(refusal, func(t *testing.T) {
			const lo, hi = 10 * time.Millisecond, 80 * time.Millisecond
			h := newHarness(t, vendorOpts{}, func(c *Config) { c.ReconnectMin, c.ReconnectMax = lo, hi })
			if refusal == "http_503" {
				h.vendor.setRefuse(true)
			} else {
				h.secrets.set("wrong-key-0000000000")
			}
			sleeps := make(chan time.Duration)
			resume := make(chan bool)
			hb := h.relay.hubs["demo"]
			hb.sleep = func(ctx context.Context, d time.Duration) bool {
				select {
				case sleeps <- d:
				case <-ctx.Done():
					return false
				}
				select {
				case ok := <-resume:
					return ok && ctx.Err() == nil
				case <-ctx.Done():
					return false
				}
			}
			c, _, err := h.dial("demo", sess("alice"), testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.CloseNow() }()
			for i := range 8 {
				d := <-sleeps
				ceil := min(lo<<i, hi)
				if d < ceil/2 || d > ceil {
					t.Errorf("sleep %d = %s, want in [%s, %s]", i, d, ceil/2, ceil)
				}
				if dials := h.vendor.attemptCount(); dials != i+1 {
					t.Fatalf("after %d sleeps the vendor saw %d dials, want %d", i, dials, i+1)
				}
				resume <- true
			}
			_ = c.CloseNow()
			h.relay.Close() // the hook returns on the relay's context
		})
	}
}

// TestGarbageUpstreamFramesDoNotKillTheHub: frames the vendor should never
// send (marketsim's garbage fault injection) are counted and dropped; the
// connection and every browser's data carry on.
func TestGarbageUpstreamFramesDoNotKillTheHub(t *testing.T) {
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
	b := h.browser(sess("alice"))
	b.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	b.until("subscribed")
	b.until("data")
	garbage := []string{
		`[{"ev":"T","sym":"AAPL",`, // truncated
		"\xff\xfe\x00garbage",      // not UTF-8, not JSON
		``, `null`, `[]`, `42`, `"AAPL"`, `[1,2,"x",null]`,
		`{"sym":123}`, `[{"sym":{"nested":"AAPL"}}]`, `[{"ev":"T"}]`,
		strings.Repeat("[", 100000) + strings.Repeat("]", 100000),
		`[{"ev":"T","sym":"AAPL","p":1e999999}]`, // valid JSON, absurd number: relayed as is
		`{"ev":"status","status":"error","message":"unknown symbol","symbols":42}`,
	}
	for _, g := range garbage {
		if sim.InjectFrame([]byte(g)) != 1 {
			t.Fatal("marketsim did not inject")
		}
	}
	eventually(t, "garbage counted as unroutable", func() bool {
		return gauge(t, h.metrics.WSDropped.WithLabelValues("demo", "unroutable")) >= 8
	})
	for range 5 {
		if got := dataSymbols(t, b.until("data")); !slices.Contains(got, "AAPL") {
			t.Fatalf("data for %v", got)
		}
	}
	if len(b.statuses) != 0 {
		t.Errorf("browser saw upstream statuses %v: the garbage cost a reconnect", b.statuses)
	}
	if st := sim.Stats(); st.WSConnectionsTotal != 1 {
		t.Errorf("marketsim saw %d connections, want 1", st.WSConnectionsTotal)
	}
}

// TestSymbolsPackedOnFewestConnections: with a per-connection symbol cap
// and several connections allowed per key, symbols fill one connection
// before another opens; an emptied extra connection closes; the feed cap
// is connections × symbols per connection.
func TestSymbolsPackedOnFewestConnections(t *testing.T) {
	h := newHarness(t, vendorOpts{connCap: 3}, func(c *Config) {
		f := c.Feeds["demo"]
		f.Adapter.MaxSymbols = 2
		f.Adapter.MaxConnections = 3
		c.Feeds["demo"] = f
	})
	layout := func(want ...int) {
		t.Helper()
		eventually(t, fmt.Sprintf("vendor connections holding %v symbols", want), func() bool {
			return slices.Equal(h.vendor.perConn(), want)
		})
	}
	a := h.browser(sess("alice"))
	b := h.browser(sess("bob"))
	a.send(`{"action":"subscribe","symbols":["AAPL","MSFT"]}`)
	a.until("subscribed")
	layout(2)
	b.send(`{"action":"subscribe","symbols":["AAPL","TSLA"]}`) // AAPL is held: one new symbol
	b.until("subscribed")
	layout(1, 2)
	b.send(`{"action":"subscribe","symbols":["SPY"]}`) // fills the second connection
	b.until("subscribed")
	layout(2, 2)
	a.send(`{"action":"subscribe","symbols":["QQQ","IBM"]}`)
	a.until("subscribed")
	layout(2, 2, 2)
	// Every symbol's data reaches its subscribers, whichever connection
	// carries it.
	seen := map[string]bool{}
	for len(seen) < 4 {
		for _, s := range dataSymbols(t, a.until("data")) {
			seen[s] = true
		}
	}
	if !seen["AAPL"] || !seen["MSFT"] || !seen["QQQ"] || !seen["IBM"] {
		t.Fatalf("alice got data for %v", seen)
	}
	// Feed cap: 3 connections × 2.
	b.send(`{"action":"subscribe","symbols":["GOOG"]}`)
	if m := b.until("error"); m.Code != codeTooManySymbols || !strings.Contains(m.Message, "limit of 6") {
		t.Fatalf("got %s, want too_many_symbols at 6", m.raw)
	}
	if got := gauge(t, h.metrics.UpstreamWSConnections.WithLabelValues("demo")); got != 3 {
		t.Errorf("upstream connections gauge %v, want 3", got)
	}
	// Emptying a connection closes it; the others keep their symbols.
	a.send(`{"action":"unsubscribe","symbols":["QQQ","IBM"]}`)
	a.until("unsubscribed")
	layout(2, 2)
	eventually(t, "gauges follow", func() bool {
		return gauge(t, h.metrics.UpstreamWSConnections.WithLabelValues("demo")) == 2 &&
			gauge(t, h.metrics.WSSubscriptions.WithLabelValues("demo")) == 4
	})
	// Room again: the new symbol goes to a connection with room, opening
	// one because the two left are full.
	b.send(`{"action":"subscribe","symbols":["GOOG"]}`)
	b.until("subscribed")
	layout(1, 2, 2)
	if _, _, _, busy, rate, _ := h.vendor.stats(); busy != 0 || rate != 0 {
		t.Errorf("vendor saw %d refusals and %d rate violations", busy, rate)
	}
	// Losing every connection: one reconnecting, one connected when all
	// are back, every symbol resubscribed where it was.
	h.vendor.dropAll()
	for _, br := range []*browser{a, b} {
		br.awaitStatus("reconnecting")
		br.awaitStatus("connected")
	}
	layout(1, 2, 2)
	if got := dataSymbols(t, b.until("data")); len(got) == 0 {
		t.Fatal("no data after the reconnect")
	}
}

func TestScannerPathsAndWrappedArrays(t *testing.T) {
	type out struct {
		raw, sym string
		control  bool
	}
	tests := []struct {
		name, symField, msgField string
		control                  map[string]string
		frame                    string
		want                     []out
	}{
		{"dotted path", "data.s", "", nil, `{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT"}}`,
			[]out{{`{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT"}}`, "BTCUSDT", false}}},
		{"dotted path missing", "data.s", "", nil, `{"data":{"x":1}}`, []out{{`{"data":{"x":1}}`, "", false}}},
		{"path through a non-object", "data.s", "", nil, `{"data":"s"}`, []out{{`{"data":"s"}`, "", false}}},
		{"wrapped array", "s", "data", nil, `{"type":"trade","data":[{"s":"AAPL","p":1},{"s":"MSFT"},2]}`,
			[]out{{`{"s":"AAPL","p":1}`, "AAPL", false}, {`{"s":"MSFT"}`, "MSFT", false}, {"2", "", false}}},
		{"wrapped in an array of frames", "s", "data", nil, `[{"data":[{"s":"A"}]},{"s":"B"}]`,
			[]out{{`{"s":"A"}`, "A", false}, {`{"s":"B"}`, "B", false}}},
		{"control envelope stays whole", "symbol", "data", map[string]string{"channel": "heartbeat|status"},
			`{"channel":"status","data":[{"symbol":"X"}]}`, []out{{`{"channel":"status","data":[{"symbol":"X"}]}`, "", true}}},
		{"empty wrapped array", "s", "data", nil, `{"data":[]}`, nil},
		{"non-string control values", "s", "", map[string]string{"status_code": "200", "ok": "true|false"},
			`[{"status_code":200,"ok":false},{"status_code":"200","ok":true},{"status_code":201,"ok":true}]`,
			[]out{{`{"status_code":200,"ok":false}`, "", true}, {`{"status_code":"200","ok":true}`, "", true}, {`{"status_code":201,"ok":true}`, "", false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newScanner(tc.symField, tc.msgField, newMatcher(tc.control))
			msgs, ok := s.split(nil, []byte(tc.frame))
			if !ok {
				t.Fatal("not ok")
			}
			var got []out
			for _, m := range msgs {
				got = append(got, out{string(m.raw), string(m.sym), m.control})
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestVendorSymbols(t *testing.T) {
	ad := &adapter{prefixes: []string{"T.", "Q."}}
	if got := ad.vendorSyms([]string{"AAPL", "MSFT"}); !slices.Equal(got, []string{"T.AAPL", "Q.AAPL", "T.MSFT", "Q.MSFT"}) {
		t.Errorf("polygon form %q", got)
	}
	if got, ok := ad.browserSym("Q.AAPL"); !ok || got != "AAPL" {
		t.Errorf("browserSym(Q.AAPL) = %q", got)
	}
	ad = &adapter{suffix: "@trade", lower: true}
	if got := ad.vendorSyms([]string{"BTCUSDT"}); !slices.Equal(got, []string{"btcusdt@trade"}) {
		t.Errorf("binance form %q", got)
	}
	if got, ok := ad.browserSym("btcusdt@trade"); !ok || got != "BTCUSDT" {
		t.Errorf("browserSym(btcusdt@trade) = %q", got)
	}
	if got := template(`{"type":"subscribe","symbol":{{symbol}}}`).render("k", "", (&adapter{prefixes: []string{"T.", "Q."}}).vendorSyms([]string{"A"})); len(got) != 2 {
		t.Errorf("per-symbol template with two prefixes: %d messages, want 2", len(got))
	}
	var b bucket = newBucket(4, time.Now())
	now := time.Now()
	if w := b.reserveN(now, 2); w != 0 {
		t.Errorf("burst of 2: wait %s", w)
	}
	if w := b.reserveN(now, 2); w == 0 {
		t.Error("no tokens left, but no wait")
	}
}

// TestMaxLifetimeRenews: the connection is renewed before the vendor's
// lifetime ends; browsers hear reconnecting then connected and keep their
// symbols with no action.
func TestMaxLifetimeRenews(t *testing.T) {
	h := newHarness(t, vendorOpts{}, func(c *Config) {
		f := c.Feeds["demo"]
		f.Adapter.MaxLifetime = config.Duration(300 * time.Millisecond)
		c.Feeds["demo"] = f
	})
	b := h.browser(sess("alice"))
	b.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	b.until("subscribed")
	b.awaitStatus("reconnecting")
	b.awaitStatus("connected")
	if got := dataSymbols(t, b.until("data")); !slices.Contains(got, "AAPL") {
		t.Fatalf("data for %v", got)
	}
	if dials, _, _, busy, _, _ := h.vendor.stats(); dials < 2 || busy != 0 {
		t.Errorf("vendor saw %d dials and %d refusals, want at least 2 and 0", dials, busy)
	}
}

// TestBusyAnswersBackOff: the presets' "too many connections" answers
// (Polygon's max_connections status, Alpaca's 406) back the relay off
// long rather than retrying at once.
func TestBusyAnswersBackOff(t *testing.T) {
	for _, tc := range []struct{ preset, keyID, busy string }{
		{"polygon", "", `[{"ev":"status","status":"max_connections","message":"Maximum number of connections exceeded."}]`},
		{"alpaca", "AKID", `[{"T":"error","code":406,"msg":"connection limit exceeded"}]`},
	} {
		t.Run(tc.preset, func(t *testing.T) {
			r := replay{preset: tc.preset, keyID: tc.keyID, authOK: []string{tc.busy}}
			v := newReplayVendor(t, r)
			const lo = 10 * time.Millisecond
			h := newHarness(t, vendorOpts{}, func(c *Config) {
				c.Feeds = map[string]config.Feed{"demo": replayFeed(r, v.srv.URL)}
				c.ReconnectMin, c.ReconnectMax = lo, time.Second
			})
			sleeps := make(chan time.Duration, 1)
			h.relay.hubs["demo"].sleep = func(ctx context.Context, d time.Duration) bool {
				select {
				case sleeps <- d:
				default:
				}
				<-ctx.Done()
				return false
			}
			b := h.browser(sess("alice"))
			b.awaitStatus("reconnecting")
			if d := <-sleeps; d < lo<<busySteps/2 {
				t.Errorf("backoff after a busy answer %s, want at least %s", d, lo<<busySteps/2)
			}
		})
	}
}

// TestIdleLossWaitsForSubscribe: a connection lost while no symbol is
// wanted (vendors such as Coinbase close a connection without a
// subscription) is not redialled in a loop and costs browsers no status;
// the next subscribe brings it back.
func TestIdleLossWaitsForSubscribe(t *testing.T) {
	h := newHarness(t, vendorOpts{}, nil)
	b := h.browser(sess("alice"))
	// Connected as the hub sees it, not only as the vendor does: a drop
	// during authentication is a failed connect, which browsers are told.
	eventually(t, "upstream connected", func() bool {
		_, ok, _, _, _, _ := h.vendor.stats()
		return ok == 1 && gauge(t, h.metrics.UpstreamWSConnections.WithLabelValues("demo")) == 1 && h.relay.Ready()["demo"]
	})
	h.vendor.dropAll()
	eventually(t, "upstream gone", func() bool {
		return gauge(t, h.metrics.UpstreamWSConnections.WithLabelValues("demo")) == 0
	})
	if !h.relay.Ready()["demo"] {
		t.Error("an idle feed whose connection closed is reported not ready")
	}
	b.send(`{"action":"ping"}`)
	b.until("pong")
	if dials, _, _, _, _, _ := h.vendor.stats(); dials != 1 {
		t.Errorf("vendor dialled %d times while nothing was wanted, want 1", dials)
	}
	b.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	b.until("subscribed")
	if got := dataSymbols(t, b.until("data")); got[0] != "AAPL" {
		t.Fatalf("data for %v", got)
	}
	if len(b.statuses) != 0 {
		t.Errorf("browser was told %v about an idle connection", b.statuses)
	}
}
