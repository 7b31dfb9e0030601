package relay

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tickgate/tickgate/config"
)

// replay is a vendor's documented WebSocket conversation, replayed by a
// local fake to check that a preset speaks it.
type replay struct {
	preset  string
	keyID   string   // Auth.KeyID
	query   string   // the URL parameter holding the key (query auth)
	connect []string // frames sent on connect
	authOK  []string // frames answering a good auth message
	authBad []string // frames answering a bad key (message auth)
	subAck  []string // frames answering a subscribe
	data    []string // frames sent in a loop once subscribed: data, heartbeats, noise
	// browsers subscribe to syms; wantSub is what the vendor must get.
	syms    []string
	wantSub []string
	// refused, when set, is a symbol of syms the vendor refuses.
	refused string
	// heartbeat, when set, is what the vendor must get as a heartbeat.
	heartbeat string
}

var replays = []replay{
	{
		preset:  "polygon",
		connect: []string{`[{"ev":"status","status":"connected","message":"Connected Successfully"}]`},
		authOK:  []string{`[{"ev":"status","status":"auth_success","message":"authenticated"}]`},
		authBad: []string{`[{"ev":"status","status":"auth_failed","message":"authentication failed"}]`},
		subAck:  []string{`[{"ev":"status","status":"success","message":"subscribed to: T.AAPL"},{"ev":"status","status":"success","message":"subscribed to: Q.AAPL"}]`},
		data: []string{
			`[{"ev":"T","sym":"AAPL","i":"52983525029461","x":4,"p":191.2,"s":100,"c":[14,41],"t":1733241600123,"q":3681328,"z":3},` +
				`{"ev":"Q","sym":"MSFT","bx":4,"bp":410.1,"bs":1,"ax":7,"ap":410.3,"as":2,"c":0,"t":1733241600125,"q":50385480,"z":3},` +
				`{"ev":"T","sym":"TSLA","x":4,"p":250.1,"s":10,"t":1733241600126,"z":3}]`,
		},
		syms:    []string{"AAPL", "MSFT"},
		wantSub: []string{`{"action":"subscribe","params":"T.AAPL,Q.AAPL,T.MSFT,Q.MSFT"}`},
	},
	{
		preset:  "massive",
		connect: []string{`[{"ev":"status","status":"connected","message":"Connected Successfully"}]`},
		authOK:  []string{`[{"ev":"status","status":"auth_success","message":"authenticated"}]`},
		authBad: []string{`[{"ev":"status","status":"auth_failed","message":"authentication failed"}]`},
		data:    []string{`[{"ev":"T","sym":"AAPL","x":4,"p":191.2,"s":100,"t":1733241600123,"z":3}]`},
		syms:    []string{"AAPL"},
		wantSub: []string{`{"action":"subscribe","params":"T.AAPL,Q.AAPL"}`},
	},
	{
		preset:  "alpaca",
		keyID:   "AKTESTKEYID",
		connect: []string{`[{"T":"success","msg":"connected"}]`},
		authOK:  []string{`[{"T":"success","msg":"authenticated"}]`},
		authBad: []string{`[{"T":"error","code":402,"msg":"auth failed"}]`},
		subAck:  []string{`[{"T":"subscription","trades":["AAPL","MSFT"],"quotes":["AAPL","MSFT"],"bars":[]}]`},
		data: []string{
			`[{"T":"t","S":"AAPL","i":96921,"x":"D","p":126.55,"s":1,"t":"2021-02-22T15:51:44.208Z","c":["@","I"],"z":"C"},` +
				`{"T":"q","S":"MSFT","bx":"U","bp":410.1,"bs":1,"ax":"V","ap":410.3,"as":2,"c":["R"],"z":"C","t":"2021-02-22T15:51:45.335689322Z"}]`,
			`[{"T":"t","S":"IBM","i":1,"x":"V","p":140.1,"s":5,"t":"2021-02-22T15:51:46Z","z":"A"}]`,
		},
		syms:    []string{"AAPL", "MSFT"},
		wantSub: []string{`{"action":"subscribe","trades":["AAPL","MSFT"],"quotes":["AAPL","MSFT"]}`},
	},
	{
		preset: "finnhub",
		query:  "token",
		data: []string{
			`{"data":[{"p":7296.89,"s":"BINANCE:BTCUSDT","t":1575526691134,"v":0.011467},{"p":191.2,"s":"AAPL","t":1575526691135,"v":100,"c":null},{"p":1,"s":"IBM","t":1,"v":1}],"type":"trade"}`,
			`{"type":"ping"}`,
		},
		syms:    []string{"AAPL", "BINANCE:BTCUSDT"},
		wantSub: []string{`{"type":"subscribe","symbol":"AAPL"}`, `{"type":"subscribe","symbol":"BINANCE:BTCUSDT"}`},
	},
	{
		preset: "twelvedata",
		query:  "apikey",
		subAck: []string{`{"event":"subscribe-status","status":"error","success":[{"symbol":"AAPL","exchange":"NASDAQ","country":"United States","type":"Common Stock"},{"symbol":"EUR/USD","exchange":"PHYSICAL CURRENCY","country":"","type":"Physical Currency"}],"fails":[{"symbol":"NOPE"}]}`},
		data: []string{
			`{"event":"price","symbol":"AAPL","currency":"USD","exchange":"NASDAQ","type":"Common Stock","timestamp":1592249566,"price":342.0157,"day_volume":27631112}`,
			`{"event":"price","symbol":"EUR/USD","currency_base":"Euro","currency_quote":"US Dollar","exchange":"PHYSICAL CURRENCY","type":"Physical Currency","timestamp":1592249567,"price":1.1254}`,
			`{"event":"heartbeat","status":"ok"}`,
		},
		syms:      []string{"AAPL", "EUR/USD", "NOPE"},
		wantSub:   []string{`{"action":"subscribe","params":{"symbols":"AAPL,EUR/USD,NOPE"}}`},
		refused:   "NOPE",
		heartbeat: `{"action":"heartbeat"}`,
	},
	{
		preset:  "eodhd",
		query:   "api_token",
		connect: []string{`{"status_code":200,"message":"Authorized"}`},
		data: []string{
			`{"s":"AMZN","p":3196.51,"c":[12,14,37],"v":1,"dp":false,"ms":"open","t":1638888888000}`,
			`{"s":"TSLA","p":1017.03,"c":[37],"v":3,"dp":false,"ms":"open","t":1638888888100}`,
		},
		syms:    []string{"AMZN", "TSLA"},
		wantSub: []string{`{"action":"subscribe","symbols":"AMZN,TSLA"}`},
	},
	{
		preset: "binance",
		subAck: []string{`{"result":null,"id":1}`},
		data: []string{
			`{"e":"trade","E":1672515782136,"s":"BTCUSDT","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}`,
			`{"e":"trade","E":1672515782137,"s":"ETHUSDT","t":12346,"p":"2000.1","q":"1","T":1672515782137,"m":false,"M":true}`,
		},
		syms:    []string{"BTCUSDT", "ethusdt"},
		wantSub: []string{`{"method":"SUBSCRIBE","params":["btcusdt@trade","ethusdt@trade"],"id":1}`},
	},
	{
		preset: "coinbase",
		subAck: []string{`{"type":"subscriptions","channels":[{"name":"ticker","product_ids":["BTC-USD"]}]}`},
		data: []string{
			`{"type":"ticker","sequence":37475248783,"product_id":"BTC-USD","price":"43023.15","open_24h":"42000","volume_24h":"1000","low_24h":"41000","high_24h":"44000","best_bid":"43023.14","best_ask":"43023.15","side":"buy","time":"2024-01-01T00:00:00.000000Z","trade_id":123,"last_size":"0.001"}`,
			`{"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"BTC-USD","time":"2024-01-01T00:00:00.000000Z"}`,
		},
		syms:    []string{"BTC-USD"},
		wantSub: []string{`{"type":"subscribe","product_ids":["BTC-USD"],"channels":["ticker"]}`},
	},
	{
		preset:  "kraken",
		connect: []string{`{"channel":"status","data":[{"api_version":"v2","connection_id":1234,"system":"online","version":"2.0.0"}],"type":"update"}`},
		subAck: []string{
			`{"method":"subscribe","result":{"channel":"ticker","snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":"2024-01-01T00:00:00.000000Z","time_out":"2024-01-01T00:00:00.000001Z"}`,
			`{"error":"Currency pair not supported NOPE/USD","method":"subscribe","success":false,"symbol":"NOPE/USD","time_in":"2024-01-01T00:00:00.000000Z","time_out":"2024-01-01T00:00:00.000001Z"}`,
		},
		data: []string{
			`{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":43000.1,"bid_qty":0.5,"ask":43000.2,"ask_qty":1.2,"last":43000.1,"volume":1234.5,"vwap":42000.0,"low":41000.0,"high":44000.0,"change":100.0,"change_pct":0.23}]}`,
			`{"channel":"heartbeat"}`,
		},
		syms:    []string{"BTC/USD", "NOPE/USD"},
		wantSub: []string{`{"method":"subscribe","params":{"channel":"ticker","symbol":["BTC/USD","NOPE/USD"]}}`},
		refused: "NOPE/USD",
	},
	{
		preset:  "finage",
		query:   "token",
		connect: []string{`{"status_code":200,"message":"Connected to the Finage Stock WebSocket"}`},
		data: []string{
			`{"s":"AAPL","p":191.2,"dc":"-0.34","dd":"-0.6","ppms":false,"t":1733241600123}`,
			`{"s":"TSLA","p":250.1,"dc":"1","dd":"0.4","ppms":false,"t":1733241600124}`,
		},
		syms:    []string{"AAPL", "TSLA"},
		wantSub: []string{`{"action":"subscribe","symbols":"AAPL,TSLA"}`},
	},
}

// replayVendor serves one replay.
type replayVendor struct {
	t      *testing.T
	r      replay
	srv    *httptest.Server
	mu     sync.Mutex
	got    []string // messages received
	wg     sync.WaitGroup
	closed chan struct{}
}

func newReplayVendor(t *testing.T, r replay) *replayVendor {
	v := &replayVendor{t: t, r: r, closed: make(chan struct{})}
	v.srv = httptest.NewServer(http.HandlerFunc(v.serve))
	t.Cleanup(func() {
		close(v.closed)
		v.srv.Close()
		v.wg.Wait()
	})
	return v
}

func (v *replayVendor) received() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.got)
}

func (v *replayVendor) serve(w http.ResponseWriter, req *http.Request) {
	v.wg.Add(1)
	defer v.wg.Done()
	if v.r.query != "" && req.URL.Query().Get(v.r.query) != testKey {
		http.Error(w, `{"error":"invalid key"}`, http.StatusUnauthorized)
		return
	}
	c, err := websocket.Accept(w, req, nil)
	if err != nil {
		return
	}
	defer func() { _ = c.CloseNow() }()
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	go func() {
		select {
		case <-v.closed:
		case <-ctx.Done():
		}
		cancel()
	}()
	var wmu sync.Mutex
	send := func(frames []string) bool {
		wmu.Lock()
		defer wmu.Unlock()
		for _, f := range frames {
			if c.Write(ctx, websocket.MessageText, []byte(f)) != nil {
				return false
			}
		}
		return true
	}
	if !send(v.r.connect) {
		return
	}
	streaming := false
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		msg := string(b)
		v.mu.Lock()
		v.got = append(v.got, msg)
		v.mu.Unlock()
		switch {
		case strings.Contains(msg, `"auth"`):
			if strings.Contains(msg, jsonString(testKey)) {
				send(v.r.authOK)
			} else {
				send(v.r.authBad)
				_ = c.Close(websocket.StatusPolicyViolation, "auth failed")
				return
			}
		case strings.Contains(strings.ToLower(msg), `subscribe"`) && !strings.Contains(strings.ToLower(msg), "unsubscribe"):
			send(v.r.subAck)
			if !streaming {
				streaming = true
				go func() {
					for ctx.Err() == nil {
						if !send(v.r.data) {
							return
						}
						time.Sleep(5 * time.Millisecond)
					}
				}()
			}
		}
	}
}

// TestPresetReplays replays each preset's vendor conversation through a
// local fake: the relay authenticates as the vendor documents, subscribes
// in the vendor's form, recognises acks and heartbeats, and browsers get
// exactly the vendor data messages of their symbols.
func TestPresetReplays(t *testing.T) {
	for _, r := range replays {
		t.Run(r.preset, func(t *testing.T) {
			v := newReplayVendor(t, r)
			feed := replayFeed(r, v.srv.URL)
			h := newHarness(t, vendorOpts{}, func(c *Config) {
				c.Feeds = map[string]config.Feed{"demo": feed}
			})
			b := h.browser(sess("alice"))
			syms, _ := json.Marshal(r.syms)
			b.send(`{"action":"subscribe","symbols":` + string(syms) + `}`)
			b.until("subscribed")

			want := map[string]bool{}
			for _, s := range r.syms {
				if n, _ := normalizeSymbol(s); n != normalizeRefused(r.refused) {
					want[n] = true
				}
			}
			ad, err := newAdapter(feed)
			if err != nil {
				t.Fatal(err)
			}
			vendorMsgs := map[string]bool{}
			for _, f := range r.data {
				ms, _ := ad.scan.split(nil, []byte(f))
				for _, m := range ms {
					vendorMsgs[string(m.raw)] = true
				}
			}
			seen := map[string]bool{}
			refusedTold := r.refused == ""
			for len(seen) < len(want) || !refusedTold {
				m := b.next()
				switch m.Type {
				case "data":
				case "error":
					if m.Code != codeUnknownSymbol || !slices.Equal(m.Symbols, []string{normalizeRefused(r.refused)}) {
						t.Fatalf("error %s", m.raw)
					}
					refusedTold = true
					continue
				case "status":
					continue
				default:
					t.Fatalf("got %s", m.raw)
				}
				for _, raw := range m.Messages {
					if !vendorMsgs[string(raw)] {
						t.Fatalf("relayed %s, which is not one of the vendor's data messages byte for byte", raw)
					}
					sym, _ := normalizeSymbol(string(ad.scan.message(raw).sym))
					if !want[sym] {
						t.Fatalf("relayed %s for %q, not subscribed", raw, sym)
					}
					seen[sym] = true
				}
			}
			got := v.received()
			var subs []string
			for _, m := range got {
				if strings.Contains(strings.ToLower(m), `subscribe"`) && !strings.Contains(strings.ToLower(m), "unsubscribe") {
					subs = append(subs, m)
				}
			}
			if !slices.Equal(subs, r.wantSub) {
				t.Errorf("vendor got subscribes %q, want %q", subs, r.wantSub)
			}
			if r.heartbeat != "" {
				eventually(t, "a heartbeat", func() bool { return slices.Contains(v.received(), r.heartbeat) })
			}
			for _, m := range got {
				if strings.Contains(m, testKey) && !strings.Contains(m, `"auth"`) {
					t.Errorf("the key went to the vendor outside the auth message: %s", m)
				}
			}
			// A page reload later: unsubscribe reaches the vendor in its form.
			b.send(`{"action":"unsubscribe","symbols":` + string(syms) + `}`)
			b.until("unsubscribed")
			eventually(t, "an unsubscribe", func() bool {
				for _, m := range v.received() {
					if strings.Contains(strings.ToLower(m), "unsubscribe") {
						return true
					}
				}
				return false
			})
		})
	}
}

func normalizeRefused(s string) string {
	if s == "" {
		return ""
	}
	n, _ := normalizeSymbol(s)
	return n
}

// TestPresetReplaysAuthRefused: a refused key closes browsers with 1013,
// whether the vendor says so in a message or at the handshake.
func TestPresetReplaysAuthRefused(t *testing.T) {
	for _, r := range replays {
		if r.authBad == nil && r.query == "" {
			continue // public feeds have no key to refuse
		}
		t.Run(r.preset, func(t *testing.T) {
			v := newReplayVendor(t, r)
			h := newHarness(t, vendorOpts{}, func(c *Config) {
				c.Feeds = map[string]config.Feed{"demo": replayFeed(r, v.srv.URL)}
				c.ReconnectMin, c.ReconnectMax = 50*time.Millisecond, 100*time.Millisecond
			})
			h.secrets.set("wrong-key-0000000000")
			b := h.browser(sess("alice"))
			if got := b.closed(); got != websocket.StatusTryAgainLater {
				t.Fatalf("close code %d, want 1013", got)
			}
			if h.secrets.invalidated() == 0 {
				t.Error("the refused key was not invalidated")
			}
		})
	}
}

func replayFeed(r replay, base string) config.Feed {
	f := config.Feed{
		URL:     "ws" + strings.TrimPrefix(base, "http") + "/stream",
		Adapter: config.Adapter{Preset: r.preset},
	}
	f.Adapter.Auth.KeyID = r.keyID
	resolved := f.Adapter.Resolved()
	if resolved.Auth.Mode != authNone {
		f.Key = config.KeyRef{Secret: testSecret}
	}
	if r.heartbeat != "" {
		f.Adapter = resolved
		f.Adapter.Preset = ""
		f.Adapter.HeartbeatInterval = config.Duration(20 * time.Millisecond)
	}
	return f
}

func TestPresetsAreValid(t *testing.T) {
	for _, r := range replays {
		f := replayFeed(r, "http://127.0.0.1:1")
		if _, err := newAdapter(f); err != nil {
			t.Errorf("%s: %v", r.preset, err)
		}
	}
}
