package marketsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Status values of {"ev":"status"} frames.
const (
	StatusConnected      = "connected"
	StatusAuthSuccess    = "auth_success"
	StatusAuthFailed     = "auth_failed"
	StatusAuthTimeout    = "auth_timeout"
	StatusMaxConnections = "max_connections"
	StatusSubscribed     = "subscribed"
	StatusUnsubscribed   = "unsubscribed"
	StatusSymbolLimit    = "symbol_limit"
	StatusSlowClient     = "slow_client"
	StatusError          = "error"
)

// Close codes of the stream.
const (
	CloseAuthFailed     = 4001
	CloseAuthTimeout    = 4002
	CloseMaxConnections = 4003
	ClosePongTimeout    = 4004
	CloseSlowClient     = 4005
	CloseMessageRate    = 4008
)

// clientMessage is a parsed client frame.
type clientMessage struct {
	Action  string
	Key     string
	Symbols []string
}

// wireMessage is the JSON shape clients send. Symbols may be an array of
// strings or a comma-separated string; Params is accepted as an alias of
// Key for auth (Polygon style).
type wireMessage struct {
	Action  string          `json:"action"`
	Key     json.RawMessage `json:"key"`
	Params  json.RawMessage `json:"params"`
	Symbols json.RawMessage `json:"symbols"`
}

// parseClientMessage parses one untrusted client frame. Its errors wrap
// errBadMessage and their text is safe to send back (it never contains
// the key).
func parseClientMessage(data []byte) (clientMessage, error) {
	var w wireMessage
	d := bytes.TrimSpace(data)
	if len(d) == 0 || d[0] != '{' {
		return clientMessage{}, fmt.Errorf("%w: expected a JSON object", errBadMessage)
	}
	if err := json.Unmarshal(d, &w); err != nil {
		return clientMessage{}, fmt.Errorf("%w: not valid JSON", errBadMessage)
	}
	m := clientMessage{Action: w.Action}
	switch w.Action {
	case "":
		return m, fmt.Errorf("%w: missing action", errBadMessage)
	case "auth":
		raw := w.Key
		if len(raw) == 0 {
			raw = w.Params
		}
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &m.Key); err != nil {
				return m, fmt.Errorf("%w: key must be a string", errBadMessage)
			}
		}
	case "subscribe", "unsubscribe":
		syms, err := parseSymbols(w.Symbols)
		if err != nil {
			return m, err
		}
		m.Symbols = syms
	}
	return m, nil
}

// parseSymbols accepts ["A","B"] or "A,B".
func parseSymbols(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, fmt.Errorf("%w: symbols required", errBadMessage)
	}
	var list []string
	switch raw[0] {
	case '[':
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("%w: symbols must be an array of strings", errBadMessage)
		}
		for i := range list {
			list[i] = strings.TrimSpace(list[i])
		}
	case '"':
		var csv string
		if err := json.Unmarshal(raw, &csv); err != nil {
			return nil, fmt.Errorf("%w: symbols must be an array of strings", errBadMessage)
		}
		list = splitCSV(csv)
	default:
		return nil, fmt.Errorf("%w: symbols must be an array of strings", errBadMessage)
	}
	out := list[:0]
	for _, s := range list {
		if s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: symbols required", errBadMessage)
	}
	return out, nil
}

// statusEvent is a {"ev":"status"} object; frames are arrays of one.
type statusEvent struct {
	Ev      string   `json:"ev"`
	Status  string   `json:"status"`
	Message string   `json:"message,omitempty"`
	Symbols []string `json:"symbols,omitempty"`
}

func statusFrame(status, message string, symbols []string) []byte {
	b, err := json.Marshal([]statusEvent{{Ev: "status", Status: status, Message: message, Symbols: symbols}})
	if err != nil { // cannot happen: strings only
		return []byte(`[{"ev":"status","status":"error"}]`)
	}
	return b
}
