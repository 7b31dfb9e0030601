package config

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"
)

// Feed is a vendor WebSocket stream relayed to browsers under /ws/{name}.
type Feed struct {
	// URL is the vendor's stream, wss:// (ws:// only for loopback hosts).
	URL string `yaml:"url"`
	// Key names the secret that authenticates the upstream connection.
	Key KeyRef `yaml:"key"`
	// Adapter describes the vendor's protocol; Preset fills the rest.
	Adapter Adapter `yaml:"adapter"`
	// MaxSymbols per session on this feed; 0 means TICKGATE_WS_MAX_SYMBOLS.
	MaxSymbols int `yaml:"max_symbols"`
	// MaxFeedSymbols caps the distinct symbols the feed holds upstream for
	// all browsers together, so browsers cannot make the relay subscribe
	// the vendor to an unbounded number of symbols. 0 means 1000, or the
	// adapter's max_symbols_per_connection when that is lower.
	MaxFeedSymbols int `yaml:"max_feed_symbols"`
	// BatchWindow collects messages per browser into one frame. Default 25ms.
	BatchWindow Duration `yaml:"batch_window"`
	// Roles, when set, admit only sessions holding one of these roles
	// (403 forbidden_role before the upgrade) and give each role its own
	// symbol limit and allowlist, e.g. {free: {max_symbols: 20, symbols:
	// [AAPL, MSFT]}, realtime: {}}. See Feed.Access. Empty: every session.
	Roles map[string]FeedRole `yaml:"roles"`
}

// Adapter is a declarative description of a vendor's WebSocket protocol.
// Templates are JSON text with placeholders: {{key}} (the secret, JSON
// string-escaped), {{key_id}} (Auth.KeyID, JSON string-escaped),
// {{symbols}} (a JSON array of strings), {{symbols_csv}} (a JSON string
// "A,B") and {{symbol}} (one JSON string: the template is then sent once
// per symbol, for vendors that take one symbol per message). Symbols are
// written in the vendor's form (SymbolPrefixes, SymbolSuffix, SymbolCase).
type Adapter struct {
	// Preset names a built-in adapter ("marketsim"); fields set here
	// override it.
	Preset string `yaml:"preset"`
	// Auth is how the upstream connection authenticates.
	Auth Auth `yaml:"auth"`
	// Subscribe and Unsubscribe are message templates.
	Subscribe   string `yaml:"subscribe"`
	Unsubscribe string `yaml:"unsubscribe"`
	// SymbolField is the field of a data message that holds its symbol; a
	// dotted path ("data.s") reaches into nested objects.
	SymbolField string `yaml:"symbol_field"`
	// MessagesField names the array field of a frame's object whose
	// elements are the data messages (Finnhub's and Kraken's "data"); each
	// element is routed and relayed on its own. Empty: a frame is one
	// message or a JSON array of messages.
	MessagesField string `yaml:"messages_field"`
	// SymbolPrefixes, SymbolSuffix and SymbolCase write a browser symbol
	// the vendor's way in subscribe and unsubscribe messages: each prefix
	// gives one entry (Polygon's ["T.","Q."] subscribes AAPL as T.AAPL and
	// Q.AAPL), the suffix is appended (Binance's "@trade") and the case is
	// upper (default: as checked) or lower (Binance).
	SymbolPrefixes []string `yaml:"symbol_prefixes"`
	SymbolSuffix   string   `yaml:"symbol_suffix"`
	SymbolCase     string   `yaml:"symbol_case"`
	// Heartbeat is a message sent every HeartbeatInterval to vendors that
	// close a connection whose client is silent (Twelve Data).
	Heartbeat         string   `yaml:"heartbeat"`
	HeartbeatInterval Duration `yaml:"heartbeat_interval"`
	// MaxLifetime reconnects (and resubscribes) before a vendor's own
	// connection lifetime ends (Binance: 24h). 0: no limit.
	MaxLifetime Duration `yaml:"max_lifetime"`
	// Control matches messages that are vendor status, not data; they are
	// never relayed to browsers.
	Control Match `yaml:"control"`
	// Busy matches the vendor's "too many connections for this key"
	// answer (e.g. status max_connections). The relay then backs off much
	// longer before reconnecting, so two holders of one key do not evict
	// each other in a loop.
	Busy Match `yaml:"busy"`
	// Rejected matches the vendor's answer refusing symbols (unknown, or
	// not in the plan), among Control messages; RejectedSymbols is the
	// field of that answer listing them (a JSON array of strings, a
	// comma-separated string or one string). Browsers holding them get an
	// error message with code unknown_symbol and lose the subscription.
	Rejected        Match  `yaml:"rejected"`
	RejectedSymbols string `yaml:"rejected_symbols_field"`
	// MaxMessageRate is how many messages per second the relay sends to
	// the vendor on one connection (auth, subscribe, unsubscribe), kept
	// below the vendor's own limit. 0 means the preset's, else 5.
	MaxMessageRate int `yaml:"max_message_rate"`
	// MaxSymbols caps the distinct symbols subscribed on the one upstream
	// connection (the vendor's per-connection limit); browsers asking for
	// more get too_many_symbols. 0 means the preset's, else no cap.
	MaxSymbols int `yaml:"max_symbols_per_connection"`
	// MaxConnections is how many upstream connections the relay may open
	// with the feed's key (the vendor's per-key cap). Symbols are packed
	// onto as few connections as MaxSymbols allows; an extra connection
	// opens only when the others are full and closes when it holds no
	// symbol. 0 means the preset's, else 1.
	MaxConnections int `yaml:"max_connections"`
}

// Auth describes upstream authentication.
type Auth struct {
	// Mode is none, query (key in URL parameter Param), header (key in
	// header Param) or message (send Message after connecting).
	Mode    string `yaml:"mode"`
	Param   string `yaml:"param"`
	Message string `yaml:"message"`
	// KeyID is the public half of a two-part credential (Alpaca's key
	// id), for {{key_id}}; the secret half is the feed's key. Not secret:
	// it may be written here or come from ${NAME}.
	KeyID string `yaml:"key_id"`
	// Success and Failure match the vendor's answer to the auth message.
	// When Success is set (in any mode), the relay waits for it before
	// subscribing (e.g. EODHD's "Authorized").
	Success Match `yaml:"success"`
	Failure Match `yaml:"failure"`
}

// Match is a set of top-level field = value conditions, all of which must
// hold. A value is a string, or the JSON text of a number, true, false or
// null (200, false); "a|b" matches either.
type Match map[string]string

// presets are the built-in adapters.
var presets = map[string]Adapter{
	"marketsim": {
		Auth: Auth{
			Mode:    "message",
			Message: `{"action":"auth","key":{{key}}}`,
			Success: Match{"status": "auth_success"},
			Failure: Match{"status": "auth_failed"},
		},
		Subscribe:       `{"action":"subscribe","symbols":{{symbols}}}`,
		Unsubscribe:     `{"action":"unsubscribe","symbols":{{symbols}}}`,
		SymbolField:     "sym",
		Control:         Match{"ev": "status"},
		Busy:            Match{"status": "max_connections"},
		Rejected:        Match{"status": "error", "message": "unknown symbol"},
		RejectedSymbols: "symbols",
		MaxMessageRate:  5,   // marketsim closes 4008 above 10 messages per second
		MaxSymbols:      200, // marketsim's symbol_limit per connection
		MaxConnections:  1,   // marketsim's default cap per key
	},
	// Polygon.io / Massive stocks (wss://socket.polygon.io/stocks, or
	// delayed.polygon.io): auth message after "connected", prefixed CSV
	// subscriptions (trades and quotes), arrays mixing event types, one
	// connection per key per cluster.
	"polygon": polygonPreset,
	"massive": polygonPreset,
	// Alpaca market data v2 (wss://stream.data.alpaca.markets/v2/iex):
	// auth message with the key id (auth.key_id) and the secret (the
	// feed's key), trades and quotes, "S" holds the symbol, one connection
	// per key (a second gets 406 "connection limit exceeded").
	"alpaca": {
		Auth: Auth{
			Mode:    "message",
			Message: `{"action":"auth","key":{{key_id}},"secret":{{key}}}`,
			Success: Match{"T": "success", "msg": "authenticated"},
			Failure: Match{"T": "error", "code": "401|402|404"},
		},
		Subscribe:      `{"action":"subscribe","trades":{{symbols}},"quotes":{{symbols}}}`,
		Unsubscribe:    `{"action":"unsubscribe","trades":{{symbols}},"quotes":{{symbols}}}`,
		SymbolField:    "S",
		Control:        Match{"T": "success|error|subscription"},
		Busy:           Match{"T": "error", "code": "406"},
		MaxMessageRate: 5,
		MaxConnections: 1,
	},
	// Finnhub (wss://ws.finnhub.io): token in the URL, one symbol per
	// message, trades wrapped in {"type":"trade","data":[...]}.
	"finnhub": {
		Auth:           Auth{Mode: "query", Param: "token"},
		Subscribe:      `{"type":"subscribe","symbol":{{symbol}}}`,
		Unsubscribe:    `{"type":"unsubscribe","symbol":{{symbol}}}`,
		MessagesField:  "data",
		SymbolField:    "s",
		Control:        Match{"type": "ping|error"},
		MaxMessageRate: 5,
		MaxConnections: 1,
	},
	// Twelve Data (wss://ws.twelvedata.com/v1/quotes/price): apikey in the
	// URL, CSV in params, a client heartbeat every 10 s, refused symbols
	// listed in subscribe-status "fails".
	"twelvedata": {
		Auth:              Auth{Mode: "query", Param: "apikey"},
		Subscribe:         `{"action":"subscribe","params":{"symbols":{{symbols_csv}}}}`,
		Unsubscribe:       `{"action":"unsubscribe","params":{"symbols":{{symbols_csv}}}}`,
		SymbolField:       "symbol",
		Control:           Match{"event": "subscribe-status|unsubscribe-status|heartbeat|reset-status"},
		Rejected:          Match{"event": "subscribe-status"},
		RejectedSymbols:   "fails",
		Heartbeat:         `{"action":"heartbeat"}`,
		HeartbeatInterval: Duration(10 * time.Second),
		MaxMessageRate:    5,
		MaxConnections:    1,
	},
	// EODHD (wss://ws.eodhistoricaldata.com/ws/us): api_token in the URL,
	// wait for "Authorized" before subscribing, CSV symbols, 50 symbols.
	"eodhd": {
		Auth: Auth{
			Mode:    "query",
			Param:   "api_token",
			Success: Match{"message": "Authorized"},
			Failure: Match{"status_code": "401|403"},
		},
		Subscribe:      `{"action":"subscribe","symbols":{{symbols_csv}}}`,
		Unsubscribe:    `{"action":"unsubscribe","symbols":{{symbols_csv}}}`,
		SymbolField:    "s",
		Control:        Match{"status_code": "200"},
		MaxMessageRate: 5,
		MaxSymbols:     50,
		MaxConnections: 1,
	},
	// Binance spot public streams (wss://stream.binance.com:9443/ws): no
	// key, lower-case stream names "btcusdt@trade", 5 messages a second
	// in, 1024 streams per connection, 24 h lifetime. For the combined
	// endpoint (/stream) set symbol_field: data.s.
	"binance": {
		Auth:           Auth{Mode: "none"},
		Subscribe:      `{"method":"SUBSCRIBE","params":{{symbols}},"id":1}`,
		Unsubscribe:    `{"method":"UNSUBSCRIBE","params":{{symbols}},"id":2}`,
		SymbolField:    "s",
		SymbolSuffix:   "@trade",
		SymbolCase:     "lower",
		MaxMessageRate: 4,
		MaxSymbols:     1024,
		MaxConnections: 5,
		MaxLifetime:    Duration(23 * time.Hour),
	},
	// Coinbase Exchange (wss://ws-feed.exchange.coinbase.com): public
	// ticker channel, product ids such as BTC-USD.
	"coinbase": {
		Auth:           Auth{Mode: "none"},
		Subscribe:      `{"type":"subscribe","product_ids":{{symbols}},"channels":["ticker"]}`,
		Unsubscribe:    `{"type":"unsubscribe","product_ids":{{symbols}},"channels":["ticker"]}`,
		SymbolField:    "product_id",
		Control:        Match{"type": "subscriptions|heartbeat|error"},
		MaxMessageRate: 5,
		MaxConnections: 1,
	},
	// Kraken spot v2 (wss://ws.kraken.com/v2): public ticker channel,
	// symbols such as BTC/USD in {"channel":"ticker","data":[...]}.
	"kraken": {
		Auth:            Auth{Mode: "none"},
		Subscribe:       `{"method":"subscribe","params":{"channel":"ticker","symbol":{{symbols}}}}`,
		Unsubscribe:     `{"method":"unsubscribe","params":{"channel":"ticker","symbol":{{symbols}}}}`,
		MessagesField:   "data",
		SymbolField:     "symbol",
		Control:         Match{"channel": "heartbeat|status"},
		Rejected:        Match{"method": "subscribe", "success": "false"},
		RejectedSymbols: "symbol",
		MaxMessageRate:  5,
		MaxConnections:  1,
	},
	// Finage (wss://<your socket>.finage.ws:<port>): socket key in the
	// URL, CSV symbols, single objects with "s".
	"finage": {
		Auth:           Auth{Mode: "query", Param: "token"},
		Subscribe:      `{"action":"subscribe","symbols":{{symbols_csv}}}`,
		Unsubscribe:    `{"action":"unsubscribe","symbols":{{symbols_csv}}}`,
		SymbolField:    "s",
		MaxMessageRate: 5,
		MaxConnections: 1,
	},
}

var polygonPreset = Adapter{
	Auth: Auth{
		Mode:    "message",
		Message: `{"action":"auth","params":{{key}}}`,
		Success: Match{"ev": "status", "status": "auth_success"},
		Failure: Match{"ev": "status", "status": "auth_failed"},
	},
	Subscribe:      `{"action":"subscribe","params":{{symbols_csv}}}`,
	Unsubscribe:    `{"action":"unsubscribe","params":{{symbols_csv}}}`,
	SymbolPrefixes: []string{"T.", "Q."},
	SymbolField:    "sym",
	Control:        Match{"ev": "status"},
	Busy:           Match{"ev": "status", "status": "max_connections"},
	MaxMessageRate: 5,
	MaxConnections: 1,
}

// Resolved returns the adapter with its preset's values filled in where
// the adapter leaves them empty.
func (a Adapter) Resolved() Adapter {
	p, ok := presets[a.Preset]
	if !ok {
		return a
	}
	if a.Auth.Mode == "" {
		keyID := a.Auth.KeyID
		a.Auth = p.Auth
		if keyID != "" {
			a.Auth.KeyID = keyID
		}
	}
	if a.Subscribe == "" {
		a.Subscribe = p.Subscribe
	}
	if a.Unsubscribe == "" {
		a.Unsubscribe = p.Unsubscribe
	}
	if a.SymbolField == "" {
		a.SymbolField = p.SymbolField
	}
	if a.MessagesField == "" {
		a.MessagesField = p.MessagesField
	}
	if a.SymbolPrefixes == nil {
		a.SymbolPrefixes = p.SymbolPrefixes
	}
	if a.SymbolSuffix == "" {
		a.SymbolSuffix = p.SymbolSuffix
	}
	if a.SymbolCase == "" {
		a.SymbolCase = p.SymbolCase
	}
	if a.Heartbeat == "" {
		a.Heartbeat, a.HeartbeatInterval = p.Heartbeat, p.HeartbeatInterval
	}
	if a.MaxLifetime == 0 {
		a.MaxLifetime = p.MaxLifetime
	}
	if a.Control == nil {
		a.Control = p.Control
	}
	if a.Busy == nil {
		a.Busy = p.Busy
	}
	if a.Rejected == nil {
		a.Rejected = p.Rejected
	}
	if a.RejectedSymbols == "" {
		a.RejectedSymbols = p.RejectedSymbols
	}
	if a.MaxMessageRate == 0 {
		a.MaxMessageRate = p.MaxMessageRate
	}
	if a.MaxSymbols == 0 {
		a.MaxSymbols = p.MaxSymbols
	}
	if a.MaxConnections == 0 {
		a.MaxConnections = p.MaxConnections
	}
	return a
}

func (f Feed) validate(where string, p *Problems) {
	u, err := url.Parse(f.URL)
	switch {
	case f.URL == "":
		p.Addf("%s.url: required", where)
	case err != nil || u.Host == "" || u.User != nil:
		p.Addf("%s.url: %q is not a URL like wss://stream.vendor.com/v1", where, f.URL)
	case u.Scheme == "wss":
	case u.Scheme == "ws" && IsLoopbackHost(u.Hostname()):
	case u.Scheme == "ws":
		p.Addf("%s.url: ws:// is allowed only for loopback hosts; use wss://", where)
	default:
		p.Addf("%s.url: scheme %q is not wss", where, u.Scheme)
	}
	a := f.Adapter.Resolved()
	if f.Adapter.Preset != "" {
		if _, ok := presets[f.Adapter.Preset]; !ok {
			p.Addf("%s.adapter.preset: %q is not a known preset (%s)", where, f.Adapter.Preset, strings.Join(sortedKeys(presets), ", "))
			return // the adapter's other problems follow from this one
		}
	}
	switch a.Auth.Mode {
	case "none":
	case "query", "header":
		if a.Auth.Param == "" {
			p.Addf("%s.adapter.auth.param: required for mode %s", where, a.Auth.Mode)
		}
		f.Key.validate(where, false, p)
	case "message":
		if !strings.Contains(a.Auth.Message, "{{key}}") {
			p.Addf("%s.adapter.auth.message: must contain {{key}}", where)
		}
		f.Key.validate(where, false, p)
	default:
		p.Addf("%s.adapter.auth.mode: %q is not none, query, header or message", where, a.Auth.Mode)
	}
	if a.Subscribe == "" || a.Unsubscribe == "" {
		p.Addf("%s.adapter: subscribe and unsubscribe templates are required", where)
	}
	if a.SymbolField == "" {
		p.Addf("%s.adapter.symbol_field: required", where)
	}
	if strings.Contains(a.Auth.Message, "{{key_id}}") && a.Auth.KeyID == "" {
		p.Addf("%s.adapter.auth.key_id: required: the auth message uses {{key_id}}", where)
	}
	switch a.SymbolCase {
	case "", "upper", "lower":
	default:
		p.Addf("%s.adapter.symbol_case: %q is not upper or lower", where, a.SymbolCase)
	}
	if (a.Heartbeat == "") != (a.HeartbeatInterval <= 0) {
		p.Addf("%s.adapter: heartbeat and a positive heartbeat_interval go together", where)
	}
	if a.MaxLifetime < 0 {
		p.Addf("%s.adapter.max_lifetime: must not be negative", where)
	}
	for _, t := range [...]struct{ name, text string }{{"subscribe", a.Subscribe}, {"unsubscribe", a.Unsubscribe}, {"auth.message", a.Auth.Message}, {"heartbeat", a.Heartbeat}} {
		if t.text != "" && !json.Valid([]byte(sampleTemplate(t.text))) {
			p.Addf("%s.adapter.%s: is not JSON once {{key}}, {{symbols}}, {{symbols_csv}} or {{symbol}} is filled in", where, t.name)
		}
	}
	if a.MaxMessageRate < 0 {
		p.Addf("%s.adapter.max_message_rate: must not be negative", where)
	}
	if a.MaxSymbols < 0 {
		p.Addf("%s.adapter.max_symbols_per_connection: must not be negative", where)
	}
	if a.MaxConnections < 0 {
		p.Addf("%s.adapter.max_connections: must not be negative", where)
	}
	if f.MaxSymbols < 0 {
		p.Addf("%s.max_symbols: must not be negative", where)
	}
	if f.MaxFeedSymbols < 0 {
		p.Addf("%s.max_feed_symbols: must not be negative", where)
	}
	validateFeedRoles(where, f, p)
	if (len(a.Rejected) > 0) != (a.RejectedSymbols != "") {
		p.Addf("%s.adapter: rejected and rejected_symbols_field go together", where)
	}
	if f.BatchWindow < 0 {
		p.Addf("%s.batch_window: must not be negative", where)
	}
}

// sampleTemplate fills a template's placeholders with sample values, to
// check that the result is JSON.
func sampleTemplate(t string) string {
	return strings.NewReplacer(
		"{{key}}", `"k"`,
		"{{key_id}}", `"i"`,
		"{{symbols}}", `["A","B"]`,
		"{{symbols_csv}}", `"A,B"`,
		"{{symbol}}", `"A"`,
	).Replace(t)
}
