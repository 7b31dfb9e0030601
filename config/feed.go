package config

import (
	"encoding/json"
	"net/url"
	"strings"
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
	// BatchWindow collects messages per browser into one frame. Default 25ms.
	BatchWindow Duration `yaml:"batch_window"`
}

// Adapter is a declarative description of a vendor's WebSocket protocol.
// Templates are JSON text with placeholders: {{key}} (the secret, JSON
// string-escaped), {{symbols}} (a JSON array of strings), {{symbols_csv}}
// (a JSON string "A,B") and {{symbol}} (one JSON string: the template is
// then sent once per symbol, for vendors that take one symbol per message).
type Adapter struct {
	// Preset names a built-in adapter ("marketsim"); fields set here
	// override it.
	Preset string `yaml:"preset"`
	// Auth is how the upstream connection authenticates.
	Auth Auth `yaml:"auth"`
	// Subscribe and Unsubscribe are message templates.
	Subscribe   string `yaml:"subscribe"`
	Unsubscribe string `yaml:"unsubscribe"`
	// SymbolField is the field of a data message that holds its symbol.
	SymbolField string `yaml:"symbol_field"`
	// Control matches messages that are vendor status, not data; they are
	// never relayed to browsers.
	Control Match `yaml:"control"`
	// Busy matches the vendor's "too many connections for this key"
	// answer (e.g. status max_connections). The relay then backs off much
	// longer before reconnecting, so two holders of one key do not evict
	// each other in a loop.
	Busy Match `yaml:"busy"`
	// MaxMessageRate is how many messages per second the relay sends to
	// the vendor on one connection (auth, subscribe, unsubscribe), kept
	// below the vendor's own limit. 0 means the preset's, else 5.
	MaxMessageRate int `yaml:"max_message_rate"`
	// MaxSymbols caps the distinct symbols subscribed on the one upstream
	// connection (the vendor's per-connection limit); browsers asking for
	// more get too_many_symbols. 0 means the preset's, else no cap.
	MaxSymbols int `yaml:"max_symbols_per_connection"`
}

// Auth describes upstream authentication.
type Auth struct {
	// Mode is none, query (key in URL parameter Param), header (key in
	// header Param) or message (send Message after connecting).
	Mode    string `yaml:"mode"`
	Param   string `yaml:"param"`
	Message string `yaml:"message"`
	// Success and Failure match the vendor's answer to the auth message.
	// When Success is set (in any mode), the relay waits for it before
	// subscribing (e.g. EODHD's "Authorized").
	Success Match `yaml:"success"`
	Failure Match `yaml:"failure"`
}

// Match is a set of top-level field = string value conditions, all of which
// must hold.
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
		Subscribe:      `{"action":"subscribe","symbols":{{symbols}}}`,
		Unsubscribe:    `{"action":"unsubscribe","symbols":{{symbols}}}`,
		SymbolField:    "sym",
		Control:        Match{"ev": "status"},
		Busy:           Match{"status": "max_connections"},
		MaxMessageRate: 5,   // marketsim closes 4008 above 10 messages per second
		MaxSymbols:     200, // marketsim's symbol_limit per connection
	},
}

// Resolved returns the adapter with its preset's values filled in where
// the adapter leaves them empty.
func (a Adapter) Resolved() Adapter {
	p, ok := presets[a.Preset]
	if !ok {
		return a
	}
	if a.Auth.Mode == "" {
		a.Auth = p.Auth
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
	if a.Control == nil {
		a.Control = p.Control
	}
	if a.Busy == nil {
		a.Busy = p.Busy
	}
	if a.MaxMessageRate == 0 {
		a.MaxMessageRate = p.MaxMessageRate
	}
	if a.MaxSymbols == 0 {
		a.MaxSymbols = p.MaxSymbols
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
	for _, t := range [...]struct{ name, text string }{{"subscribe", a.Subscribe}, {"unsubscribe", a.Unsubscribe}, {"auth.message", a.Auth.Message}} {
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
	if f.MaxSymbols < 0 {
		p.Addf("%s.max_symbols: must not be negative", where)
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
		"{{symbols}}", `["A","B"]`,
		"{{symbols_csv}}", `"A,B"`,
		"{{symbol}}", `"A"`,
	).Replace(t)
}
