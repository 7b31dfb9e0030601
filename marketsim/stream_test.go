package marketsim

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestStreamAuth(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	w := dial(t, s)
	w.expectStatus(StatusConnected)
	w.send(`{"action":"auth","key":"K"}`)
	w.expectStatus(StatusAuthSuccess)
	waitFor(t, "one authenticated connection", func() bool { return s.Stats().WSAuthenticated == 1 })

	w.send(`{"action":"auth","key":"K"}`)
	if e := w.expectStatus(StatusError); e.Message != "already authenticated" {
		t.Errorf("second auth: message %q", e.Message)
	}
}

func TestStreamAuthParamsAlias(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	w := dial(t, s)
	w.expectStatus(StatusConnected)
	w.send(`{"action":"auth","params":"K"}`)
	w.expectStatus(StatusAuthSuccess)
}

func TestStreamAuthFailed(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	for _, msg := range []string{`{"action":"auth","key":"wrong"}`, `{"action":"auth"}`, `{"action":"auth","key":""}`} {
		w := dial(t, s)
		w.expectStatus(StatusConnected)
		w.send(msg)
		if st := w.expectClose(CloseAuthFailed); !hasStatus(st, StatusAuthFailed) {
			t.Errorf("%s: statuses %+v, want auth_failed", msg, st)
		}
	}
	if got := s.Stats().WSAuthFailures; got != 3 {
		t.Errorf("Stats.WSAuthFailures = %d, want 3", got)
	}
}

func TestStreamAuthTimeout(t *testing.T) {
	t.Parallel()
	s := start(t, Options{AuthTimeout: 100 * time.Millisecond})
	w := dial(t, s)
	st := w.expectClose(CloseAuthTimeout)
	if !hasStatus(st, StatusConnected) || !hasStatus(st, StatusAuthTimeout) {
		t.Fatalf("statuses %+v, want connected then auth_timeout", st)
	}
	if got := s.Stats().WSAuthTimeouts; got != 1 {
		t.Errorf("Stats.WSAuthTimeouts = %d, want 1", got)
	}
}

func TestStreamBeforeAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, msg, message string
	}{
		{"subscribe", `{"action":"subscribe","symbols":["AAPL"]}`, "not authenticated"},
		{"unsubscribe", `{"action":"unsubscribe","symbols":"AAPL"}`, "not authenticated"},
		{"unknown action", `{"action":"dance"}`, "not authenticated"},
		{"no action", `{"key":"K"}`, "invalid message: missing action"},
		{"not JSON", `hello`, "invalid message: expected a JSON object"},
		{"broken JSON", `{"action":`, "invalid message: not valid JSON"},
		{"array", `["auth"]`, "invalid message: expected a JSON object"},
		{"key not a string", `{"action":"auth","key":42}`, "invalid message: key must be a string"},
		{"subscribe without symbols", `{"action":"subscribe"}`, "invalid message: symbols required"},
	}
	s := start(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := dial(t, s)
			w.expectStatus(StatusConnected)
			w.send(tt.msg)
			if e := w.expectStatus(StatusError); e.Message != tt.message {
				t.Errorf("message = %q, want %q", e.Message, tt.message)
			}
			// The connection stays usable.
			w.send(`{"action":"auth","key":"K"}`)
			w.expectStatus(StatusAuthSuccess)
			_ = w.c.Close(websocket.StatusNormalClosure, "")
			waitFor(t, "the slot to free", func() bool { return s.Stats().WSAuthenticated == 0 })
		})
	}
}

func TestStreamBinaryFrame(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	w := dial(t, s)
	w.expectStatus(StatusConnected)
	if err := w.c.Write(context.Background(), websocket.MessageBinary, []byte(`{"action":"auth","key":"K"}`)); err != nil {
		t.Fatal(err)
	}
	if e := w.expectStatus(StatusError); e.Message != "binary frames are not supported" {
		t.Errorf("message = %q", e.Message)
	}
}

func TestStreamMessageTooBig(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	w := dial(t, s)
	w.expectStatus(StatusConnected)
	w.send(`{"action":"auth","key":"` + strings.Repeat("x", wsReadLimit) + `"}`)
	w.expectClose(websocket.StatusMessageTooBig)
}

func TestStreamCapRefuseNew(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	first := dialAuthed(t, s, "K")

	second := dial(t, s)
	second.expectStatus(StatusConnected)
	second.send(`{"action":"auth","key":"K"}`)
	if st := second.expectClose(CloseMaxConnections); !hasStatus(st, StatusMaxConnections) || hasStatus(st, StatusAuthSuccess) {
		t.Fatalf("newcomer statuses %+v, want max_connections only", st)
	}
	// The first connection is untouched.
	first.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	first.expectStatus(StatusSubscribed)
	if got := s.Stats().WSRefusedByCap; got != 1 {
		t.Errorf("Stats.WSRefusedByCap = %d, want 1", got)
	}

	// Once the first leaves, the key may connect again.
	_ = first.c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the slot to free", func() bool { return s.Stats().WSAuthenticated == 0 })
	dialAuthed(t, s, "K")
}

func TestStreamCapEvictOld(t *testing.T) {
	t.Parallel()
	s := start(t, Options{CapPolicy: EvictOld})
	first := dialAuthed(t, s, "K")
	dialAuthed(t, s, "K")
	if st := first.expectClose(CloseMaxConnections); !hasStatus(st, StatusMaxConnections) {
		t.Fatalf("evicted connection statuses %+v, want max_connections", st)
	}
	st := s.Stats()
	if st.WSEvicted != 1 || st.WSAuthenticated != 1 {
		t.Errorf("Stats: evicted %d, authenticated %d; want 1, 1", st.WSEvicted, st.WSAuthenticated)
	}
}

func TestStreamCapSizes(t *testing.T) {
	t.Parallel()
	t.Run("per key", func(t *testing.T) {
		s := start(t, Options{Keys: []string{"A", "B"}})
		dialAuthed(t, s, "A")
		dialAuthed(t, s, "B")
	})
	t.Run("cap 2 evicts the oldest", func(t *testing.T) {
		s := start(t, Options{ConnCap: 2, CapPolicy: EvictOld})
		c1 := dialAuthed(t, s, "K")
		c2 := dialAuthed(t, s, "K")
		dialAuthed(t, s, "K")
		c1.expectClose(CloseMaxConnections)
		c2.send(`{"action":"subscribe","symbols":["AAPL"]}`)
		c2.expectStatus(StatusSubscribed)
	})
	t.Run("no cap", func(t *testing.T) {
		s := start(t, Options{ConnCap: -1})
		for range 3 {
			dialAuthed(t, s, "K")
		}
		if got := s.Stats().WSAuthenticated; got != 3 {
			t.Errorf("authenticated = %d, want 3", got)
		}
	})
}

func TestStreamData(t *testing.T) {
	t.Parallel()
	s := start(t, Options{EventsPerSecond: 500})
	w := dialAuthed(t, s, "K")
	w.send(`{"action":"subscribe","symbols":["AAPL","MSFT","AAPL"]}`)
	if e := w.expectStatus(StatusSubscribed); !slices.Equal(e.Symbols, []string{"AAPL", "MSFT"}) {
		t.Fatalf("ack symbols = %v", e.Symbols)
	}
	begin := time.Now().Add(-time.Second).UnixMilli()
	seen := map[string]bool{}
	mixedSymbols, mixedTypes := false, false
	for !(seen["AAPL"] && seen["MSFT"] && seen["T"] && seen["Q"] && mixedSymbols && mixedTypes) {
		evs, err := w.read()
		if err != nil {
			t.Fatalf("read: %v (seen %v)", err, seen)
		}
		syms, types := map[string]bool{}, map[string]bool{}
		for _, e := range evs {
			checkEvent(t, e, begin, "AAPL", "MSFT")
			seen[e.Sym], seen[e.Ev] = true, true
			syms[e.Sym], types[e.Ev] = true, true
		}
		mixedSymbols = mixedSymbols || len(syms) > 1
		mixedTypes = mixedTypes || len(types) > 1
	}

	w.send(`{"action":"unsubscribe","symbols":["MSFT"]}`)
	if e := w.expectStatus(StatusUnsubscribed); !slices.Equal(e.Symbols, []string{"MSFT"}) {
		t.Fatalf("unsubscribe ack symbols = %v", e.Symbols)
	}
	// Nothing of MSFT after its acknowledgement.
	for range 20 {
		evs, err := w.read()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			checkEvent(t, e, begin, "AAPL")
		}
	}
	st := s.Stats()
	if st.SubscribeMessages != 1 || st.UnsubscribeMessages != 1 || !slices.Equal(st.SymbolsPerConn, []int{1}) || st.EventsSent == 0 {
		t.Errorf("Stats: subscribe %d, unsubscribe %d, symbols per conn %v, events %d",
			st.SubscribeMessages, st.UnsubscribeMessages, st.SymbolsPerConn, st.EventsSent)
	}
}

// checkEvent requires a well-formed data event of one of syms.
func checkEvent(t *testing.T, e event, since int64, syms ...string) {
	t.Helper()
	if !slices.Contains(syms, e.Sym) {
		t.Fatalf("event %+v for a symbol not subscribed (want %v)", e, syms)
	}
	if now := time.Now().Add(time.Second).UnixMilli(); e.T < since || e.T > now {
		t.Fatalf("event t = %d, not a current unix ms time", e.T)
	}
	switch e.Ev {
	case "T":
		if e.P == nil || *e.P <= 0 || e.S == nil || *e.S <= 0 {
			t.Fatalf("bad trade %+v", e)
		}
	case "Q":
		if e.BP == nil || e.AP == nil || *e.BP <= 0 || *e.AP <= *e.BP {
			t.Fatalf("bad quote %+v", e)
		}
	default:
		t.Fatalf("unexpected event %+v", e)
	}
}

func TestStreamSubscribeForms(t *testing.T) {
	t.Parallel()
	s := start(t, Options{EventsPerSecond: 1})
	w := dialAuthed(t, s, "K")

	w.send(`{"action":"subscribe","symbols":"AAPL, TSLA"}`)
	if e := w.expectStatus(StatusSubscribed); !slices.Equal(e.Symbols, []string{"AAPL", "TSLA"}) {
		t.Errorf("CSV ack = %v", e.Symbols)
	}
	w.send(`{"action":"subscribe","symbols":["SPY","NOPE","ALSO_NOPE"]}`)
	if e := w.expectStatus(StatusSubscribed); !slices.Equal(e.Symbols, []string{"SPY"}) {
		t.Errorf("partial ack = %v", e.Symbols)
	}
	if e := w.expectStatus(StatusError); e.Message != "unknown symbol" || !slices.Equal(e.Symbols, []string{"NOPE", "ALSO_NOPE"}) {
		t.Errorf("unknown symbols error = %+v", e)
	}
	w.send(`{"action":"subscribe","symbols":["NOPE"]}`)
	if e := w.expectStatus(StatusError); e.Message != "unknown symbol" {
		t.Errorf("all unknown: %+v", e)
	}
	w.send(`{"action":"unsubscribe","symbols":["TSLA","BTCUSD"]}`) // BTCUSD was not subscribed
	if e := w.expectStatus(StatusUnsubscribed); !slices.Equal(e.Symbols, []string{"TSLA", "BTCUSD"}) {
		t.Errorf("unsubscribe ack = %v", e.Symbols)
	}
	w.send(`{"action":"dance"}`)
	if e := w.expectStatus(StatusError); e.Message != "unknown action" {
		t.Errorf("unknown action: %+v", e)
	}
	waitFor(t, "two symbols", func() bool { return slices.Equal(s.Stats().SymbolsPerConn, []int{2}) })
}

func TestStreamSymbolLimit(t *testing.T) {
	t.Parallel()
	universe := make([]string, 250)
	for i := range universe {
		universe[i] = fmt.Sprintf("S%03d", i)
	}
	list := func(from, to int) string {
		return `["` + strings.Join(universe[from:to], `","`) + `"]`
	}
	s := start(t, Options{Symbols: universe, EventsPerSecond: 0.5})
	w := dialAuthed(t, s, "K")
	w.send(`{"action":"subscribe","symbols":` + list(0, 150) + `}`)
	w.expectStatus(StatusSubscribed)
	w.send(`{"action":"subscribe","symbols":` + list(100, 210) + `}`) // 60 new: 210 in all
	w.expectStatus(StatusSymbolLimit)
	if got := s.Stats().SymbolsPerConn; !slices.Equal(got, []int{150}) {
		t.Fatalf("after symbol_limit: symbols per conn %v, want [150] (nothing changed)", got)
	}
	w.send(`{"action":"subscribe","symbols":` + list(100, 200) + `}`) // exactly 200
	w.expectStatus(StatusSubscribed)
	waitFor(t, "200 symbols", func() bool { return slices.Equal(s.Stats().SymbolsPerConn, []int{200}) })
	if got := s.Stats().SymbolLimitErrors; got != 1 {
		t.Errorf("Stats.SymbolLimitErrors = %d, want 1", got)
	}
}

func TestStreamMessageRate(t *testing.T) {
	t.Parallel()
	t.Run("eleven in a second", func(t *testing.T) {
		clock := newFakeClock() // frozen: every message in the same instant
		s := start(t, Options{Now: clock.Now})
		w := dialAuthed(t, s, "K") // message 1
		for range 10 {             // messages 2-11
			w.send(`{"action":"subscribe","symbols":["AAPL"]}`)
		}
		w.expectClose(CloseMessageRate)
		if got := s.Stats().RateViolations; got != 1 {
			t.Errorf("Stats.RateViolations = %d, want 1", got)
		}
	})
	t.Run("ten per second for three seconds", func(t *testing.T) {
		clock := newFakeClock()
		s := start(t, Options{Now: clock.Now})
		w := dialAuthed(t, s, "K")
		for i := range 29 {
			if i%10 == 9 {
				clock.Advance(time.Second)
			}
			w.send(`{"action":"subscribe","symbols":["AAPL"]}`)
			w.expectStatus(StatusSubscribed)
		}
		if got := s.Stats().RateViolations; got != 0 {
			t.Errorf("Stats.RateViolations = %d, want 0", got)
		}
	})
}

func TestStreamSlowClient(t *testing.T) {
	t.Parallel()
	s := startSmallBuffers(t, Options{OutQueue: 4, EventsPerSecond: 2000, WriteTimeout: time.Minute})
	w := dialAuthed(t, s, "K")
	w.send(`{"action":"subscribe","symbols":["AAPL","MSFT","TSLA","SPY","BTCUSD","EURUSD","AMZN","NVDA"]}`)
	w.expectStatus(StatusSubscribed)
	// Stop reading until the server gives up on us.
	waitFor(t, "slow_client", func() bool { return s.Stats().SlowClients == 1 })
	if st := w.expectClose(CloseSlowClient); !hasStatus(st, StatusSlowClient) {
		t.Fatalf("statuses %+v, want slow_client", st)
	}
}

func TestStreamPingPong(t *testing.T) {
	t.Parallel()
	s := start(t, Options{PingInterval: 20 * time.Millisecond, PongTimeout: deadline})
	w := dialAuthed(t, s, "K")
	readErr := make(chan error, 1)
	go func() { // reading answers pings
		_, _, err := w.c.Read(context.Background())
		readErr <- err
	}()
	waitFor(t, "three pongs", func() bool { return s.Stats().Pings >= 3 })
	st := s.Stats()
	if st.PongTimeouts != 0 || st.WSConnections != 1 {
		t.Errorf("Stats: pong timeouts %d, connections %d", st.PongTimeouts, st.WSConnections)
	}
	_ = w.c.CloseNow()
	<-readErr
}

func TestStreamPongTimeout(t *testing.T) {
	t.Parallel()
	s := start(t, Options{PingInterval: 20 * time.Millisecond, PongTimeout: 200 * time.Millisecond, AuthTimeout: time.Hour})
	w := dial(t, s)
	// Not reading means not answering pings.
	waitFor(t, "pong timeout", func() bool { return s.Stats().PongTimeouts == 1 })
	if st := w.expectClose(ClosePongTimeout); !hasStatus(st, StatusConnected) {
		t.Errorf("statuses %+v, want connected", st)
	}
}

func TestStreamMaxLifetime(t *testing.T) {
	t.Parallel()
	s := start(t, Options{MaxLifetime: 200 * time.Millisecond})
	w := dial(t, s)
	w.expectClose(websocket.StatusGoingAway)
	if got := s.Stats().LifetimeCloses; got != 1 {
		t.Errorf("Stats.LifetimeCloses = %d, want 1", got)
	}
}

func TestStreamDropAll(t *testing.T) {
	t.Parallel()
	s := start(t, Options{Keys: []string{"A", "B"}})
	a := dialAuthed(t, s, "A")
	b := dialAuthed(t, s, "B")
	if got := s.DropAll(); got != 2 {
		t.Fatalf("DropAll = %d, want 2", got)
	}
	for _, w := range []*wsClient{a, b} {
		_, err := w.read()
		if err == nil || websocket.CloseStatus(err) != -1 {
			t.Fatalf("read after drop: %v, want an abnormal closure without close frame", err)
		}
	}
	// The key can reconnect right away: the cap does not count dropped
	// connections.
	dialAuthed(t, s, "A")
	if got := s.Stats().Dropped; got != 2 {
		t.Errorf("Stats.Dropped = %d, want 2", got)
	}
}

func TestStreamServerClose(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	w := dialAuthed(t, s, "K")
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	w.expectClose(websocket.StatusGoingAway)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Start("127.0.0.1:0"); err != ErrClosed {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
}

func TestStreamKeyRotation(t *testing.T) {
	t.Parallel()
	s := start(t, Options{EventsPerSecond: 200})
	old := dialAuthed(t, s, "K")
	old.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	old.expectStatus(StatusSubscribed)
	if err := s.SetKeys("K2"); err != nil {
		t.Fatal(err)
	}
	// Existing streams are kept...
	if evs, err := old.read(); err != nil || evs[0].Sym != "AAPL" {
		t.Fatalf("old stream after rotation: %v, %v", evs, err)
	}
	// ...new auth with the old key fails, with the new key works.
	w := dial(t, s)
	w.expectStatus(StatusConnected)
	w.send(`{"action":"auth","key":"K"}`)
	w.expectClose(CloseAuthFailed)
	dialAuthed(t, s, "K2")
}

func TestStreamUpgradeFaults(t *testing.T) {
	t.Parallel()
	s := start(t, Options{FailRate: 1})
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, s.StreamURL(), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial: %v, %v; want a 503", resp, err)
	}
	if err := s.SetFailRate(0); err != nil {
		t.Fatal(err)
	}
	dialAuthed(t, s, "K")
}

func TestServeTwice(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	if _, err := s.Start("127.0.0.1:0"); err != ErrServing {
		t.Errorf("second Start = %v, want ErrServing", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestStreamInjectFrame(t *testing.T) {
	t.Parallel()
	s := start(t, Options{Keys: []string{"A", "B"}})
	a := dialAuthed(t, s, "A")
	unauthed := dial(t, s)
	unauthed.expectStatus(StatusConnected)
	garbage := []byte(`[{"ev":"T","sym":"AAPL",`)
	if got := s.InjectFrame(garbage); got != 1 {
		t.Fatalf("InjectFrame reached %d connections, want 1 (the authenticated one)", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	_, b, err := a.c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, garbage) {
		t.Fatalf("got %q, want the injected frame verbatim", b)
	}
	// The connection carries on after it.
	a.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	a.expectStatus(StatusSubscribed)
}
