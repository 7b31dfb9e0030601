package relay

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tickgate/tickgate/config"
)

// Authentication modes of config.Auth.Mode.
const (
	authNone    = "none"
	authQuery   = "query"
	authHeader  = "header"
	authMessage = "message"
)

const (
	// defaultMessageRate is the messages per second sent to a vendor whose
	// adapter does not say.
	defaultMessageRate = 5
	// maxSymbolsPerMessage bounds one subscribe or unsubscribe message.
	maxSymbolsPerMessage = 100
)

// adapter is a feed's config.Adapter checked and ready to use.
type adapter struct {
	authMode  string
	authParam string
	authMsg   template
	success   matcher
	failure   matcher
	busy      matcher
	rejected  matcher // the vendor's answer refusing symbols
	rejField  string  // its field listing them
	subscribe template
	unsub     template
	scan      scanner
	keyID     string   // Auth.KeyID, for {{key_id}}
	prefixes  []string // vendor form of a symbol: prefix + symbol + suffix, per prefix
	suffix    string
	lower     bool
	heartbeat template      // sent every hbEvery, or ""
	hbEvery   time.Duration // heartbeat interval
	lifetime  time.Duration // reconnect after this long; 0 = never
	rate      int           // messages per second to the vendor
	maxSyms   int           // distinct symbols on one upstream connection; 0 = no cap
	maxConns  int           // upstream connections with the key
}

func newAdapter(f config.Feed) (*adapter, error) {
	a := f.Adapter.Resolved()
	ad := &adapter{
		authMode:  a.Auth.Mode,
		authParam: a.Auth.Param,
		authMsg:   template(a.Auth.Message),
		success:   newMatcher(a.Auth.Success),
		failure:   newMatcher(a.Auth.Failure),
		busy:      newMatcher(a.Busy),
		rejected:  newMatcher(a.Rejected),
		rejField:  a.RejectedSymbols,
		subscribe: template(a.Subscribe),
		unsub:     template(a.Unsubscribe),
		scan:      newScanner(a.SymbolField, a.MessagesField, newMatcher(a.Control)),
		keyID:     a.Auth.KeyID,
		prefixes:  a.SymbolPrefixes,
		suffix:    a.SymbolSuffix,
		lower:     a.SymbolCase == "lower",
		heartbeat: template(a.Heartbeat),
		hbEvery:   a.HeartbeatInterval.Std(),
		lifetime:  a.MaxLifetime.Std(),
		rate:      a.MaxMessageRate,
		maxSyms:   a.MaxSymbols,
		maxConns:  a.MaxConnections,
	}
	if ad.maxConns == 0 {
		ad.maxConns = 1
	}
	ad.scan.rejected = ad.rejected
	if ad.rate == 0 {
		ad.rate = defaultMessageRate
	}
	u, err := url.Parse(f.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "ws" && u.Scheme != "wss"):
		return nil, fmt.Errorf("url is not a ws:// or wss:// URL")
	case u.User != nil:
		return nil, fmt.Errorf("url must not carry credentials")
	}
	switch ad.authMode {
	case authNone:
	case authQuery, authHeader:
		if ad.authParam == "" {
			return nil, fmt.Errorf("adapter.auth.param is required for mode %s", ad.authMode)
		}
	case authMessage:
		if !strings.Contains(string(ad.authMsg), "{{key}}") {
			return nil, fmt.Errorf("adapter.auth.message must contain {{key}}")
		}
	default:
		return nil, fmt.Errorf("adapter.auth.mode %q is not none, query, header or message", ad.authMode)
	}
	if ad.authMode != authNone && f.Key.Secret == "" {
		return nil, fmt.Errorf("key.secret is required for auth mode %s", ad.authMode)
	}
	if ad.subscribe == "" || ad.unsub == "" {
		return nil, fmt.Errorf("adapter: subscribe and unsubscribe templates are required")
	}
	if ad.scan.symbolField == "" {
		return nil, fmt.Errorf("adapter.symbol_field is required")
	}
	switch a.SymbolCase {
	case "", "upper", "lower":
	default:
		return nil, fmt.Errorf("adapter.symbol_case %q is not upper or lower", a.SymbolCase)
	}
	if strings.Contains(a.Auth.Message, "{{key_id}}") && ad.keyID == "" {
		return nil, fmt.Errorf("adapter.auth.key_id is required: the auth message uses {{key_id}}")
	}
	if (ad.heartbeat == "") != (ad.hbEvery <= 0) {
		return nil, fmt.Errorf("adapter: heartbeat and a positive heartbeat_interval go together")
	}
	if ad.lifetime < 0 {
		return nil, fmt.Errorf("adapter.max_lifetime must not be negative")
	}
	for _, t := range []template{ad.authMsg, ad.subscribe, ad.unsub, ad.heartbeat} {
		if t == "" {
			continue
		}
		for _, msg := range t.render("k", "i", []string{"A", "B"}) {
			if !json.Valid(msg) {
				return nil, fmt.Errorf("adapter template %q is not JSON once filled in", string(t))
			}
		}
	}
	if (len(ad.rejected) > 0) != (ad.rejField != "") {
		return nil, fmt.Errorf("adapter: rejected and rejected_symbols_field go together")
	}
	for _, m := range []matcher{ad.success, ad.failure, ad.busy, ad.rejected, ad.scan.control} {
		if len(m) > 64 {
			return nil, fmt.Errorf("adapter: a match has more than 64 conditions")
		}
	}
	if ad.rate < 0 || ad.maxSyms < 0 || ad.maxConns < 0 {
		return nil, fmt.Errorf("adapter: max_message_rate, max_symbols_per_connection and max_connections must not be negative")
	}
	return ad, nil
}

// template is a vendor message with {{key}}, {{symbols}}, {{symbols_csv}}
// and {{symbol}} placeholders (see config.Adapter).
type template string

// perSymbol reports whether the template names one symbol per message.
func (t template) perSymbol() bool { return strings.Contains(string(t), "{{symbol}}") }

// batches splits syms into the groups that each become one message.
func (t template) batches(syms []string) [][]string {
	size := maxSymbolsPerMessage
	if t.perSymbol() {
		size = 1
	}
	var out [][]string
	for len(syms) > 0 {
		n := min(size, len(syms))
		out = append(out, syms[:n])
		syms = syms[n:]
	}
	return out
}

// render fills the template: one message, or one per symbol for a
// {{symbol}} template. key and keyID are placed JSON-escaped, never raw.
func (t template) render(key, keyID string, syms []string) [][]byte {
	fill := func(syms []string) []byte {
		r := strings.NewReplacer(
			"{{key}}", jsonString(key),
			"{{key_id}}", jsonString(keyID),
			"{{symbols_csv}}", jsonString(strings.Join(syms, ",")),
			"{{symbols}}", jsonStrings(syms),
			"{{symbol}}", jsonString(strings.Join(syms, ",")),
		)
		return []byte(r.Replace(string(t)))
	}
	if !t.perSymbol() {
		return [][]byte{fill(syms)}
	}
	out := make([][]byte, 0, len(syms))
	for _, s := range syms {
		out = append(out, fill([]string{s}))
	}
	return out
}

// vendorSyms writes browser symbols the vendor's way: per prefix, the
// prefix, the symbol in the vendor's case, the suffix.
func (ad *adapter) vendorSyms(syms []string) []string {
	if len(ad.prefixes) == 0 && ad.suffix == "" && !ad.lower {
		return syms
	}
	prefixes := ad.prefixes
	if len(prefixes) == 0 {
		prefixes = []string{""}
	}
	out := make([]string, 0, len(syms)*len(prefixes))
	for _, s := range syms {
		if ad.lower {
			s = strings.ToLower(s)
		}
		for _, p := range prefixes {
			out = append(out, p+s+ad.suffix)
		}
	}
	return out
}

// browserSym undoes vendorSyms for one vendor-form symbol (a refusal
// names symbols the vendor's way), then checks it as a browser symbol.
func (ad *adapter) browserSym(v string) (string, bool) {
	for _, p := range ad.prefixes {
		if p != "" && strings.HasPrefix(v, p) {
			v = v[len(p):]
			break
		}
	}
	v = strings.TrimSuffix(v, ad.suffix)
	return normalizeSymbol(strings.TrimSpace(v))
}

func jsonString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

func jsonStrings(ss []string) string {
	if ss == nil {
		ss = []string{}
	}
	b, _ := json.Marshal(ss) // strings always marshal
	return string(b)
}
