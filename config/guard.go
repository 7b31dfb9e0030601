package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// Guard is the guard section of the YAML file: who may reach tickgate at
// all (CIDR lists and countries), per-route rate limits and network rules,
// per-feed network rules, WebSocket connection limits per client address,
// and what a limit does when its Redis store cannot answer. Every field's
// zero value is the safe default documented on it.
//
//	guard:
//	  deny: [203.0.113.0/24]
//	  geo:
//	    database: /var/lib/GeoIP/GeoLite2-Country.mmdb
//	    deny_countries: [KP]
//	  routes:
//	    "/api/*": {limit: "20/1s,1000/1h", by: session}
//	    "/auth/login": {allow: [10.0.0.0/8]}
//	  feeds:
//	    live: {allow_countries: [US, CA]}
//	  ws: {connects_per_ip: 30/1m, conns_per_ip: 20}
//	  redis_failure: {default: open, login: closed}
type Guard struct {
	// Allow, when not empty, is the only networks (CIDR or single
	// address) that may reach any route. Empty allows every network.
	Allow []string `yaml:"allow"`
	// Deny lists networks refused everywhere; it wins over Allow.
	Deny []string `yaml:"deny"`
	// Geo fences by country from a MaxMind-format database.
	Geo GuardGeo `yaml:"geo"`
	// Routes maps a path pattern to its own limit and network rules. A
	// pattern is an exact path ("/auth/login") or a prefix ending in "/*"
	// ("/api/*" matches /api and everything under it); "/*" matches every
	// path. The most specific matching pattern that sets network rules
	// decides them, and the most specific that sets a limit decides the
	// limit: a limit on a sub-path keeps the rules of the pattern above.
	Routes map[string]GuardRoute `yaml:"routes"`
	// Feeds maps a feed name to network rules for its /ws/{feed} socket.
	Feeds map[string]NetworkRules `yaml:"feeds"`
	// WS limits WebSocket connections per client address.
	WS GuardWS `yaml:"ws"`
	// RedisFailure says whether a limit lets requests through (open) or
	// refuses them (closed) while its Redis store cannot answer.
	RedisFailure RedisFailure `yaml:"redis_failure"`
}

// GuardGeo is geo-fencing by ISO 3166-1 alpha-2 country code.
type GuardGeo struct {
	// Database is a MaxMind-format (.mmdb) country or city database, e.g.
	// GeoLite2-Country.mmdb. It is re-read when the file changes.
	Database string `yaml:"database"`
	// AllowCountries, when not empty, is the only countries that may
	// reach tickgate. Public addresses the database does not place in a
	// country are refused. Loopback and private addresses are never
	// geo-fenced.
	AllowCountries []string `yaml:"allow_countries"`
	// DenyCountries are refused. Set AllowCountries or DenyCountries, not
	// both.
	DenyCountries []string `yaml:"deny_countries"`
}

// NetworkRules restrict one route or feed, on top of the global rules.
// Country rules need guard.geo.database.
type NetworkRules struct {
	Allow          []string `yaml:"allow"`           // only these networks; empty allows all
	Deny           []string `yaml:"deny"`            // refused; wins over Allow
	AllowCountries []string `yaml:"allow_countries"` // only these countries; empty allows all
	DenyCountries  []string `yaml:"deny_countries"`  // refused countries
}

// GuardRoute is the guard of one route pattern.
type GuardRoute struct {
	NetworkRules `yaml:",inline"`
	// Limit is the route's own rate limit ("20/1s,1000/1h"), applied in
	// addition to the global per-IP and per-session limits. Empty: none.
	Limit Limit `yaml:"limit"`
	// By names the bucket: ip (default; the client address, IPv6 per /64)
	// or session (requests without a session fall back to their IP).
	By string `yaml:"by"`
	// RedisFailure is open or closed for this route's limit; empty means
	// guard.redis_failure.default.
	RedisFailure string `yaml:"redis_failure"`
}

// GuardWS limits WebSocket connections per client address (IPv6 per
// /64). Per-session limits are TICKGATE_WS_MAX_CONNS and
// TICKGATE_WS_MAX_SYMBOLS.
type GuardWS struct {
	// ConnectsPerIP is how many new WebSocket connections one address may
	// open (default 60/1m).
	ConnectsPerIP Limit `yaml:"connects_per_ip"`
	// ConnsPerIP is how many WebSockets one address may hold open at once
	// on one replica (default 100).
	ConnsPerIP int `yaml:"conns_per_ip"`
}

// RedisFailure is the fail-open or fail-closed policy of limits while
// their Redis store is unreachable.
type RedisFailure struct {
	// Default applies to request and WebSocket limits: open (default; the
	// market data keeps flowing) or closed.
	Default string `yaml:"default"`
	// Login applies to login attempts: closed (default; no password
	// guessing while the limit cannot count) or open.
	Login string `yaml:"login"`
}

// Defaults of GuardWS.
const (
	DefaultWSConnectsPerIP = "60/1m"
	DefaultWSConnsPerIP    = 100
)

// ParseCIDR parses a network ("10.0.0.0/8", "2001:db8::/32") or a single
// address ("192.0.2.1", a /32 or /128). The result is masked, and an
// IPv4-mapped IPv6 network (::ffff:10.0.0.0/104) becomes its IPv4 form,
// because client addresses are compared unmapped.
func ParseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8) or an address", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped network shorter than /96", s)
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// ParseCountry checks an ISO 3166-1 alpha-2 country code and returns it
// in upper case.
func ParseCountry(s string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(s))
	if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
		return "", fmt.Errorf("%q is not a two-letter ISO country code (e.g. US, DE)", s)
	}
	return c, nil
}

// ParseFailurePolicy reads "open" or "closed"; empty gives def.
func ParseFailurePolicy(s, def string) (string, error) {
	switch s {
	case "":
		return def, nil
	case "open", "closed":
		return s, nil
	}
	return "", fmt.Errorf("%q is not open or closed", s)
}

// ValidRoutePattern reports whether p is a route pattern: an absolute,
// clean path, optionally ending in "/*".
func ValidRoutePattern(p string) bool {
	base := strings.TrimSuffix(p, "*")
	if !strings.HasPrefix(p, "/") || strings.Contains(base, "*") || (base != p && !strings.HasSuffix(base, "/")) {
		return false
	}
	for _, seg := range strings.Split(strings.Trim(base, "/"), "/") {
		if seg == "." || seg == ".." || (seg == "" && base != "/") {
			return false
		}
	}
	return true
}

// UsesGeo reports whether any rule needs the geo database.
func (g Guard) UsesGeo() bool {
	if len(g.Geo.AllowCountries)+len(g.Geo.DenyCountries) > 0 {
		return true
	}
	for _, r := range g.Routes {
		if r.usesGeo() {
			return true
		}
	}
	for _, r := range g.Feeds {
		if r.usesGeo() {
			return true
		}
	}
	return false
}

func (n NetworkRules) usesGeo() bool { return len(n.AllowCountries)+len(n.DenyCountries) > 0 }

// validate records every problem of the guard section; feeds are the
// file's feeds, which guard.feeds must name.
func (g Guard) validate(path string, feeds map[string]Feed, p *Problems) {
	cidrs(path+".allow", g.Allow, p)
	cidrs(path+".deny", g.Deny, p)
	countries(path+".geo", g.Geo.AllowCountries, g.Geo.DenyCountries, p)
	hasDB := strings.TrimSpace(g.Geo.Database) != ""
	if hasDB && !g.UsesGeo() {
		p.Addf("%s.geo.database: set, but no allow_countries or deny_countries use it", path)
	}
	if !hasDB && len(g.Geo.AllowCountries)+len(g.Geo.DenyCountries) > 0 {
		p.Addf("%s.geo: allow_countries and deny_countries need geo.database", path)
	}
	for _, pat := range sortedKeys(g.Routes) {
		rp := fmt.Sprintf("%s.routes.%s", path, pat)
		if !ValidRoutePattern(pat) {
			p.Addf("%s: pattern must be an absolute clean path, optionally ending in /* (e.g. /api/*, /auth/login)", rp)
		}
		r := g.Routes[pat]
		r.NetworkRules.validate(rp, hasDB, path, p)
		switch r.By {
		case "", "ip", "session":
		default:
			p.Addf("%s.by: %q is not ip or session", rp, r.By)
		}
		if _, err := ParseFailurePolicy(r.RedisFailure, "open"); err != nil {
			p.Addf("%s.redis_failure: %v", rp, err)
		}
		switch {
		case len(r.Limit) > 0:
		case r.By != "" || r.RedisFailure != "":
			p.Addf("%s: by and redis_failure need a limit", rp)
		case !r.NetworkRules.any():
			p.Addf("%s: sets neither a limit nor network rules", rp)
		}
	}
	for _, name := range sortedKeys(g.Feeds) {
		fp := fmt.Sprintf("%s.feeds.%s", path, name)
		if _, ok := feeds[name]; !ok {
			p.Addf("%s: no feed named %q in feeds", fp, name)
		}
		r := g.Feeds[name]
		r.validate(fp, hasDB, path, p)
		if !r.any() {
			p.Addf("%s: sets no network rules", fp)
		}
	}
	if n := g.WS.ConnsPerIP; n < 0 || n > 1_000_000 {
		p.Addf("%s.ws.conns_per_ip: %d is not from 0 (default %d) to 1000000", path, n, DefaultWSConnsPerIP)
	}
	if _, err := ParseFailurePolicy(g.RedisFailure.Default, "open"); err != nil {
		p.Addf("%s.redis_failure.default: %v", path, err)
	}
	if _, err := ParseFailurePolicy(g.RedisFailure.Login, "closed"); err != nil {
		p.Addf("%s.redis_failure.login: %v", path, err)
	}
}

func (n NetworkRules) any() bool {
	return len(n.Allow)+len(n.Deny)+len(n.AllowCountries)+len(n.DenyCountries) > 0
}

func (n NetworkRules) validate(path string, hasDB bool, root string, p *Problems) {
	cidrs(path+".allow", n.Allow, p)
	cidrs(path+".deny", n.Deny, p)
	countries(path, n.AllowCountries, n.DenyCountries, p)
	if n.usesGeo() && !hasDB {
		p.Addf("%s: allow_countries and deny_countries need %s.geo.database", path, root)
	}
}

func cidrs(path string, list []string, p *Problems) {
	for i, s := range list {
		if _, err := ParseCIDR(s); err != nil {
			p.Addf("%s[%d]: %v", path, i, err)
		}
	}
}

func countries(path string, allow, deny []string, p *Problems) {
	if len(allow) > 0 && len(deny) > 0 {
		p.Addf("%s: set allow_countries or deny_countries, not both", path)
	}
	for _, l := range []struct {
		name string
		list []string
	}{{"allow_countries", allow}, {"deny_countries", deny}} {
		for i, s := range l.list {
			if _, err := ParseCountry(s); err != nil {
				p.Addf("%s.%s[%d]: %v", path, l.name, i, err)
			}
		}
	}
}
