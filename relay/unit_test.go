package relay

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tickgate/tickgate/config"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		in      string
		action  string
		symbols []string
		code    string
	}{
		{in: `{"action":"ping"}`, action: "ping"},
		{in: ` {"action":"ping","symbols":"ignored"} `, action: "ping"},
		{in: `{"action":"subscribe","symbols":["AAPL","msft","AAPL","brk.b","EUR/USD","BTC-USD","X:BTCUSD","A_B"]}`,
			action: "subscribe", symbols: []string{"AAPL", "MSFT", "BRK.B", "EUR/USD", "BTC-USD", "X:BTCUSD", "A_B"}},
		{in: `{"action":"unsubscribe","symbols":["spy"]}`, action: "unsubscribe", symbols: []string{"SPY"}},
		{in: `{"action":"subscribe","symbols":["` + strings.Repeat("A", 32) + `"]}`, action: "subscribe", symbols: []string{strings.Repeat("A", 32)}},
		{in: `{"action":"subscribe","symbols":["` + strings.Repeat("A", 33) + `"]}`, code: codeInvalidSymbol},
		{in: `{"action":"subscribe","symbols":["-A"]}`, code: codeInvalidSymbol},
		{in: `{"action":"subscribe","symbols":["A B"]}`, code: codeInvalidSymbol},
		{in: `{"action":"subscribe","symbols":["ÄPPL"]}`, code: codeInvalidSymbol},
		{in: `{"action":"subscribe","symbols":["A\u0000"]}`, code: codeInvalidSymbol},
		{in: `{"action":"subscribe","symbols":[]}`, code: codeBadMessage},
		{in: `{"action":"subscribe","symbols":null}`, code: codeBadMessage},
		{in: `{"action":"subscribe","symbols":{}}`, code: codeBadMessage},
		{in: `{"action":"subscribe"}`, code: codeBadMessage},
		{in: `{"action":"Subscribe","symbols":["A"]}`, code: codeBadMessage},
		{in: `{"action":null}`, code: codeBadMessage},
		{in: `{"action":1}`, code: codeBadMessage},
		{in: `{}`, code: codeBadMessage},
		{in: `[]`, code: codeBadMessage},
		{in: `"ping"`, code: codeBadMessage},
		{in: ``, code: codeBadMessage},
		{in: `{"action":"ping"}{"action":"ping"}`, code: codeBadMessage},
		{in: "{\"action\":\"ping\",\"x\":\"\xff\"}", code: codeBadMessage},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			req, perr := parseRequest(websocket.MessageText, []byte(tc.in))
			if tc.code != "" {
				if perr == nil || perr.code != tc.code {
					t.Fatalf("got %+v, %v; want error %s", req, perr, tc.code)
				}
				return
			}
			if perr != nil {
				t.Fatalf("unexpected error %v", perr)
			}
			if req.action != tc.action || !slices.Equal(req.symbols, tc.symbols) {
				t.Fatalf("got %+v, want %s %v", req, tc.action, tc.symbols)
			}
		})
	}
	if _, perr := parseRequest(websocket.MessageBinary, []byte(`{"action":"ping"}`)); perr != errBinary {
		t.Errorf("binary frame: got %v", perr)
	}
}

func TestOutgoingMessages(t *testing.T) {
	tests := []struct{ got, want string }{
		{string(readyMessage("demo", 50)), `{"type":"ready","feed":"demo","limits":{"max_symbols":50}}`},
		{string(ackMessage("subscribed", []string{"AAPL", "MSFT"})), `{"type":"subscribed","symbols":["AAPL","MSFT"]}`},
		{string(ackMessage("unsubscribed", []string{"AAPL"})), `{"type":"unsubscribed","symbols":["AAPL"]}`},
		{string(errorMessage(errTooManySymbols(3))), `{"type":"error","code":"too_many_symbols","message":"at most 3 symbols per session on this feed; nothing was subscribed"}`},
		{string(msgPong), `{"type":"pong"}`},
		{string(msgStatusConnected), `{"type":"status","upstream":"connected"}`},
		{string(msgStatusReconnecting), `{"type":"status","upstream":"reconnecting"}`},
		{string(appendData(nil, dataPrefix("demo"), []pendingMsg{{raw: []byte(`{"a":1}`)}, {raw: []byte(`{"b": 2 }`)}})),
			`{"type":"data","feed":"demo","messages":[{"a":1},{"b": 2 }]}`},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got  %s\nwant %s", tc.got, tc.want)
		}
		if !json.Valid([]byte(tc.got)) {
			t.Errorf("not JSON: %s", tc.got)
		}
	}
}

func TestScannerSplit(t *testing.T) {
	s := scanner{symbolField: "sym", control: newMatcher(map[string]string{"ev": "status"})}
	type out struct {
		raw, sym string
		control  bool
	}
	tests := []struct {
		name  string
		frame string
		ok    bool
		want  []out
	}{
		{"array", `[{"ev":"T","sym":"AAPL","p":1},{"ev":"Q","sym":"MSFT"}]`, true,
			[]out{{`{"ev":"T","sym":"AAPL","p":1}`, "AAPL", false}, {`{"ev":"Q","sym":"MSFT"}`, "MSFT", false}}},
		{"single object", ` {"sym":"IBM"} `, true, []out{{`{"sym":"IBM"}`, "IBM", false}}},
		{"empty array", ` [ ] `, true, nil},
		{"whitespace kept", "[ {\"sym\" : \"A\" ,\n \"x\":[1,{\"sym\":\"B\"}]} ]", true,
			[]out{{"{\"sym\" : \"A\" ,\n \"x\":[1,{\"sym\":\"B\"}]}", "A", false}}},
		{"nested sym ignored", `[{"x":{"sym":"B"}}]`, true, []out{{`{"x":{"sym":"B"}}`, "", false}}},
		{"control", `[{"ev":"status","status":"connected"}]`, true, []out{{`{"ev":"status","status":"connected"}`, "", true}}},
		{"control with symbol", `[{"ev":"status","status":"subscribed","sym":"X"}]`, true,
			[]out{{`{"ev":"status","status":"subscribed","sym":"X"}`, "X", true}}},
		{"escaped key and value", `[{"s\u0079m":"a\u0061pl","e\u0076":"st\u0061tus"}]`, true,
			[]out{{`{"s\u0079m":"a\u0061pl","e\u0076":"st\u0061tus"}`, "AAPL", true}}},
		{"lower case symbol", `{"sym":"btcusd"}`, true, []out{{`{"sym":"btcusd"}`, "BTCUSD", false}}},
		{"non-string symbol", `[{"sym":1},{"sym":null},{"sym":""}]`, true,
			[]out{{`{"sym":1}`, "", false}, {`{"sym":null}`, "", false}, {`{"sym":""}`, "", false}}},
		{"scalars", `[1,"x",null,[2]]`, true, []out{{"1", "", false}, {`"x"`, "", false}, {"null", "", false}, {"[2]", "", false}}},
		{"strings with brackets", `[{"sym":"A","t":"]}[{\"x"}]`, true, []out{{`{"sym":"A","t":"]}[{\"x"}`, "A", false}}},
		{"not JSON", `[{"sym":"A"`, false, nil},
		{"empty", ``, false, nil},
		{"two values", `{} {}`, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msgs, ok := s.split(nil, []byte(tc.frame))
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
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

func TestMatcher(t *testing.T) {
	m := newMatcher(map[string]string{"ev": "status", "status": "auth_success"})
	tests := []struct {
		raw  string
		want bool
	}{
		{`{"ev":"status","status":"auth_success"}`, true},
		{`{"status":"auth_success","x":[1,2],"ev":"status"}`, true},
		{`{"ev":"status","status":"auth_failed"}`, false},
		{`{"ev":"status"}`, false},
		{`{"ev":"status","status":["auth_success"]}`, false},
		{`{"e\u0076":"status","status":"auth\u005fsuccess"}`, true},
		{`[{"ev":"status","status":"auth_success"}]`, false},
		{``, false},
	}
	for _, tc := range tests {
		if got := m.matches([]byte(tc.raw)); got != tc.want {
			t.Errorf("matches(%s) = %v, want %v", tc.raw, got, tc.want)
		}
	}
	if newMatcher(nil).matches([]byte(`{}`)) {
		t.Error("an empty matcher matched")
	}
}

func TestTemplateRender(t *testing.T) {
	tests := []struct {
		tmpl string
		key  string
		syms []string
		want []string
	}{
		{`{"action":"auth","key":{{key}}}`, `k"ey\`, nil, []string{`{"action":"auth","key":"k\"ey\\"}`}},
		{`{"action":"subscribe","symbols":{{symbols}}}`, "", []string{"A", "B"}, []string{`{"action":"subscribe","symbols":["A","B"]}`}},
		{`{"action":"subscribe","symbols":{{symbols_csv}}}`, "", []string{"A", "B"}, []string{`{"action":"subscribe","symbols":"A,B"}`}},
		{`{"type":"subscribe","symbol":{{symbol}}}`, "", []string{"A", "B"}, []string{`{"type":"subscribe","symbol":"A"}`, `{"type":"subscribe","symbol":"B"}`}},
		{`{"params":{"symbols":{{symbols_csv}}},"token":{{key}}}`, "k", []string{"EUR/USD"}, []string{`{"params":{"symbols":"EUR/USD"},"token":"k"}`}},
	}
	for _, tc := range tests {
		got := template(tc.tmpl).render(tc.key, "", tc.syms)
		var gs []string
		for _, g := range got {
			if !json.Valid(g) {
				t.Errorf("%s: not JSON: %s", tc.tmpl, g)
			}
			gs = append(gs, string(g))
		}
		if !slices.Equal(gs, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.tmpl, gs, tc.want)
		}
	}
	syms := make([]string, 250)
	for i := range syms {
		syms[i] = "S"
	}
	if got := template(`{{symbols}}`).batches(syms); len(got) != 3 || len(got[0]) != maxSymbolsPerMessage || len(got[2]) != 50 {
		t.Errorf("batches of 250: %d", len(got))
	}
	if got := template(`{{symbol}}`).batches(syms[:3]); len(got) != 3 {
		t.Errorf("per-symbol batches: %d", len(got))
	}
}

func TestRedact(t *testing.T) {
	const key = "s3cr3t/key+value"
	target := "wss://stream.vendor.example/v1?apikey=s3cr3t%2Fkey%2Bvalue"
	tests := []string{
		`failed to WebSocket dial: Get "` + target + `": dial tcp: lookup stream.vendor.example: no such host`,
		`failed to WebSocket dial: Get "wss://stream.vendor.example/v1?token=` + key + `&x=1": EOF`,
		`bad key ` + key,
		`bad key s3cr3t%2Fkey%2Bvalue`,
	}
	for _, in := range tests {
		out := redact(in, key, target)
		for _, bad := range []string{key, "s3cr3t", "apikey=", "token="} {
			if strings.Contains(out, bad) {
				t.Errorf("redact(%q) = %q still holds %q", in, out, bad)
			}
		}
	}
	if got := redact("dial tcp 127.0.0.1:1: connection refused", key, target); got != "dial tcp 127.0.0.1:1: connection refused" {
		t.Errorf("redact changed an error without secrets: %q", got)
	}
}

func TestNormalizeOrigin(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://App.Example.com", "https://app.example.com"},
		{"https://app.example.com:443", "https://app.example.com"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://[::1]:80", "http://[::1]"},
		{"http://[::1]:8080/", "http://[::1]:8080"},
		{"null", ""},
		{"", ""},
		{"app.example.com", ""},
		{"ftp://app.example.com", ""},
		{"https://user@app.example.com", ""},
		{"https://app.example.com/path", ""},
		{"https://app.example.com?q", ""},
	}
	for _, tc := range tests {
		got, ok := normalizeOrigin(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("normalizeOrigin(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
	if got := originPattern("http://[::1]:8080"); got != `http://\[::1\]:8080` {
		t.Errorf("originPattern = %s", got)
	}
}

func TestBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBucket(5, now)
	sent := 0
	for range 100 {
		if b.reserve(now) == 0 {
			sent++
		}
	}
	if sent != 3 {
		t.Fatalf("burst %d, want 3", sent)
	}
	// Over any one second, at most burst + rate messages.
	for i := range 1000 {
		if b.reserve(now.Add(time.Duration(i)*time.Millisecond)) == 0 {
			sent++
		}
	}
	if sent > 3+5+1 {
		t.Fatalf("%d messages in about a second at rate 5", sent)
	}
	if w := newBucket(5, now); w.reserve(now) != 0 {
		t.Fatal("first message waited")
	}
}

func TestNewValidates(t *testing.T) {
	good := func() Config {
		return Config{
			Feeds:          map[string]config.Feed{"demo": testFeed("ws://127.0.0.1:1/v1/stream")},
			Secrets:        &fakeSecrets{},
			Sessions:       newSessions(),
			AllowedOrigins: []string{testOrigin},
		}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no sessions", func(c *Config) { c.Sessions = nil }, "Sessions is required"},
		{"no origins", func(c *Config) { c.AllowedOrigins = nil }, "AllowedOrigins is required"},
		{"bad origin", func(c *Config) { c.AllowedOrigins = []string{"app.example.com"} }, "is not an origin"},
		{"no secrets", func(c *Config) { c.Secrets = nil }, "Secrets is required"},
		{"negative", func(c *Config) { c.MaxConns = -1 }, "MaxConns must not be negative"},
		{"backoff order", func(c *Config) { c.ReconnectMin, c.ReconnectMax = time.Second, time.Millisecond }, "ReconnectMax"},
		{"bad url", func(c *Config) { c.Feeds["demo"] = testFeed("https://x/v1") }, "feed demo: url"},
		{"bad mode", func(c *Config) {
			f := c.Feeds["demo"]
			f.Adapter.Auth.Mode = "cookie"
			c.Feeds["demo"] = f
		}, "is not none, query, header or message"},
		{"query without param", func(c *Config) {
			f := c.Feeds["demo"]
			f.Adapter.Auth = config.Auth{Mode: "query"}
			c.Feeds["demo"] = f
		}, "auth.param"},
		{"bad template", func(c *Config) {
			f := c.Feeds["demo"]
			f.Adapter.Subscribe = `{"symbols":{{symbols}}`
			c.Feeds["demo"] = f
		}, "is not JSON"},
		{"no preset, nothing set", func(c *Config) {
			c.Feeds["demo"] = config.Feed{URL: "ws://127.0.0.1:1/", Adapter: config.Adapter{Auth: config.Auth{Mode: "none"}}}
		}, "templates are required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good()
			tc.mutate(&cfg)
			r, err := New(cfg)
			if err == nil {
				r.Close()
				t.Fatal("New accepted the config")
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidConfig mentioning %q", err, tc.want)
			}
		})
	}
	r, err := New(good())
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	r.Close()
	if ready := r.Ready(); !ready["demo"] {
		t.Error("an unused feed is not ready")
	}
}

func TestMarketsimPreset(t *testing.T) {
	ad, err := newAdapter(testFeed("ws://127.0.0.1:1/v1/stream"))
	if err != nil {
		t.Fatal(err)
	}
	if ad.authMode != authMessage || ad.rate != 5 || ad.maxSyms != 200 || len(ad.busy) != 1 {
		t.Fatalf("marketsim preset: %+v", ad)
	}
	if got := string(ad.authMsg.render(testKey, "", nil)[0]); got != `{"action":"auth","key":"`+testKey+`"}` {
		t.Errorf("auth message %s", got)
	}
	if !ad.success.matches([]byte(`{"ev":"status","status":"auth_success"}`)) ||
		!ad.failure.matches([]byte(`{"ev":"status","status":"auth_failed"}`)) ||
		!ad.busy.matches([]byte(`{"ev":"status","status":"max_connections"}`)) {
		t.Error("preset matches do not recognise marketsim's answers")
	}
}
