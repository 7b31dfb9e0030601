package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tickgate/tickgate/config"
)

// vendorMsgRE is the exact form the fake vendor writes: relayed messages
// must arrive byte for byte.
var vendorMsgRE = regexp.MustCompile(`^\{"ev":"T","sym":"([A-Z]+)","p":\d+\.25,"s":100,"t":\d+\}$`)

func TestReadySubscribeDataUnsubscribe(t *testing.T) {
	h := newHarness(t, vendorOpts{}, func(c *Config) { c.MaxSymbols = 7 })
	c, _, err := h.dial("demo", sess("alice"), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	b := &browser{t: t, c: c, user: "alice"}
	ready := b.next()
	if got, want := string(ready.raw), `{"type":"ready","feed":"demo","limits":{"max_symbols":7}}`; got != want {
		t.Fatalf("ready = %s, want %s", got, want)
	}

	b.send(`{"action":"subscribe","symbols":["aapl","MSFT","AAPL"]}`)
	ack := b.until("subscribed")
	if got, want := string(ack.raw), `{"type":"subscribed","symbols":["AAPL","MSFT"]}`; got != want {
		t.Fatalf("ack = %s, want %s", got, want)
	}
	seen := map[string]bool{}
	for !seen["AAPL"] || !seen["MSFT"] {
		m := b.next()
		if m.Type != "data" {
			t.Fatalf("got %s, want data", m.raw)
		}
		if m.Feed != "demo" || len(m.Messages) == 0 {
			t.Fatalf("bad data message %s", m.raw)
		}
		for _, raw := range m.Messages {
			sub := vendorMsgRE.FindSubmatch(raw)
			if sub == nil {
				t.Fatalf("vendor message changed on the way: %s", raw)
			}
			seen[string(sub[1])] = true
		}
	}
	if got := gauge(t, h.metrics.UpstreamWSConnections.WithLabelValues("demo")); got != 1 {
		t.Errorf("upstream connections gauge = %v, want 1", got)
	}
	if got := gauge(t, h.metrics.WSClients); got != 1 {
		t.Errorf("ws clients gauge = %v, want 1", got)
	}
	if got := gauge(t, h.metrics.WSMessagesIn.WithLabelValues("demo")); got == 0 {
		t.Error("messages-in counter did not move")
	}

	b.send(`{"action":"unsubscribe","symbols":["AAPL"]}`)
	if got, want := string(b.until("unsubscribed").raw), `{"type":"unsubscribed","symbols":["AAPL"]}`; got != want {
		t.Fatalf("unsubscribe ack = %s, want %s", got, want)
	}
	for range 5 {
		m := b.next()
		if m.Type != "data" {
			t.Fatalf("got %s, want data", m.raw)
		}
		if syms := dataSymbols(t, m); slices.Contains(syms, "AAPL") {
			t.Fatalf("data for AAPL after its unsubscribe ack: %s", m.raw)
		}
	}
	eventually(t, "vendor unsubscribed AAPL", func() bool { return slices.Equal(h.vendor.subscribed(), []string{"MSFT"}) })

	b.send(`{"action":"ping"}`)
	if got := string(b.until("pong").raw); got != `{"type":"pong"}` {
		t.Fatalf("pong = %s", got)
	}
	if h.sessions.touchCount("sk-alice") == 0 {
		t.Error("control messages did not touch the session")
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
	eventually(t, "vendor unsubscribed everything", func() bool { return len(h.vendor.subscribed()) == 0 })
	eventually(t, "client gauges back to 0", func() bool {
		return gauge(t, h.metrics.WSClients) == 0 && gauge(t, h.metrics.WSClientsByFeed.WithLabelValues("demo")) == 0
	})
	if got := h.sessions.watchers("sk-alice"); got != 0 {
		t.Errorf("session watches left: %d", got)
	}
}

func TestRecoverableErrorsKeepConnection(t *testing.T) {
	h := newHarness(t, vendorOpts{}, func(c *Config) { c.ControlRate = 1000 })
	b := h.browser(sess("alice"))
	tests := []struct {
		name, msg, code string
		binary          bool
	}{
		{name: "malformed JSON", msg: `{"action":"subscribe"`, code: codeBadMessage},
		{name: "not an object", msg: `["subscribe"]`, code: codeBadMessage},
		{name: "null", msg: `null`, code: codeBadMessage},
		{name: "trailing data", msg: `{"action":"ping"} x`, code: codeBadMessage},
		{name: "unknown action", msg: `{"action":"trade","symbols":["AAPL"]}`, code: codeBadMessage},
		{name: "no action", msg: `{"symbols":["AAPL"]}`, code: codeBadMessage},
		{name: "symbols missing", msg: `{"action":"subscribe"}`, code: codeBadMessage},
		{name: "symbols empty", msg: `{"action":"subscribe","symbols":[]}`, code: codeBadMessage},
		{name: "symbols not strings", msg: `{"action":"subscribe","symbols":[1,2]}`, code: codeBadMessage},
		{name: "symbols a string", msg: `{"action":"subscribe","symbols":"AAPL"}`, code: codeBadMessage},
		{name: "invalid UTF-8", msg: "{\"action\":\"subscribe\",\"symbols\":[\"A\xff\"]}", code: codeBadMessage},
		{name: "binary frame", msg: `{"action":"ping"}`, binary: true, code: codeBadMessage},
		{name: "symbol with space", msg: `{"action":"subscribe","symbols":["AA PL"]}`, code: codeInvalidSymbol},
		{name: "symbol too long", msg: `{"action":"subscribe","symbols":["` + strings.Repeat("A", 33) + `"]}`, code: codeInvalidSymbol},
		{name: "empty symbol", msg: `{"action":"subscribe","symbols":[""]}`, code: codeInvalidSymbol},
		{name: "leading dot", msg: `{"action":"subscribe","symbols":[".AAPL"]}`, code: codeInvalidSymbol},
		{name: "script", msg: `{"action":"subscribe","symbols":["<script>"]}`, code: codeInvalidSymbol},
		{name: "one bad among good", msg: `{"action":"subscribe","symbols":["MSFT","A*"]}`, code: codeInvalidSymbol},
		{name: "unsubscribe invalid", msg: `{"action":"unsubscribe","symbols":["A B"]}`, code: codeInvalidSymbol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ := websocket.MessageText
			if tc.binary {
				typ = websocket.MessageBinary
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			if err := b.c.Write(ctx, typ, []byte(tc.msg)); err != nil {
				t.Fatal(err)
			}
			m := b.until("error")
			if m.Code != tc.code || m.Message == "" {
				t.Fatalf("got %s, want error code %s", m.raw, tc.code)
			}
			if strings.Contains(m.Message, "AA PL") || strings.Contains(m.Message, "<script>") {
				t.Errorf("error message echoes the input: %s", m.Message)
			}
			b.send(`{"action":"ping"}`)
			b.until("pong")
		})
	}
	// Nothing was subscribed by the rejected requests (MSFT came with A*).
	if got := h.vendor.subscribed(); len(got) != 0 {
		t.Errorf("vendor subscriptions after rejected requests: %v", got)
	}
}

func TestTooManySymbols(t *testing.T) {
	h := newHarness(t, vendorOpts{connCap: -1}, func(c *Config) { c.MaxSymbols = 3 })
	a1 := h.browser(sess("alice"))
	a2 := h.browser(sess("alice"))
	bob := h.browser(sess("bob"))

	a1.send(`{"action":"subscribe","symbols":["AAPL","MSFT"]}`)
	a1.until("subscribed")
	a1.send(`{"action":"subscribe","symbols":["TSLA","SPY"]}`)
	if m := a1.until("error"); m.Code != codeTooManySymbols {
		t.Fatalf("got %s, want too_many_symbols", m.raw)
	}
	// Nothing was partially applied: TSLA fits exactly.
	a1.send(`{"action":"subscribe","symbols":["TSLA"]}`)
	if m := a1.until("subscribed"); !slices.Equal(m.Symbols, []string{"TSLA"}) {
		t.Fatalf("got %s", m.raw)
	}
	// The limit is per session across its sockets: symbols it already
	// holds are free, a new one is not.
	a2.send(`{"action":"subscribe","symbols":["AAPL","MSFT","TSLA"]}`)
	a2.until("subscribed")
	a2.send(`{"action":"subscribe","symbols":["SPY"]}`)
	if m := a2.until("error"); m.Code != codeTooManySymbols {
		t.Fatalf("got %s, want too_many_symbols", m.raw)
	}
	// Another session has its own budget.
	bob.send(`{"action":"subscribe","symbols":["SPY","QQQ","IBM"]}`)
	bob.until("subscribed")
	// Releasing on one socket while the other holds it frees nothing;
	// releasing on both does.
	a1.send(`{"action":"unsubscribe","symbols":["TSLA"]}`)
	a1.until("unsubscribed")
	a2.send(`{"action":"subscribe","symbols":["SPY"]}`)
	if m := a2.until("error"); m.Code != codeTooManySymbols {
		t.Fatalf("got %s, want too_many_symbols", m.raw)
	}
	a2.send(`{"action":"unsubscribe","symbols":["TSLA"]}`)
	a2.until("unsubscribed")
	a2.send(`{"action":"subscribe","symbols":["SPY"]}`)
	a2.until("subscribed")
}

func TestFeedSymbolCap(t *testing.T) {
	h := newHarness(t, vendorOpts{}, func(c *Config) {
		f := c.Feeds["demo"]
		f.Adapter.MaxSymbols = 2
		c.Feeds["demo"] = f
	})
	a := h.browser(sess("alice"))
	b := h.browser(sess("bob"))
	a.send(`{"action":"subscribe","symbols":["AAPL","MSFT"]}`)
	a.until("subscribed")
	b.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	b.until("subscribed") // already upstream: free
	b.send(`{"action":"subscribe","symbols":["TSLA"]}`)
	if m := b.until("error"); m.Code != codeTooManySymbols {
		t.Fatalf("got %s, want too_many_symbols", m.raw)
	}
}

func TestOversizedFrameCloses1009(t *testing.T) {
	h := newHarness(t, vendorOpts{}, nil)
	b := h.browser(sess("alice"))
	b.send(`{"action":"subscribe","symbols":["` + strings.Repeat("A", 5000) + `"]}`)
	if got := b.closed(); got != websocket.StatusMessageTooBig {
		t.Fatalf("close code %d, want 1009", got)
	}
}

func TestControlFloodCloses4008(t *testing.T) {
	h := newHarness(t, vendorOpts{}, func(c *Config) { c.ControlRate = 5 })
	b := h.browser(sess("alice"))
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	for range 50 {
		if err := b.c.Write(ctx, websocket.MessageText, []byte(`{"action":"ping"}`)); err != nil {
			break // closed under us: fine
		}
	}
	if got := b.closed(); got != 4008 {
		t.Fatalf("close code %d, want 4008", got)
	}
}

func TestRefusedBeforeUpgrade(t *testing.T) {
	h := newHarness(t, vendorOpts{}, nil)
	tests := []struct {
		name, feed, sess, origin string
		status                   int
		code                     string
	}{
		{"no session", "demo", "", testOrigin, http.StatusUnauthorized, "no_session"},
		{"no origin", "demo", sess("alice"), "", http.StatusForbidden, "origin"},
		{"foreign origin", "demo", sess("alice"), "https://evil.example", http.StatusForbidden, "origin"},
		{"look-alike origin", "demo", sess("alice"), "https://app.example.test.evil.example", http.StatusForbidden, "origin"},
		{"other scheme", "demo", sess("alice"), "http://app.example.test", http.StatusForbidden, "origin"},
		{"other port", "demo", sess("alice"), "https://app.example.test:8443", http.StatusForbidden, "origin"},
		{"null origin", "demo", sess("alice"), "null", http.StatusForbidden, "origin"},
		{"origin with path", "demo", sess("alice"), testOrigin + "/x", http.StatusForbidden, "origin"},
		{"unknown feed", "nope", sess("alice"), testOrigin, http.StatusNotFound, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, resp, err := h.dial(tc.feed, tc.sess, tc.origin)
			if err == nil {
				c.CloseNow()
				t.Fatal("upgrade succeeded")
			}
			if resp == nil {
				t.Fatalf("no HTTP answer: %v", err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			assertJSONError(t, resp, tc.code)
		})
	}
	if got := gauge(t, h.metrics.WSClients); got != 0 {
		t.Errorf("clients gauge %v after refusals", got)
	}
	_, _, _, _, _, open := h.vendor.stats()
	if open != 0 {
		t.Error("a refused upgrade opened the upstream")
	}

	// A case-different but equal origin is accepted; a plain GET is 426.
	c, _, err := h.dial("demo", sess("alice"), strings.ToUpper(testOrigin[:8])+testOrigin[8:])
	if err != nil {
		t.Fatalf("equal origin refused: %v", err)
	}
	c.CloseNow()
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/ws/demo", nil)
	req.Header.Set("X-Test-Session", sess("alice"))
	req.Header.Set("Origin", testOrigin)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("plain GET: status %d, want 426", resp.StatusCode)
	}
	assertJSONError(t, resp, "upgrade_required")
}

func assertJSONError(t *testing.T, resp *http.Response, code string) {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("body %q is not JSON: %v", body, err)
	}
	if e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("body %s, want code %s", body, code)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
}

func TestSessionEndCloses4001(t *testing.T) {
	h := newHarness(t, vendorOpts{}, nil)
	a1 := h.browser(sess("alice"))
	a2 := h.browser(sess("alice"))
	bob := h.browser(sess("bob"))
	a1.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	a1.until("subscribed")
	a2.send(`{"action":"subscribe","symbols":["TSLA"]}`)
	a2.until("subscribed")
	eventually(t, "vendor subscribed", func() bool { return len(h.vendor.subscribed()) == 2 })

	start := time.Now()
	h.sessions.end("sk-alice")
	for _, b := range []*browser{a1, a2} {
		if got := b.closed(); got != 4001 {
			t.Fatalf("close code %d, want 4001", got)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Logf("session end took %s to close the sockets", d) // not an assertion: loaded machines
	}
	eventually(t, "alice's symbols released upstream", func() bool { return len(h.vendor.subscribed()) == 0 })
	bob.send(`{"action":"ping"}`)
	bob.until("pong")
}

func TestTouchNotFoundCloses4001(t *testing.T) {
	h := newHarness(t, vendorOpts{}, nil)
	b := h.browser(sess("alice"))
	// The store says the session is gone, but no watch fired (another
	// replica ended it): the next control message finds out.
	h.sessions.mu.Lock()
	h.sessions.ended["sk-alice"] = true
	h.sessions.mu.Unlock()
	b.send(`{"action":"ping"}`)
	if got := b.closed(); got != 4001 {
		t.Fatalf("close code %d, want 4001", got)
	}
}

func TestTooManyConnections4008(t *testing.T) {
	h := newHarness(t, vendorOpts{}, func(c *Config) { c.MaxConns = 2 })
	a1 := h.browser(sess("alice"))
	h.browser(sess("alice"))
	c, _, err := h.dial("demo", sess("alice"), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	third := &browser{t: t, c: c, user: "alice#3"}
	if got := third.closed(); got != 4008 {
		t.Fatalf("third socket: close code %d, want 4008", got)
	}
	h.browser(sess("bob")) // other sessions are not affected
	_ = a1.c.Close(websocket.StatusNormalClosure, "")
	// The slot is free again once the first socket is gone.
	eventually(t, "slot released", func() bool {
		c, _, err := h.dial("demo", sess("alice"), testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		m, err := (&browser{t: t, c: c}).read()
		return err == nil && m.Type == "ready"
	})
}

func TestMultiplexesOneUpstream(t *testing.T) {
	h := newHarness(t, vendorOpts{connCap: 1}, nil)
	const n = 50
	symbols := []string{"AAPL", "MSFT", "TSLA", "SPY", "QQQ"}
	browsers := make([]*browser, n)
	for i := range browsers {
		browsers[i] = h.browser(sess(fmt.Sprintf("user%d", i)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, b := range browsers {
		want := symbols[i%len(symbols)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			if err := b.c.Write(ctx, websocket.MessageText, []byte(`{"action":"subscribe","symbols":["`+want+`"]}`)); err != nil {
				errs <- err
				return
			}
			for {
				m, err := b.read()
				if err != nil {
					errs <- fmt.Errorf("%s: %w", b.user, err)
					return
				}
				if m.Type != "data" {
					continue
				}
				for _, raw := range m.Messages {
					var v struct{ Sym string }
					_ = json.Unmarshal(raw, &v)
					if v.Sym != want {
						errs <- fmt.Errorf("%s got %s data, subscribed %s", b.user, v.Sym, want)
						return
					}
				}
				return
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	dials, authOK, _, busy, _, _ := h.vendor.stats()
	if dials != 1 || authOK != 1 || busy != 0 {
		t.Errorf("vendor saw %d dials, %d auths, %d refusals; want one connection", dials, authOK, busy)
	}
}

func TestUpstreamReconnectResubscribes(t *testing.T) {
	h := newHarness(t, vendorOpts{}, nil)
	b := h.browser(sess("alice"))
	b.send(`{"action":"subscribe","symbols":["AAPL","MSFT"]}`)
	b.until("subscribed")
	b.until("data")

	h.vendor.dropAll()
	b.awaitStatus("reconnecting")
	b.awaitStatus("connected")
	seen := map[string]bool{}
	for !seen["AAPL"] || !seen["MSFT"] {
		for _, s := range dataSymbols(t, b.until("data")) {
			seen[s] = true
		}
	}
	dials, authOK, _, _, _, _ := h.vendor.stats()
	if dials < 2 || authOK < 2 {
		t.Errorf("vendor saw %d dials, %d auths; want a reconnect", dials, authOK)
	}
	subs := 0
	for _, m := range h.vendor.receivedCopy() {
		if m == `{"action":"subscribe","symbols":["AAPL","MSFT"]}` {
			subs++
		}
	}
	if subs != 2 {
		t.Errorf("vendor received the subscription %d times, want 2 (once per connection): %q", subs, h.vendor.receivedCopy())
	}
	if got := gauge(t, h.metrics.WSReconnects.WithLabelValues("demo")); got < 1 {
		t.Errorf("reconnects counter %v", got)
	}
}

func TestNewBrowserDuringOutageIsTold(t *testing.T) {
	h := newHarness(t, vendorOpts{}, nil)
	a := h.browser(sess("alice"))
	a.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	a.until("subscribed")
	a.until("data")
	h.vendor.setRefuse(true)
	h.vendor.dropAll()
	a.awaitStatus("reconnecting")
	eventually(t, "a refused reconnect", func() bool { return gauge(t, h.metrics.WSReconnects.WithLabelValues("demo")) >= 2 })

	b := h.browser(sess("bob")) // joins during the outage
	b.awaitStatus("reconnecting")
	b.send(`{"action":"subscribe","symbols":["MSFT"]}`)
	b.until("subscribed")

	h.vendor.setRefuse(false)
	a.awaitStatus("connected")
	b.awaitStatus("connected")
	if got := dataSymbols(t, b.until("data")); got[0] != "MSFT" {
		t.Fatalf("bob got data for %v", got)
	}
	eventually(t, "both symbols resubscribed", func() bool {
		return slices.Equal(h.vendor.subscribed(), []string{"AAPL", "MSFT"})
	})
}

// dialVendor opens and authenticates a raw connection to the fake vendor.
func dialVendor(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"auth","key":"`+testKey+`"}`)); err != nil {
		t.Fatal(err)
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("squatter: %v", err)
		}
		if strings.Contains(string(b), "auth_success") {
			break
		}
	}
	// Keep reading in the background so pings and closes are handled.
	go func() {
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	return c
}

func TestBusyVendorBacksOffThenRecovers(t *testing.T) {
	h := newHarness(t, vendorOpts{connCap: 1}, func(c *Config) { c.ReconnectMin, c.ReconnectMax = 20*time.Millisecond, 200*time.Millisecond })
	squatter := dialVendor(t, h.vendor.URL)
	b := h.browser(sess("alice"))
	b.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	b.until("subscribed")
	b.awaitStatus("reconnecting")
	eventually(t, "a refusal", func() bool { _, _, _, busy, _, _ := h.vendor.stats(); return busy >= 1 })
	if ready := h.relay.Ready(); ready["demo"] {
		t.Error("Ready says demo is ready while the vendor refuses")
	}
	_ = squatter.Close(websocket.StatusNormalClosure, "")
	b.awaitStatus("connected")
	if got := dataSymbols(t, b.until("data")); got[0] != "AAPL" {
		t.Fatalf("data for %v", got)
	}
	if ready := h.relay.Ready(); !ready["demo"] {
		t.Error("Ready says demo is not ready after recovery")
	}
}

func TestBackoffBounds(t *testing.T) {
	h := &hub{r: &Relay{cfg: Config{ReconnectMin: 100 * time.Millisecond, ReconnectMax: 10 * time.Second}}}
	tests := []struct {
		attempt, steps int
		lo, hi         time.Duration
	}{
		{0, 0, 50 * time.Millisecond, 100 * time.Millisecond},
		{1, 0, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 0, 400 * time.Millisecond, 800 * time.Millisecond},
		{0, busySteps, 400 * time.Millisecond, 800 * time.Millisecond},
		{20, 0, 5 * time.Second, 10 * time.Second},
		{1000, busySteps, 5 * time.Second, 10 * time.Second},
	}
	for _, tc := range tests {
		for range 50 {
			if d := h.backoff(tc.attempt, tc.steps); d < tc.lo || d > tc.hi {
				t.Fatalf("backoff(%d,%d) = %s, want in [%s,%s]", tc.attempt, tc.steps, d, tc.lo, tc.hi)
			}
		}
	}
}

func TestAuthRefusedThenReReadKeyWorks(t *testing.T) {
	h := newHarness(t, vendorOpts{}, nil)
	h.secrets.set("stale-key-0000000000")
	h.secrets.mu.Lock()
	h.secrets.next = testKey // the rotated key the provider now holds
	h.secrets.mu.Unlock()
	b := h.browser(sess("alice"))
	b.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	b.until("subscribed")
	b.until("data")
	if got := h.secrets.invalidated(); got != 1 {
		t.Errorf("Invalidate called %d times, want 1", got)
	}
	_, authOK, authBad, _, _, _ := h.vendor.stats()
	if authOK != 1 || authBad != 1 {
		t.Errorf("vendor saw %d good and %d bad auths, want 1 and 1", authOK, authBad)
	}
}

func TestAuthRefusedCloses1013UntilKeyChanges(t *testing.T) {
	h := newHarness(t, vendorOpts{}, func(c *Config) { c.ReconnectMin, c.ReconnectMax = 20*time.Millisecond, 100*time.Millisecond })
	h.secrets.set("wrong-key-0000000000")
	b := h.browser(sess("alice"))
	if got := b.closed(); got != websocket.StatusTryAgainLater {
		t.Fatalf("close code %d, want 1013", got)
	}
	// While the key is refused, new sockets are closed with 1013 at once.
	c, _, err := h.dial("demo", sess("alice"), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if got := (&browser{t: t, c: c}).closed(); got != websocket.StatusTryAgainLater {
		t.Fatalf("new socket: close code %d, want 1013", got)
	}
	if h.relay.Ready()["demo"] {
		t.Error("Ready says demo is ready with a refused key")
	}
	if h.secrets.invalidated() == 0 {
		t.Error("the refused key was not invalidated")
	}
	// Rotation: the provider gets the right key; the next retry uses it.
	h.secrets.set(testKey)
	eventually(t, "feed ready again", func() bool { return h.relay.Ready()["demo"] })
	b = h.browser(sess("alice"))
	b.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	b.until("subscribed")
	b.until("data")
}

func TestMissingSecretCloses1013(t *testing.T) {
	h := newHarness(t, vendorOpts{}, nil)
	h.secrets.mu.Lock()
	h.secrets.err = fmt.Errorf("not found")
	h.secrets.mu.Unlock()
	b := h.browser(sess("alice"))
	if got := b.closed(); got != websocket.StatusTryAgainLater {
		t.Fatalf("close code %d, want 1013", got)
	}
	if dials, _, _, _, _, _ := h.vendor.stats(); dials != 0 {
		t.Errorf("vendor dialled %d times without a key", dials)
	}
}

func TestAuthModes(t *testing.T) {
	tests := []struct {
		mode    string
		adapter config.Adapter
	}{
		{authMessage, config.Adapter{Preset: "marketsim"}},
		{authQuery, config.Adapter{Preset: "marketsim", Auth: config.Auth{Mode: "query", Param: "apikey"}}},
		{authHeader, config.Adapter{Preset: "marketsim", Auth: config.Auth{Mode: "header", Param: "X-Api-Key"}}},
		{authNone, config.Adapter{Preset: "marketsim", Auth: config.Auth{Mode: "none"}}},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			h := newHarness(t, vendorOpts{mode: tc.mode}, func(c *Config) {
				f := c.Feeds["demo"]
				f.Adapter = tc.adapter
				c.Feeds["demo"] = f
			})
			b := h.browser(sess("alice"))
			b.send(`{"action":"subscribe","symbols":["IBM"]}`)
			b.until("subscribed")
			if got := dataSymbols(t, b.until("data")); got[0] != "IBM" {
				t.Fatalf("data for %v", got)
			}
		})
	}
	t.Run("query refused", func(t *testing.T) {
		h := newHarness(t, vendorOpts{mode: authQuery}, func(c *Config) {
			f := c.Feeds["demo"]
			f.Adapter = tests[1].adapter
			c.Feeds["demo"] = f
		})
		h.secrets.set("wrong-key-0000000000")
		b := h.browser(sess("alice"))
		if got := b.closed(); got != websocket.StatusTryAgainLater {
			t.Fatalf("close code %d, want 1013", got)
		}
		if strings.Contains(h.log.String(), "wrong-key") {
			t.Error("the refused key was logged")
		}
	})
}

func TestVendorControlAndKeyNeverRelayed(t *testing.T) {
	h := newHarness(t, vendorOpts{}, nil)
	b := h.browser(sess("alice"))
	b.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	b.until("subscribed")
	b.until("data")
	h.vendor.broadcast(`[{"ev":"status","status":"notice","message":"hello"},{"ev":"T","sym":"AAPL","echo":"` + testKey + `"}]`)
	h.vendor.broadcast(`{"ev":"status","status":"single"}`)
	h.vendor.broadcast(`[{"ev":"T","price":1},42,"x",{"ev":"T","sym":17}]`)
	h.vendor.broadcast(`not json`)
	h.vendor.broadcast(`[{"ev":"T","sym":"aapl","p":1,"marker":"lowercase-routed"}]`)
	eventually(t, "key guard", func() bool { return gauge(t, h.metrics.WSDropped.WithLabelValues("demo", "key_guard")) == 1 })
	eventually(t, "unroutable", func() bool { return gauge(t, h.metrics.WSDropped.WithLabelValues("demo", "unroutable")) >= 5 })
	for {
		m := b.next()
		if strings.Contains(string(m.raw), testKey) || strings.Contains(string(m.raw), `"status"`) && m.Type == "data" {
			t.Fatalf("relayed %s", m.raw)
		}
		dataSymbols(t, m) // fails on a relayed status message
		if strings.Contains(string(m.raw), "lowercase-routed") {
			break
		}
	}
}

func TestCloseSendsGoingAway(t *testing.T) {
	h := newHarness(t, vendorOpts{}, nil)
	a := h.browser(sess("alice"))
	b := h.browser(sess("bob"))
	a.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	a.until("subscribed")
	a.until("data")
	done := make(chan struct{})
	go func() { h.relay.Close(); close(done) }()
	for _, br := range []*browser{a, b} {
		if got := br.closed(); got != websocket.StatusGoingAway {
			t.Fatalf("close code %d, want 1001", got)
		}
	}
	select {
	case <-done:
	case <-time.After(waitLong):
		t.Fatal("Close did not return")
	}
	h.relay.Close() // safe twice
	eventually(t, "vendor connection closed", func() bool { _, _, _, _, _, open := h.vendor.stats(); return open == 0 })
	c, resp, err := h.dial("demo", sess("alice"), testOrigin)
	if err == nil {
		c.CloseNow()
		t.Fatal("upgrade after Close succeeded")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after Close: %v, want 503", err)
	}
	assertJSONError(t, resp, "shutting_down")
}

func TestUpstreamMessageRateRespected(t *testing.T) {
	// 20 browsers each asking for their own symbol at once must not make
	// the relay exceed the vendor's 10 messages per second.
	h := newHarness(t, vendorOpts{}, nil)
	var browsers []*browser
	for i := range 20 {
		browsers = append(browsers, h.browser(sess(fmt.Sprintf("u%d", i))))
	}
	for i, b := range browsers {
		b.send(fmt.Sprintf(`{"action":"subscribe","symbols":["S%c%c"]}`, 'A'+i/26, 'A'+i%26))
	}
	for _, b := range browsers {
		b.until("subscribed")
	}
	eventually(t, "all 20 symbols upstream", func() bool { return len(h.vendor.subscribed()) == 20 })
	for i, b := range browsers {
		b.send(fmt.Sprintf(`{"action":"unsubscribe","symbols":["S%c%c"]}`, 'A'+i/26, 'A'+i%26))
	}
	eventually(t, "all symbols released", func() bool { return len(h.vendor.subscribed()) == 0 })
	if _, _, _, _, violations, _ := h.vendor.stats(); violations != 0 {
		t.Fatalf("the relay broke the vendor's message rate %d times", violations)
	}
	if dials, _, _, _, _, _ := h.vendor.stats(); dials != 1 {
		t.Errorf("%d dials, want 1", dials)
	}
}

func TestLingerKeepsSymbolAcrossReload(t *testing.T) {
	h := newHarness(t, vendorOpts{}, func(c *Config) { c.Linger = time.Hour })
	a := h.browser(sess("alice"))
	a.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	a.until("subscribed")
	a.until("data")
	a.send(`{"action":"unsubscribe","symbols":["AAPL"]}`)
	a.until("unsubscribed")
	a.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	a.until("subscribed")
	a.until("data")
	var subs, unsubs int
	for _, m := range h.vendor.receivedCopy() {
		subs += strings.Count(m, `"subscribe"`)
		unsubs += strings.Count(m, `"unsubscribe"`)
	}
	if subs != 1 || unsubs != 0 {
		t.Errorf("vendor got %d subscribes and %d unsubscribes; linger should have kept AAPL", subs, unsubs)
	}
}

func TestSlowBrowserDoesNotSlowOthers(t *testing.T) {
	h := newHarnessSmallBuffers(t)
	slow := h.browser(sess("slow"))
	healthy := h.browser(sess("healthy"))
	slow.send(`{"action":"subscribe","symbols":["AAPL","MSFT","TSLA"]}`)
	slow.until("subscribed")
	healthy.send(`{"action":"subscribe","symbols":["AAPL","MSFT","TSLA"]}`)
	healthy.until("subscribed")
	// slow never reads again; healthy keeps receiving until slow is gone.
	for i := 0; ; i++ {
		healthy.until("data")
		if gauge(t, h.metrics.WSClientsByFeed.WithLabelValues("demo")) == 1 {
			break
		}
		if i > 100000 {
			t.Fatal("slow client never dropped")
		}
	}
	for range 20 {
		healthy.until("data")
	}
	dropped := gauge(t, h.metrics.WSDropped.WithLabelValues("demo", "conflated")) +
		gauge(t, h.metrics.WSDropped.WithLabelValues("demo", "slow_client"))
	if dropped == 0 {
		t.Error("nothing counted as conflated or dropped for the slow client")
	}
	if !strings.Contains(h.log.String(), "slow client") {
		t.Errorf("slow client drop not logged:\n%s", h.log.String())
	}
}

// newHarnessSmallBuffers serves the relay with tiny socket buffers and
// big vendor messages, so a browser that stops reading fills them fast.
func newHarnessSmallBuffers(t *testing.T) *harness {
	return newHarnessWith(t, vendorOpts{pad: 1000, tick: 5 * time.Millisecond}, func(c *Config) {
		c.QueueSize = 8
		c.WriteTimeout = time.Second
		f := c.Feeds["demo"]
		f.BatchWindow = config.Duration(time.Millisecond)
		c.Feeds["demo"] = f
	}, true)
}

func TestDeadBrowserDropped(t *testing.T) {
	h := newHarness(t, vendorOpts{}, func(c *Config) { c.PingInterval = 100 * time.Millisecond })
	alive := h.browser(sess("alive"))
	// dead never reads again, so it never answers a ping; alive does
	// (coder/websocket answers pings while reading).
	h.browser(sess("dead"))
	go func() {
		for {
			if _, err := alive.read(); err != nil {
				return
			}
		}
	}()
	eventually(t, "dead browser dropped", func() bool {
		return gauge(t, h.metrics.WSClientsByFeed.WithLabelValues("demo")) == 1
	})
	if !strings.Contains(h.log.String(), "ping timeout") {
		t.Errorf("drop not logged as a ping timeout:\n%s", h.log.String())
	}
}
