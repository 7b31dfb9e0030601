package config

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// MaxRoles bounds the roles one user holds (and so a session record).
const MaxRoles = 32

// maxRoleLen bounds a role name.
const maxRoleLen = 32

// ValidRole reports whether r is a role name: 1 to 32 characters of
// [a-z0-9_-], starting with a letter or digit ("trading", "realtime",
// "free"). Roles appear in the YAML, the users setting, session records
// and audit lines, so they stay plain.
func ValidRole(r string) bool {
	if r == "" || len(r) > maxRoleLen {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// FeedRole is what one role may do on a feed (Feed.Roles): how many
// symbols a session may hold and which ones.
type FeedRole struct {
	// MaxSymbols per session for holders of this role; 0 means the feed's
	// limit (Feed.MaxSymbols or TICKGATE_WS_MAX_SYMBOLS). It never raises
	// the feed's limit.
	MaxSymbols int `yaml:"max_symbols"`
	// Symbols, when set, are the only symbols holders of this role may
	// subscribe (compared upper-cased, as browsers' symbols are); empty
	// means every symbol.
	Symbols []string `yaml:"symbols"`
}

// FeedAccess is what a session holding some roles may do on a feed.
type FeedAccess struct {
	// Allowed is false when the feed requires roles the session lacks.
	Allowed bool
	// MaxSymbols is the session's symbol limit on the feed; 0 means the
	// feed's own limit.
	MaxSymbols int
	// Symbols, when non-nil, is the set of symbols the session may
	// subscribe (upper-cased); nil means every symbol.
	Symbols map[string]bool
}

// Access returns what holders of roles may do on f. A feed without Roles
// is open to every session. Otherwise the session needs one of the listed
// roles, and holding several gives the most generous of them: the highest
// MaxSymbols (0, the feed's limit, counts as highest) and the union of the
// symbol lists (a role without a list allows every symbol).
func (f Feed) Access(roles []string) FeedAccess {
	if len(f.Roles) == 0 {
		return FeedAccess{Allowed: true}
	}
	acc := FeedAccess{}
	unlimited, anySymbol := false, false
	for _, r := range roles {
		fr, ok := f.Roles[r]
		if !ok {
			continue
		}
		acc.Allowed = true
		if fr.MaxSymbols == 0 {
			unlimited = true
		} else {
			acc.MaxSymbols = max(acc.MaxSymbols, fr.MaxSymbols)
		}
		if len(fr.Symbols) == 0 {
			anySymbol = true
			continue
		}
		if acc.Symbols == nil {
			acc.Symbols = map[string]bool{}
		}
		for _, s := range fr.Symbols {
			acc.Symbols[strings.ToUpper(s)] = true
		}
	}
	if unlimited {
		acc.MaxSymbols = 0
	}
	if anySymbol {
		acc.Symbols = nil
	}
	return acc
}

// FeedRoleNames returns the roles f admits, sorted (nil: every session).
func (f Feed) FeedRoleNames() []string {
	if len(f.Roles) == 0 {
		return nil
	}
	return sortedKeys(f.Roles)
}

// maxRoleSymbols bounds one role's symbol allowlist.
const maxRoleSymbols = 10000

// validateFeedRoles checks Feed.Roles.
func validateFeedRoles(where string, f Feed, p *Problems) {
	for _, name := range sortedKeys(f.Roles) {
		fr := f.Roles[name]
		field := where + ".roles." + name
		if !ValidRole(name) {
			p.Addf("%s.roles: %q is not a role name (1 to 32 of [a-z0-9_-], starting with a letter or digit)", where, name)
			continue
		}
		switch {
		case fr.MaxSymbols < 0:
			p.Addf("%s.max_symbols: must not be negative", field)
		case f.MaxSymbols > 0 && fr.MaxSymbols > f.MaxSymbols:
			p.Addf("%s.max_symbols: %d is above the feed's max_symbols %d (a role never raises it)", field, fr.MaxSymbols, f.MaxSymbols)
		}
		if len(fr.Symbols) > maxRoleSymbols {
			p.Addf("%s.symbols: more than %d symbols", field, maxRoleSymbols)
			continue
		}
		seen := make(map[string]bool, len(fr.Symbols))
		for i, s := range fr.Symbols {
			if !ValidSymbol(s) {
				p.Addf("%s.symbols[%d]: %s is not a symbol (1 to 32 letters, digits and . - / : _, starting with a letter or digit)", field, i, quoteShort(s))
				continue
			}
			u := strings.ToUpper(s)
			if seen[u] {
				p.Addf("%s.symbols[%d]: %s is listed twice", field, i, strconv.Quote(u))
			}
			seen[u] = true
		}
		if fr.MaxSymbols > 0 && len(fr.Symbols) > 0 && fr.MaxSymbols > len(fr.Symbols) {
			p.Addf("%s.max_symbols: %d is more than the %d symbols the role may subscribe", field, fr.MaxSymbols, len(fr.Symbols))
		}
	}
}

// validateRouteRoles checks Route.Roles.
func validateRouteRoles(field string, roles []string, p *Problems) {
	if roles != nil && len(roles) == 0 {
		p.Addf("%s: empty list (leave roles out to open the route to every session)", field)
	}
	seen := map[string]bool{}
	for i, r := range roles {
		switch {
		case !ValidRole(r):
			p.Addf("%s[%d]: %s is not a role name (1 to 32 of [a-z0-9_-], starting with a letter or digit)", field, i, quoteShort(r))
		case seen[r]:
			p.Addf("%s[%d]: %q is listed twice", field, i, r)
		}
		seen[r] = true
	}
}

// ValidSymbol reports whether s is a symbol as browsers send them: 1 to
// 32 characters of letters, digits and . - / : _, starting with a letter
// or digit (the relay's rule).
func ValidSymbol(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '-' || c == '/' || c == ':' || c == '_'):
		default:
			return false
		}
	}
	return true
}

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}

// RouteRoles returns the roles a request needs to reach the decoded path
// with method on u: for every route whose methods include method and
// whose patterns match path, that route's roles. A session must hold one
// role of each returned list. Patterns match as the proxy matches them:
// "*" is one non-empty segment, a final "**" one or more segments.
func (u Upstream) RouteRoles(method, path string) [][]string {
	var out [][]string
	for _, r := range u.Routes {
		if len(r.Roles) == 0 {
			continue
		}
		methods := r.Methods
		if len(methods) == 0 {
			methods = []string{"GET", "HEAD"}
		}
		if !slices.Contains(methods, method) {
			continue
		}
		for _, pat := range r.Paths {
			if MatchPattern(pat, path) {
				out = append(out, r.Roles)
				break
			}
		}
	}
	return out
}

// MatchPattern reports whether the decoded path matches a route pattern
// (see Route.Paths).
func MatchPattern(pattern, path string) bool {
	if pattern == "" || pattern[0] != '/' {
		return false
	}
	return MatchSegments(strings.Split(pattern[1:], "/"), path)
}

// MatchSegments is MatchPattern for a pattern already split at "/"
// (without its leading one), for callers that match often: "*" matches
// exactly one non-empty segment; "**" (last only) one or more segments,
// the last of which may be empty (a trailing slash); other segments
// match literally and case-sensitively.
func MatchSegments(pat []string, path string) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	rest, done := path[1:], false
	for _, p := range pat {
		if done {
			return false
		}
		if p == "**" {
			return true
		}
		seg, after, more := strings.Cut(rest, "/")
		if p == "*" {
			if seg == "" {
				return false
			}
		} else if seg != p {
			return false
		}
		rest, done = after, !more
	}
	return done
}

// ParseUserNetworks parses TICKGATE_USER_NETWORKS: entries separated by
// ';', each "user=prefix|prefix" where a prefix is a CIDR
// (10.0.0.0/8, 2001:db8::/32) or a single address. A listed user's
// requests are served only from those networks (403 forbidden_network);
// users not listed are not restricted. Prefixes are masked
// (10.1.2.3/8 is 10.0.0.0/8).
func ParseUserNetworks(s string) (map[string][]netip.Prefix, error) {
	out := map[string][]netip.Prefix{}
	var p Problems
	for i, e := range strings.Split(s, ";") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		user, list, ok := strings.Cut(e, "=")
		user = strings.TrimSpace(user)
		if !ok || user == "" {
			p.Addf("entry %d: want user=cidr|cidr", i+1)
			continue
		}
		if !validUserName(user) {
			p.Addf("entry %d: %s is not a user name", i+1, quoteShort(user))
			continue
		}
		if _, dup := out[user]; dup {
			p.Addf("entry %d: user %q is listed twice", i+1, user)
			continue
		}
		var prefixes []netip.Prefix
		for _, c := range strings.Split(list, "|") {
			c = strings.TrimSpace(c)
			pre, err := ParseCIDR(c)
			if err != nil {
				p.Addf("entry %d (user %q): %s is not a CIDR like 10.0.0.0/8 or an address", i+1, user, quoteShort(c))
				continue
			}
			prefixes = append(prefixes, pre)
		}
		out[user] = prefixes
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// validUserName mirrors session.CheckUsername (config cannot import
// session): 1 to 64 of [A-Za-z0-9._@-].
func validUserName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '@' || c == '-') {
			return false
		}
	}
	return true
}
