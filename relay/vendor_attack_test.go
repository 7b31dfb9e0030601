package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/tickgate/tickgate/internal/jsonesc"
	"github.com/tickgate/tickgate/secrets"
)

// A vendor frame with invalid UTF-8 inside a JSON string passes
// json.Valid. Relayed in a text frame it makes every browser fail the
// socket (RFC 6455 requires them to), so one bad byte upstream would
// disconnect every subscriber. The relay must drop it.
func TestAttackVendorInvalidUTF8NeverRelayed(t *testing.T) {
	h := newHarness(t, vendorOpts{}, nil)
	b := h.browser(sess("alice"))
	b.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	b.until("subscribed")
	b.until("data")
	h.vendor.broadcast("[{\"ev\":\"T\",\"sym\":\"AAPL\",\"p\":1,\"x\":\"bad\xff\xfe\"}]")
	h.vendor.broadcast(`[{"ev":"T","sym":"AAPL","p":1,"marker":"after-bad-utf8"}]`)
	for {
		m := b.next()
		if !utf8.Valid(m.raw) {
			t.Fatalf("relay sent a text frame with invalid UTF-8: %q", m.raw)
		}
		if strings.Contains(string(m.raw), "after-bad-utf8") {
			break
		}
	}
}

// A vendor may echo the key with JSON \u escapes (System.Text.Json
// escapes '+', some encoders escape every non-alphanumeric byte, any
// encoder may): the browser's JSON.parse turns it back into the key, so
// the key guard must see through escapes.
func TestAttackVendorEscapedKeyNeverRelayed(t *testing.T) {
	h := newHarness(t, vendorOpts{}, nil)
	b := h.browser(sess("alice"))
	b.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	b.until("subscribed")
	b.until("data")
	var esc strings.Builder
	for _, r := range testKey {
		if r == '-' {
			esc.WriteString(`\u002D`)
			continue
		}
		esc.WriteRune(r)
	}
	var all strings.Builder
	for _, r := range testKey {
		fmt.Fprintf(&all, `\u%04x`, r)
	}
	h.vendor.broadcast(`[{"ev":"T","sym":"AAPL","p":1,"echo":"` + esc.String() + `"}]`)
	h.vendor.broadcast(`[{"ev":"T","sym":"AAPL","p":1,"echo":"` + all.String() + `"}]`)
	h.vendor.broadcast(`[{"ev":"T","sym":"AAPL","p":1,"echo":"ok\\u002D\"\/\n"}]`)
	h.vendor.broadcast(`[{"ev":"T","sym":"AAPL","p":1,"marker":"after-escaped-key"}]`)
	for {
		m := b.next()
		var decoded struct {
			Messages []struct {
				Echo string `json:"echo"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(m.raw, &decoded); err != nil {
			t.Fatal(err)
		}
		for _, dm := range decoded.Messages {
			if strings.Contains(dm.Echo, testKey) {
				t.Fatalf("relayed the key (JSON-escaped): %s", m.raw)
			}
		}
		if strings.Contains(string(m.raw), "after-escaped-key") {
			break
		}
	}
	if got := gauge(t, h.metrics.WSDropped.WithLabelValues("demo", "key_guard")); got != 2 {
		t.Errorf("key_guard drops = %v, want 2 (the harmless escaped frame must pass)", got)
	}
}

func TestAttackHoldsKeyThroughEscapes(t *testing.T) {
	key := "k+y/Z\"é\\0123456789"
	var guard [][]byte
	for _, f := range secrets.Spellings(secrets.NewValue(key)) {
		guard = append(guard, []byte(f))
	}
	enc, _ := json.Marshal(key)
	var allEsc strings.Builder
	for _, r := range key {
		if r > 0xffff {
			continue
		}
		fmt.Fprintf(&allEsc, `\u%04X`, r)
	}
	for _, tc := range []struct {
		frame string
		want  bool
	}{
		{`{"x":` + string(enc) + `}`, true},
		{`{"x":"` + allEsc.String() + `"}`, true},
		{`{"x":"k\u002By\/Z\"\u00e9\\0123456789"}`, true},
		{`{"x":"k\u002By\/Z\"\u00e9\\012345678"}`, false}, // one digit short
		{`{"x":"k+y/Z"}`, false},
		{`{"x":"\u12"}`, false},   // malformed escapes are kept, never a panic
		{`{"x":"\ud83d"}`, false}, // lone surrogate
		{`{"x":"\ud83d\ude00"}`, false},
		{`\`, false},
	} {
		if got := holdsKey([]byte(tc.frame), guard); got != tc.want {
			t.Errorf("holdsKey(%s) = %v, want %v", tc.frame, got, tc.want)
		}
	}
	if got, _, _ := jsonesc.Unescape([]byte(`\ud83d\ude00\u0041\q`)); string(got) != "😀A\\q" {
		t.Errorf("jsonesc.Unescape = %q", got)
	}
}

// FuzzAttackHoldsKey: whenever a JSON frame's decoded strings hold the
// key, the guard says so.
func FuzzAttackHoldsKey(f *testing.F) {
	for _, s := range []string{`["abc\u0064efgh"]`, `{"a":"x\/y"}`, `"\ud83d\ude00"`} {
		f.Add([]byte(s))
	}
	key := "abcdefgh"
	guard := [][]byte{[]byte(key)}
	f.Fuzz(func(t *testing.T, frame []byte) {
		got := holdsKey(frame, guard)
		var v any
		if json.Unmarshal(frame, &v) != nil {
			return
		}
		if b, _ := json.Marshal(v); strings.Contains(string(b), key) && !got {
			t.Fatalf("key in %q not found", frame)
		}
	})
}

// Thousands of subscribe/unsubscribe toggles from browsers (within a
// generous control rate) must not turn into vendor churn: linger and the
// reconcile loop coalesce them, so the vendor sees a handful of messages.
func TestAttackToggleFloodNoVendorChurn(t *testing.T) {
	h := newHarness(t, vendorOpts{}, func(c *Config) { c.ControlRate = 100000 })
	b := h.browser(sess("alice"))
	b.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	b.until("subscribed")
	b.until("data")
	const toggles = 1000
	for range toggles {
		b.send(`{"action":"unsubscribe","symbols":["AAPL","MSFT"]}`)
		b.send(`{"action":"subscribe","symbols":["AAPL","MSFT"]}`)
		b.until("unsubscribed")
		b.until("subscribed")
	}
	b.send(`{"action":"ping"}`)
	b.until("pong")
	var msgs int
	for _, m := range h.vendor.receivedCopy() {
		msgs += strings.Count(m, `"subscribe"`) + strings.Count(m, `"unsubscribe"`)
	}
	if msgs > 10 {
		t.Errorf("%d toggles became %d vendor (un)subscribe messages", toggles, msgs)
	}
}

// A vendor frame is read whole and its messages queued for browsers as
// slices of it. A small message waiting for a slow browser must not keep
// its whole (up to UpstreamReadLimit) frame alive: 200 frames of 512 KiB,
// each with one small message for a browser that does not read, would
// otherwise pin 100 MiB.
func TestAttackBigFramesNotPinnedBySlowBrowser(t *testing.T) {
	h := newHarness(t, vendorOpts{}, func(c *Config) {
		c.SendWindow = 1 << 10
		c.WriteTimeout = time.Minute
		c.QueueSize = 1000
	})
	b := h.browser(sess("slow"))
	b.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	b.until("subscribed")
	b.until("data")
	// The browser reads no more.
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	in := gauge(t, h.metrics.WSMessagesIn.WithLabelValues("demo"))
	pad := strings.Repeat("x", 512<<10)
	const frames = 200
	for i := range frames {
		h.vendor.broadcast(`[{"ev":"T","sym":"AAPL","p":1,"n":` + strconv.Itoa(i) + `},{"ev":"T","sym":"ZZZZ","pad":"` + pad + `"}]`)
	}
	eventually(t, "frames read", func() bool {
		return gauge(t, h.metrics.WSMessagesIn.WithLabelValues("demo")) >= in+frames
	})
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew %d KiB for %d queued messages", grown>>10, frames)
	if grown > 32<<20 {
		t.Errorf("heap grew %d MiB: queued messages pin their vendor frames", grown>>20)
	}
}

// A browser that sends before reading "ready" (pipelining) still gets
// ready first, then its answers in order; odd but valid JSON is answered
// with errors that echo nothing, and the socket stays open.
func TestAttackMessagesBeforeReadyAndOddJSON(t *testing.T) {
	h := newHarness(t, vendorOpts{}, func(c *Config) { c.ControlRate = 1000 })
	c, _, err := h.dial("demo", sess("alice"), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	b := &browser{t: t, c: c, user: "alice"}
	deep := strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
	sends := []struct{ msg, want string }{
		{`{"action":"subscribe","symbols":["AAPL"]}`, "subscribed"},
		{`{"action":"ping","action":"subscribe","symbols":["MSFT"]}`, "subscribed"}, // last key wins, as in JSON.parse
		{`{"action":"subscribe","symbols":` + deep + `}`, "error"},
		{`{"action":"subscribe","symbols":["A\u0000B"]}`, "error"},
		{`{"action":"subscribe","symbols":["<script>"]}`, "error"},
		{`{"action":"subscribe","symbols":["` + strings.Repeat("A", 33) + `"]}`, "error"},
		{`{"action":"subscribe","symbols":["ＡＡＰＬ"]}`, "error"},
		{`{"action":"subscribe","symbols":[null]}`, "error"},
		{`{"action":"ping"} {"action":"ping"}`, "error"},
		{`{"action":"\u0070ing"}`, "pong"},
		{`["ping"]`, "error"},
		{`{"action":"ping"}`, "pong"},
	}
	for _, s := range sends {
		b.send(s.msg)
	}
	if m := b.next(); m.Type != "ready" {
		t.Fatalf("first message %s, want ready", m.raw)
	}
	for _, s := range sends {
		var m inMsg
		for m = b.next(); m.Type == "data" || m.Type == "status"; m = b.next() {
		}
		if m.Type != s.want {
			t.Fatalf("%s: got %s, want %s", s.msg, m.raw, s.want)
		}
		if m.Type == "error" && (strings.Contains(string(m.raw), "script") || strings.Contains(string(m.raw), "AAAAAAAA")) {
			t.Errorf("error echoes the input: %s", m.raw)
		}
	}
}

// permessage-deflate is never negotiated: a small compressed frame could
// otherwise inflate past the read limit's intent, and compression costs
// memory per socket.
func TestAttackNoCompressionNegotiated(t *testing.T) {
	h := newHarness(t, vendorOpts{}, nil)
	hdr := http.Header{"X-Test-Session": {sess("alice")}, "Origin": {testOrigin}}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, h.wsURL+"demo", &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: h.client,
		CompressionMode: websocket.CompressionContextTakeover})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Errorf("server negotiated %q", ext)
	}
}

// The read limit holds for a message sent as many small fragments, as
// for one frame: 1009.
func TestAttackFragmentedOversizedMessage(t *testing.T) {
	h := newHarness(t, vendorOpts{}, nil)
	b := h.browser(sess("alice"))
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	w, err := b.c.Writer(ctx, websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	chunk := []byte(`{"action":"subscribe","symbols":["` + strings.Repeat("A", 200))
	for range 40 { // 8 KB in 40 fragments; the limit is 4 KiB
		if _, err := w.Write(chunk); err != nil {
			break // the relay closed on us
		}
	}
	_ = w.Close()
	if code := b.closed(); code != websocket.StatusMessageTooBig {
		t.Errorf("close code %d, want 1009", code)
	}
}
