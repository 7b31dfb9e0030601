package config

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Upstream is a vendor REST API reachable under /api/{name}/.
type Upstream struct {
	// Preset names a built-in vendor (see UpstreamPresets): it fills the
	// base URL, key placements, headers, routes and error detection that
	// are left empty here. Headers set here are added to the preset's.
	Preset string `yaml:"preset"`
	// BaseURL is the vendor's base, e.g. https://api.vendor.com. https is
	// required except for loopback hosts.
	BaseURL string `yaml:"base_url"`
	// Key says which secret holds the vendor key and where it goes.
	Key KeyRef `yaml:"key"`
	// Keys is Key for vendors that need several secrets on every request
	// (Alpaca: a key id and a secret key in two headers). Set Key or Keys,
	// not both. The first one names the vendor account: budgets and
	// cool-downs after a vendor 429 are kept per first secret.
	Keys []KeyRef `yaml:"keys"`
	// Routes open paths of the vendor to browsers; anything else is 404.
	Routes []Route `yaml:"routes"`
	// Headers are set on every upstream request (e.g. Accept-Encoding: gzip).
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one upstream request. Default 15s.
	Timeout Duration `yaml:"timeout"`
	// MaxResponseBytes caps a response body. Default 10 MiB.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// Budget is the vendor plan's request budget for the key: tickgate
	// refuses (429 upstream_budget) before the vendor would. Zero: none.
	// Upstreams that share a first secret share its budget.
	Budget Budget `yaml:"budget"`
	// Coalesce shares one vendor call among identical concurrent GET (or
	// HEAD) requests. Default true; false sends every request on its own.
	Coalesce *bool `yaml:"coalesce"`
	// CacheTTL keeps successful GET answers this long, less when the
	// vendor's Cache-Control says so (no-store, private, no-cache, max-age).
	// Default 0: no cache. A route's cache_ttl overrides it.
	CacheTTL Duration `yaml:"cache_ttl"`
	// ErrorInBody detects vendors that answer errors with HTTP 200 and the
	// real status in a JSON body. Zero: trust the HTTP status.
	ErrorInBody ErrorInBody `yaml:"error_in_body"`
}

// KeyRef names the secret holding a vendor key and where the key goes.
type KeyRef struct {
	// Secret is the secret's name in the secrets provider.
	Secret string `yaml:"secret"`
	// Placement is query:<param>, header:<name> or bearer. For feeds it is
	// optional: the adapter's auth decides where the key goes. With an
	// upstream preset it may be left out: the preset knows.
	Placement string `yaml:"placement"`
	// AWSSecret, with TICKGATE_SECRETS=aws, reads this key from a Secrets
	// Manager secret of its own rather than from the JSON object of
	// TICKGATE_AWS_SECRET_ID: "id" when the whole secret string is the
	// key, "id#field" when the secret is a JSON object (id is a name or
	// an ARN). Every reference to one Secret must give the same AWSSecret.
	AWSSecret string `yaml:"aws_secret"`
}

// Route opens a set of paths for a set of methods.
type Route struct {
	// Methods allowed; default GET and HEAD.
	Methods []string `yaml:"methods"`
	// Paths are patterns of the vendor's path: "/v1/quote/*" (one segment
	// per *), "/v1/reference/**" (any rest, at the end only).
	Paths []string `yaml:"paths"`
	// CacheTTL, when set, replaces the upstream's cache_ttl for these
	// paths (0s turns the cache off for them).
	CacheTTL *Duration `yaml:"cache_ttl"`
	// MaxBodyBytes caps the request body of these paths' methods other
	// than GET and HEAD (which take none); larger bodies get 413
	// body_too_large before or while they are forwarded. Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Roles, when set, restrict these methods and paths to sessions
	// holding one of the roles (e.g. [trading] for POST /orders); others
	// get 403 forbidden_role. When several routes with roles match a
	// request, the session needs one role of each. Empty: every session.
	Roles []string `yaml:"roles"`
}

// Budget is a per-key token bucket toward the vendor. Each window of Rate
// refills continuously: "20/1s" adds 20 tokens a second. The first
// window holds at most Burst tokens (default its N), the others their N,
// so within any interval T of a window at most size + N calls go out:
// for a vendor that counts N calls per fixed minute pick burst + rate
// <= N. Every window must hold a token for a call to go out.
type Budget struct {
	// Rate is N/duration, optionally a second window ("8/1m,800/24h").
	Rate Limit `yaml:"rate"`
	// Burst is the size of the first window's bucket; default its N.
	Burst uint64 `yaml:"burst"`
	// Queue is how long a request may wait for a token before it is
	// refused; default 0 (refuse at once). At most 1 minute.
	Queue Duration `yaml:"queue"`
}

// IsZero reports whether no budget is set.
func (b Budget) IsZero() bool { return len(b.Rate) == 0 && b.Burst == 0 && b.Queue == 0 }

// SameBucket reports whether b and o describe the same bucket (Queue may
// differ: it is how long one request waits, not part of the bucket).
func (b Budget) SameBucket(o Budget) bool {
	return b.BurstSize() == o.BurstSize() && slices.Equal(b.Rate, o.Rate)
}

// BurstSize is Burst, or the first window's N when Burst is 0.
func (b Budget) BurstSize() uint64 {
	if b.Burst == 0 && len(b.Rate) > 0 {
		return b.Rate[0].Tokens
	}
	return b.Burst
}

// ErrorInBody describes how a vendor reports an error inside an HTTP 200
// JSON body, e.g. {"status":"error","code":401,"message":"..."}
// (Twelve Data): field status, value error, code_field code.
type ErrorInBody struct {
	// Field is the JSON field that marks an error; a.b reaches nested
	// objects.
	Field string `yaml:"field"`
	// Value is what Field holds on an error (compared as text); empty
	// means any value other than null, false and "".
	Value string `yaml:"value"`
	// CodeField holds the real HTTP status (a number or a numeric
	// string). Without it, or without a 4xx/5xx there, the answer is
	// 502 upstream_error.
	CodeField string `yaml:"code_field"`
}

// IsZero reports whether no detection is configured.
func (e ErrorInBody) IsZero() bool { return e == ErrorInBody{} }

// Limits on the settings above.
const (
	maxBudgetQueue = time.Minute
	maxCacheTTL    = time.Hour
)

var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// KeySlot splits a placement into its kind ("query", "header", "bearer")
// and name (the parameter or header name; "Authorization" for bearer).
func (k KeyRef) KeySlot() (kind, name string) {
	if k.Placement == "bearer" {
		return "bearer", "Authorization"
	}
	kind, name, _ = strings.Cut(k.Placement, ":")
	if kind == "header" {
		name = http.CanonicalHeaderKey(name)
	}
	return kind, name
}

func (k KeyRef) secretNames() []string {
	if k.Secret == "" {
		return nil
	}
	return []string{k.Secret}
}

func (k KeyRef) validate(where string, placementRequired bool, p *Problems) {
	k.validateAt(where+".key", placementRequired, p)
}

// validateAt checks k; field is where it sits ("upstreams.x.keys[1]").
func (k KeyRef) validateAt(field string, placementRequired bool, p *Problems) {
	if k.Secret == "" {
		p.Addf("%s.secret: required", field)
	}
	if k.AWSSecret != "" {
		id, fieldName, hasField := strings.Cut(k.AWSSecret, "#")
		switch {
		case id == "" || strings.TrimSpace(k.AWSSecret) != k.AWSSecret || strings.ContainsFunc(k.AWSSecret, unicode.IsControl):
			p.Addf("%s.aws_secret: %q is not \"id\" or \"id#field\"", field, k.AWSSecret)
		case hasField && (fieldName == "" || strings.Contains(fieldName, "#")):
			p.Addf("%s.aws_secret: %q needs one field name after #", field, k.AWSSecret)
		}
	}
	if k.Placement == "" && !placementRequired {
		return
	}
	kind, name := k.KeySlot()
	switch kind {
	case "bearer":
	case "query":
		if name == "" || strings.ContainsAny(name, " \t\r\n:=&?#;%+") {
			p.Addf("%s.placement: %q needs a valid name after query:", field, k.Placement)
		}
	case "header":
		if !ValidToken(name) {
			p.Addf("%s.placement: %q needs a valid name after header:", field, k.Placement)
		} else if HopByHop(name) || name == "Host" || name == "Content-Length" {
			p.Addf("%s.placement: %q cannot carry a key", field, k.Placement)
		}
	default:
		p.Addf("%s.placement: %q is not query:<param>, header:<name> or bearer", field, k.Placement)
	}
}

// KeyRefs returns Keys, or Key alone when Keys is empty.
func (u Upstream) KeyRefs() []KeyRef {
	if len(u.Keys) > 0 {
		return u.Keys
	}
	return []KeyRef{u.Key}
}

// SecretNames returns the names of the secrets the upstream uses, in the
// order of KeyRefs, once each.
func (u Upstream) SecretNames() []string {
	var out []string
	for _, k := range u.KeyRefs() {
		if k.Secret != "" && !slices.Contains(out, k.Secret) {
			out = append(out, k.Secret)
		}
	}
	return out
}

// CoalesceEnabled reports whether identical concurrent GETs share a vendor
// call (Coalesce unset means yes).
func (u Upstream) CoalesceEnabled() bool { return u.Coalesce == nil || *u.Coalesce }

func (u Upstream) validate(where string, p *Problems) {
	pre, known := upstreamPresets()[u.Preset]
	if u.Preset != "" && !known {
		p.Addf("%s.preset: %q is not a known preset (%s)", where, u.Preset, strings.Join(UpstreamPresets(), ", "))
	}
	if len(u.Keys) > 0 && u.Key != (KeyRef{}) {
		p.Addf("%s: set key or keys, not both", where)
	}
	if known && len(pre.Keys) > 1 && len(u.KeyRefs()) != len(pre.Keys) {
		p.Addf("%s.keys: preset %s needs %d keys (%s), in that order", where, u.Preset, len(pre.Keys), pre.keyHelp())
	}
	u = u.Resolved()
	base, err := url.Parse(u.BaseURL)
	switch {
	case u.BaseURL == "":
		p.Addf("%s.base_url: required", where)
	case err != nil || base.Host == "" || base.User != nil || base.RawQuery != "" || base.Fragment != "":
		p.Addf("%s.base_url: %q is not a URL like https://api.vendor.com", where, u.BaseURL)
	case base.Scheme == "https":
	case base.Scheme == "http" && IsLoopbackHost(base.Hostname()):
	case base.Scheme == "http":
		p.Addf("%s.base_url: http is allowed only for loopback hosts; use https", where)
	default:
		p.Addf("%s.base_url: scheme %q is not https", where, base.Scheme)
	}
	if len(u.Keys) == 0 {
		u.Key.validate(where, true, p)
	}
	slots := map[string]bool{}
	for i, k := range u.Keys {
		k.validateAt(fmt.Sprintf("%s.keys[%d]", where, i), true, p)
	}
	for i, k := range u.KeyRefs() {
		kind, name := k.KeySlot()
		id := kind + ":" + strings.ToLower(name)
		if kind == "bearer" {
			id = "header:authorization"
		}
		if name != "" && slots[id] {
			p.Addf("%s.keys[%d].placement: %q is used by another key", where, i, k.Placement)
		}
		slots[id] = true
	}
	if len(u.Routes) == 0 {
		p.Addf("%s.routes: at least one route is required (nothing else is forwarded)", where)
	}
	for i, r := range u.Routes {
		for _, m := range r.Methods {
			if !knownMethods[m] {
				p.Addf("%s.routes[%d].methods: %q is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", where, i, m)
			}
		}
		if len(r.Paths) == 0 {
			p.Addf("%s.routes[%d].paths: at least one path pattern is required", where, i)
		}
		validateRouteRoles(fmt.Sprintf("%s.routes[%d].roles", where, i), r.Roles, p)
		for _, pat := range r.Paths {
			if err := ValidatePattern(pat); err != "" {
				p.Addf("%s.routes[%d].paths: %q %s", where, i, pat, err)
			}
		}
		if r.CacheTTL != nil && (*r.CacheTTL < 0 || r.CacheTTL.Std() > maxCacheTTL) {
			p.Addf("%s.routes[%d].cache_ttl: must be between 0s and %s", where, i, shortDuration(maxCacheTTL))
		}
		if r.MaxBodyBytes < 0 {
			p.Addf("%s.routes[%d].max_body_bytes: must not be negative (0 means the default, 1 MiB)", where, i)
		}
	}
	for h, v := range u.Headers {
		switch {
		case !ValidToken(h) || strings.ContainsAny(v, "\r\n\x00"):
			p.Addf("%s.headers: %q has an invalid name or value", where, h)
		case slots["header:"+strings.ToLower(h)]:
			p.Addf("%s.headers: %q is where a key goes", where, h)
		}
	}
	if u.Timeout < 0 {
		p.Addf("%s.timeout: must not be negative", where)
	}
	if u.MaxResponseBytes < 0 {
		p.Addf("%s.max_response_bytes: must not be negative", where)
	}
	u.Budget.validate(where+".budget", p)
	if u.CacheTTL < 0 || u.CacheTTL.Std() > maxCacheTTL {
		p.Addf("%s.cache_ttl: must be between 0s and %s", where, shortDuration(maxCacheTTL))
	}
	u.ErrorInBody.validate(where+".error_in_body", p)
}

func (b Budget) validate(field string, p *Problems) {
	if b.IsZero() {
		return
	}
	if len(b.Rate) == 0 {
		p.Addf("%s.rate: required when a budget is set (N/duration, e.g. 20/1s)", field)
	}
	if b.Queue < 0 || b.Queue.Std() > maxBudgetQueue {
		p.Addf("%s.queue: must be between 0s and %s", field, shortDuration(maxBudgetQueue))
	}
}

func (e ErrorInBody) validate(field string, p *Problems) {
	if e.IsZero() {
		return
	}
	if e.Field == "" {
		p.Addf("%s.field: required when error_in_body is set", field)
	} else if !validJSONPath(e.Field) {
		p.Addf("%s.field: %q is not a field name (a.b for nested fields)", field, e.Field)
	}
	if e.CodeField != "" && !validJSONPath(e.CodeField) {
		p.Addf("%s.code_field: %q is not a field name (a.b for nested fields)", field, e.CodeField)
	}
}

// validJSONPath accepts field names separated by dots, without empty parts.
func validJSONPath(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for part := range strings.SplitSeq(s, ".") {
		if part == "" {
			return false
		}
	}
	return true
}

// ValidToken reports whether s is an RFC 9110 token (header names,
// methods).
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// HopByHop reports whether canonical (a canonical header name) is a
// hop-by-hop header a proxy must not forward (RFC 9110 7.6.1), which can
// therefore never carry a key.
func HopByHop(canonical string) bool {
	switch canonical {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Authorization", "Proxy-Authenticate":
		return true
	}
	return false
}

// ValidatePattern returns "" when pat is a valid path pattern, else why not.
func ValidatePattern(pat string) string {
	if !strings.HasPrefix(pat, "/") {
		return "must start with /"
	}
	segs := strings.Split(pat[1:], "/")
	for i, s := range segs {
		switch {
		case s == "**" && i != len(segs)-1:
			return "may use ** only as the last segment"
		case s == "." || s == "..":
			return "must not contain . or .. segments"
		case s == "" && i != len(segs)-1:
			return "must not contain empty segments"
		case strings.ContainsAny(s, "%\\?#"):
			return "must not contain %, \\, ? or #"
		case s != "*" && s != "**" && strings.Contains(s, "*"):
			return "may use * only as a whole segment"
		}
	}
	return ""
}

// IsLoopbackHost reports whether host is localhost or a loopback address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// upstreamPreset is a built-in vendor description. Keys holds placements
// only, one per secret the vendor needs, in order.
type upstreamPreset struct {
	Upstream
	keyNames []string // what each key is, for error messages
}

func (p upstreamPreset) keyHelp() string { return strings.Join(p.keyNames, ", then ") }

func presetRoutes(paths ...string) []Route {
	return []Route{{Methods: []string{http.MethodGet, http.MethodHead}, Paths: paths}}
}

// upstreamPresets returns the built-in vendors of VENDORS.md section 2 and
// the simulated one. Budgets are left out: they depend on the plan.
func upstreamPresets() map[string]upstreamPreset {
	polygon := upstreamPreset{
		Upstream: Upstream{
			BaseURL: "https://api.polygon.io",
			Keys:    []KeyRef{{Placement: "query:apiKey"}},
			Routes:  presetRoutes("/v1/**", "/v2/**", "/v3/**", "/vX/**"),
		},
		keyNames: []string{"the API key"},
	}
	massive := polygon
	massive.BaseURL = "https://api.massive.com"
	return map[string]upstreamPreset{
		"marketsim": {
			Upstream: Upstream{
				Keys:        []KeyRef{{Placement: "query:apikey"}},
				Routes:      presetRoutes("/v1/quote/*", "/v1/quotes", "/v1/symbols", "/v1/last/*"),
				ErrorInBody: ErrorInBody{Field: "status", Value: "error", CodeField: "code"},
			},
			keyNames: []string{"the API key"},
		},
		"finage": {
			Upstream: Upstream{
				BaseURL: "https://api.finage.co.uk",
				Keys:    []KeyRef{{Placement: "query:apikey"}},
				Headers: map[string]string{"Accept-Encoding": "gzip"},
				Routes:  presetRoutes("/last/**", "/agg/**", "/history/**", "/snapshot/**", "/convert/**", "/news/**"),
			},
			keyNames: []string{"the API key"},
		},
		"polygon": polygon,
		"massive": massive,
		"alpaca": {
			Upstream: Upstream{
				BaseURL: "https://data.alpaca.markets",
				Keys:    []KeyRef{{Placement: "header:APCA-API-KEY-ID"}, {Placement: "header:APCA-API-SECRET-KEY"}},
				Routes:  presetRoutes("/v2/stocks/**", "/v1beta1/**", "/v1beta3/crypto/**"),
			},
			keyNames: []string{"the key id (APCA-API-KEY-ID)", "the secret key (APCA-API-SECRET-KEY)"},
		},
		"finnhub": {
			Upstream: Upstream{
				BaseURL: "https://finnhub.io/api/v1",
				Keys:    []KeyRef{{Placement: "header:X-Finnhub-Token"}},
				Routes: presetRoutes("/quote", "/search", "/stock/**", "/forex/**", "/crypto/**", "/news", "/company-news",
					"/calendar/**", "/index/**", "/etf/**", "/indicator"),
			},
			keyNames: []string{"the API token"},
		},
		"twelvedata": {
			Upstream: Upstream{
				BaseURL: "https://api.twelvedata.com",
				Keys:    []KeyRef{{Placement: "query:apikey"}},
				Routes: presetRoutes("/time_series", "/quote", "/price", "/eod", "/exchange_rate", "/currency_conversion",
					"/symbol_search", "/stocks", "/forex_pairs", "/cryptocurrencies", "/etf", "/indices", "/exchanges",
					"/earliest_timestamp", "/market_state", "/profile", "/logo", "/statistics", "/earnings", "/dividends", "/splits"),
				// Twelve Data answers errors with HTTP 200 and the real code inside.
				ErrorInBody: ErrorInBody{Field: "status", Value: "error", CodeField: "code"},
			},
			keyNames: []string{"the API key"},
		},
		"eodhd": {
			Upstream: Upstream{
				BaseURL: "https://eodhd.com/api",
				Keys:    []KeyRef{{Placement: "query:api_token"}},
				Routes: presetRoutes("/eod/*", "/real-time/*", "/intraday/*", "/fundamentals/*", "/search/*", "/exchange-symbol-list/*",
					"/exchanges-list", "/exchanges-list/", "/div/*", "/splits/*", "/news", "/calendar/*", "/technical/*",
					"/eod-bulk-last-day/*"),
			},
			keyNames: []string{"the API token"},
		},
	}
}

// UpstreamPresets returns the names of the built-in upstream presets,
// sorted.
func UpstreamPresets() []string { return sortedKeys(upstreamPresets()) }

// Resolved returns the upstream with its preset's values filled in where
// it leaves them empty: base URL, key placements (by position), routes,
// error detection; the preset's headers are added to the upstream's (the
// upstream's win, names compared without case). Key and Keys come back
// normalized: one secret in Key, several in Keys. An unknown preset
// changes nothing (validation reports it).
func (u Upstream) Resolved() Upstream {
	p, ok := upstreamPresets()[u.Preset]
	keys := slices.Clone(u.KeyRefs())
	if ok {
		for i := range keys {
			if keys[i].Placement == "" && i < len(p.Keys) {
				keys[i].Placement = p.Keys[i].Placement
			}
		}
		if u.BaseURL == "" {
			u.BaseURL = p.BaseURL
		}
		if len(u.Routes) == 0 {
			u.Routes = slices.Clone(p.Routes)
		}
		if u.ErrorInBody.IsZero() {
			u.ErrorInBody = p.ErrorInBody
		}
		if len(p.Headers) > 0 {
			merged := make(map[string]string, len(p.Headers)+len(u.Headers))
			for k, v := range p.Headers {
				merged[k] = v
			}
			for k, v := range u.Headers {
				for pk := range merged {
					if strings.EqualFold(pk, k) {
						delete(merged, pk)
					}
				}
				merged[k] = v
			}
			u.Headers = merged
		}
	}
	if len(keys) == 1 {
		u.Key, u.Keys = keys[0], nil
	} else {
		u.Key, u.Keys = KeyRef{}, keys
	}
	return u
}
