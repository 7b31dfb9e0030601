package relay

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/coder/websocket"
)

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"action":"ping"}`,
		`{"action":"subscribe","symbols":["AAPL","msft","BRK.B"]}`,
		`{"action":"unsubscribe","symbols":["EUR/USD"]}`,
		`{"action":"subscribe","symbols":[1]}`,
		`{"action":"subscribe","symbols":"A"}`,
		`{"action":"subscribe","symbols":["A\u0000"]}`,
		`[]`, `null`, `{`, "\xff",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(`{"action":"ping"}`), true)
	f.Fuzz(func(t *testing.T, b []byte, binary bool) {
		typ := websocket.MessageText
		if binary {
			typ = websocket.MessageBinary
		}
		req, perr := parseRequest(typ, b)
		if perr != nil {
			switch perr.code {
			case codeBadMessage, codeInvalidSymbol:
			default:
				t.Fatalf("unexpected code %q", perr.code)
			}
			if perr.message == "" || !json.Valid(errorMessage(perr)) {
				t.Fatalf("bad error message %+v", perr)
			}
			return
		}
		if binary || !utf8.Valid(b) {
			t.Fatalf("accepted a binary or invalid UTF-8 frame: %q", b)
		}
		switch req.action {
		case actionPing:
			if req.symbols != nil {
				t.Fatal("ping with symbols")
			}
		case actionSubscribe, actionUnsubscribe:
			if len(req.symbols) == 0 {
				t.Fatal("subscription without symbols")
			}
			seen := map[string]bool{}
			for _, s := range req.symbols {
				if n, ok := normalizeSymbol(s); !ok || n != s || seen[s] {
					t.Fatalf("symbol %q not normalized, invalid or repeated", s)
				}
				if strings.ToUpper(s) != s || strings.ContainsAny(s, " \"<>\\") {
					t.Fatalf("symbol %q has forbidden characters", s)
				}
				seen[s] = true
			}
			if !json.Valid(ackMessage("subscribed", req.symbols)) {
				t.Fatal("ack is not JSON")
			}
		default:
			t.Fatalf("unknown action %q accepted", req.action)
		}
	})
}

// oracleMessages decodes frame with encoding/json: its messages, and for
// each, the first "sym" value and the first "ev" value, or ok=false for
// objects with repeated keys (where the scanner's first-wins choice is
// not comparable).
type oracleMsg struct {
	raw     string
	sym     string
	control bool
	ok      bool
}

func oracleMessages(t *testing.T, frame []byte) []oracleMsg {
	var elems []json.RawMessage
	trimmed := bytes.TrimLeft(frame, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(frame, &elems); err != nil {
			t.Fatalf("oracle: %v", err)
		}
	} else {
		var one json.RawMessage
		if err := json.Unmarshal(frame, &one); err != nil {
			t.Fatalf("oracle: %v", err)
		}
		elems = []json.RawMessage{one}
	}
	out := make([]oracleMsg, 0, len(elems))
	for _, e := range elems {
		m := oracleMsg{raw: string(e), ok: true}
		if len(e) > 0 && e[0] == '{' {
			dec := json.NewDecoder(bytes.NewReader(e))
			_, _ = dec.Token() // {
			keys := map[string]bool{}
			var ev, sym *string
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					t.Fatalf("oracle: %v", err)
				}
				k := tok.(string)
				var v json.RawMessage
				if err := dec.Decode(&v); err != nil && err != io.EOF {
					t.Fatalf("oracle: %v", err)
				}
				if keys[k] {
					m.ok = false
				}
				keys[k] = true
				var s string
				if json.Unmarshal(v, &s) == nil {
					switch {
					case k == "sym" && sym == nil:
						sym = &s
					case k == "ev" && ev == nil:
						ev = &s
					}
				}
			}
			if sym != nil {
				m.sym = strings.Map(func(r rune) rune {
					if 'a' <= r && r <= 'z' {
						return r - 'a' + 'A'
					}
					return r
				}, *sym)
			}
			m.control = ev != nil && *ev == "status"
		}
		out = append(out, m)
	}
	return out
}

func FuzzSplitFrame(f *testing.F) {
	for _, s := range []string{
		`[{"ev":"T","sym":"AAPL","p":191.2,"s":100,"t":1733241600123},{"ev":"Q","sym":"MSFT","bp":410.1,"ap":410.3,"t":1733241600125}]`,
		`[{"ev":"status","status":"connected"}]`,
		`{"sym":"aapl","ev":"T"}`,
		`[{"s\u0079m":"A","ev":"st\u0061tus"},1,"x",[{"sym":"B"}],null]`,
		`[{"sym":"A","sym":"B"}]`,
		` [ ] `, `[`, `{"sym":"A"`, `"]"`, "[\"\xff\"]",
	} {
		f.Add([]byte(s))
	}
	s := scanner{symbolField: "sym", control: newMatcher(map[string]string{"ev": "status"})}
	f.Fuzz(func(t *testing.T, frame []byte) {
		msgs, ok := s.split(nil, frame)
		// The walkers never panic, even on input json.Valid refused.
		eachMember(frame, func([]byte, bool, []byte) {})
		_, _ = skipValue(frame, 0)
		if ok != (json.Valid(frame) && utf8.Valid(frame)) { // browsers fail text frames with invalid UTF-8
			t.Fatalf("ok = %v for %q", ok, frame)
		}
		if !ok {
			return
		}
		want := oracleMessages(t, frame)
		if len(msgs) != len(want) {
			t.Fatalf("%d messages, oracle %d, for %q", len(msgs), len(want), frame)
		}
		for i, m := range msgs {
			w := want[i]
			if string(m.raw) != w.raw {
				t.Fatalf("message %d = %q, oracle %q", i, m.raw, w.raw)
			}
			if !json.Valid(m.raw) {
				t.Fatalf("message %d is not JSON: %q", i, m.raw)
			}
			if !w.ok || !utf8.Valid(frame) {
				continue
			}
			if string(m.sym) != w.sym || m.control != w.control {
				t.Fatalf("message %q: sym %q control %v, oracle %q %v", m.raw, m.sym, m.control, w.sym, w.control)
			}
		}
	})
}

// FuzzSplitWrapped checks symbol extraction with a dotted symbol path and
// a wrapped messages array (Finnhub, Kraken, Binance combined streams):
// never a panic, every message is JSON cut from the frame, and a symbol,
// when found, is the upper-cased string at the path.
func FuzzSplitWrapped(f *testing.F) {
	for _, s := range []string{
		`{"type":"trade","data":[{"s":{"v":"AAPL"}},{"s":{"v":"msft"}}]}`,
		`{"data":{"s":"x"}}`, `[{"data":[1,{"s":{"v":"A"}}]},{"s":{"v":"B"}}]`,
		`{"channel":"heartbeat","data":[]}`, `{"data":[`, `{"data":[{"s":{"v":"\u0041"}}]}`,
	} {
		f.Add([]byte(s))
	}
	s := newScanner("s.v", "data", newMatcher(map[string]string{"channel": "heartbeat|status"}))
	f.Fuzz(func(t *testing.T, frame []byte) {
		msgs, ok := s.split(nil, frame)
		if ok != (json.Valid(frame) && utf8.Valid(frame)) { // browsers fail text frames with invalid UTF-8
			t.Fatalf("ok = %v for %q", ok, frame)
		}
		for _, m := range msgs {
			if !json.Valid(m.raw) || !bytes.Contains(frame, m.raw) {
				t.Fatalf("message %q is not JSON cut from %q", m.raw, frame)
			}
			if m.sym == nil || !utf8.Valid(m.raw) {
				continue
			}
			var v struct {
				S struct {
					V string `json:"v"`
				} `json:"s"`
			}
			if err := json.Unmarshal(m.raw, &v); err != nil {
				continue // duplicate keys or other shapes the oracle cannot judge
			}
			want := strings.Map(func(r rune) rune {
				if 'a' <= r && r <= 'z' {
					return r - 'a' + 'A'
				}
				return r
			}, v.S.V)
			if string(m.sym) != want {
				// encoding/json keeps the last duplicate key; the scanner the first
				if bytes.Count(m.raw, []byte(`"s"`)) < 2 && bytes.Count(m.raw, []byte(`"v"`)) < 2 {
					t.Fatalf("symbol %q, want %q, in %q", m.sym, want, m.raw)
				}
			}
		}
	})
}
