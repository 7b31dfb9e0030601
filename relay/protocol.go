package relay

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// Browser actions (DESIGN 1.5).
const (
	actionSubscribe   = "subscribe"
	actionUnsubscribe = "unsubscribe"
	actionPing        = "ping"
)

// Error codes sent in {"type":"error"} messages; the connection stays open.
const (
	codeBadMessage     = "bad_message"
	codeInvalidSymbol  = "invalid_symbol"
	codeTooManySymbols = "too_many_symbols"
	codeUnknownSymbol  = "unknown_symbol"
)

// Close codes (DESIGN 1.5).
const (
	closeSessionEnded = websocket.StatusCode(4001) // session expired or revoked
	closePolicy       = websocket.StatusCode(4008) // message rate, connection limit, slow client
	closeTooBig       = websocket.StatusMessageTooBig
	closeUnavailable  = websocket.StatusTryAgainLater // 1013: the feed cannot be served now
	closeShutdown     = websocket.StatusGoingAway     // 1001
)

// maxSymbolLen is the longest symbol accepted.
const maxSymbolLen = 32

// request is a parsed browser message.
type request struct {
	action  string
	symbols []string // upper-cased, valid, without duplicates, in the order sent
}

// protoError is an error message for the browser: a stable code and a
// fixed text that never echoes what the browser sent.
type protoError struct {
	code, message string
	symbols       []string // checked symbols the error is about, or nil
}

func (e *protoError) Error() string { return e.code + ": " + e.message }

var (
	errBinary        = &protoError{code: codeBadMessage, message: "messages must be text frames holding one JSON object"}
	errUTF8          = &protoError{code: codeBadMessage, message: "message is not valid UTF-8"}
	errJSON          = &protoError{code: codeBadMessage, message: `message is not a JSON object like {"action":"subscribe","symbols":["AAPL"]}`}
	errAction        = &protoError{code: codeBadMessage, message: "unknown action: use subscribe, unsubscribe or ping"}
	errSymbolsShape  = &protoError{code: codeBadMessage, message: "symbols must be a non-empty array of strings"}
	errInvalidSymbol = &protoError{code: codeInvalidSymbol, message: "a symbol is 1 to 32 characters: letters, digits and . - / : _ (starting with a letter or digit)"}
)

func errTooManySymbols(limit int) *protoError {
	return &protoError{code: codeTooManySymbols, message: "at most " + strconv.Itoa(limit) + " symbols per session on this feed; nothing was subscribed"}
}

func errFeedFull(limit int) *protoError {
	return &protoError{code: codeTooManySymbols, message: "this feed holds its limit of " + strconv.Itoa(limit) + " symbols for all users; nothing was subscribed"}
}

// errUnknownSymbols names symbols the vendor refused. They passed the
// syntax check, so listing them echoes nothing unchecked.
func errUnknownSymbols(syms []string) *protoError {
	return &protoError{code: codeUnknownSymbol, message: "the vendor does not serve these symbols; nothing was subscribed for them", symbols: syms}
}

// parseRequest reads one browser frame. Any problem is a protoError that
// the caller sends back as an error message.
func parseRequest(typ websocket.MessageType, b []byte) (request, *protoError) {
	if typ != websocket.MessageText {
		return request{}, errBinary
	}
	if !utf8.Valid(b) {
		return request{}, errUTF8
	}
	var in struct {
		Action  *string         `json:"action"`
		Symbols json.RawMessage `json:"symbols"`
	}
	if err := json.Unmarshal(b, &in); err != nil || in.Action == nil {
		return request{}, errJSON
	}
	switch *in.Action {
	case actionPing:
		return request{action: actionPing}, nil
	case actionSubscribe, actionUnsubscribe:
	default:
		return request{}, errAction
	}
	var syms []string
	if len(in.Symbols) == 0 || json.Unmarshal(in.Symbols, &syms) != nil || len(syms) == 0 {
		return request{}, errSymbolsShape
	}
	out := make([]string, 0, len(syms))
	seen := make(map[string]struct{}, len(syms))
	for _, s := range syms {
		n, ok := normalizeSymbol(s)
		if !ok {
			return request{}, errInvalidSymbol
		}
		if _, dup := seen[n]; dup {
			continue
		}
		seen[n] = struct{}{}
		out = append(out, n)
	}
	return request{action: *in.Action, symbols: out}, nil
}

// normalizeSymbol upper-cases s and checks it against
// ^[A-Z0-9][A-Z0-9./:_-]{0,31}$. Symbols are matched upper-case on both
// sides, so "aapl" and "AAPL" are one subscription.
func normalizeSymbol(s string) (string, bool) {
	if len(s) == 0 || len(s) > maxSymbolLen {
		return "", false
	}
	lower := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case 'a' <= c && c <= 'z':
			lower = true
		case i > 0 && (c == '.' || c == '-' || c == '/' || c == ':' || c == '_'):
		default:
			return "", false
		}
	}
	if !lower {
		return s, true
	}
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b), true
}

// Messages to the browser. Field order follows DESIGN 1.5.

var (
	msgPong               = []byte(`{"type":"pong"}`)
	msgStatusConnected    = []byte(`{"type":"status","upstream":"connected"}`)
	msgStatusReconnecting = []byte(`{"type":"status","upstream":"reconnecting"}`)
)

func readyMessage(feed string, maxSymbols int) []byte {
	type limits struct {
		MaxSymbols int `json:"max_symbols"`
	}
	b, _ := json.Marshal(struct {
		Type   string `json:"type"`
		Feed   string `json:"feed"`
		Limits limits `json:"limits"`
	}{"ready", feed, limits{maxSymbols}})
	return b
}

func ackMessage(typ string, syms []string) []byte {
	b, _ := json.Marshal(struct {
		Type    string   `json:"type"`
		Symbols []string `json:"symbols"`
	}{typ, syms})
	return b
}

func errorMessage(e *protoError) []byte {
	b, _ := json.Marshal(struct {
		Type    string   `json:"type"`
		Code    string   `json:"code"`
		Message string   `json:"message"`
		Symbols []string `json:"symbols,omitempty"`
	}{"error", e.code, e.message, e.symbols})
	return b
}

// dataPrefix is the start of every data message of a feed; the vendor
// messages follow, comma separated, then dataSuffix.
func dataPrefix(feed string) []byte {
	return fmt.Appendf(nil, `{"type":"data","feed":%s,"messages":[`, jsonString(feed))
}

var dataSuffix = []byte(`]}`)

// appendData appends a data message holding msgs to buf.
func appendData(buf, prefix []byte, msgs []pendingMsg) []byte {
	buf = append(buf, prefix...)
	for i, m := range msgs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, m.raw...)
	}
	return append(buf, dataSuffix...)
}
