package guard

import (
	"fmt"
	"net/netip"

	"github.com/tickgate/tickgate/config"
)

// The error codes of a network denial (403), part of the contract's JSON
// error body.
const (
	CodeForbiddenNetwork = "forbidden_network"
	CodeForbiddenCountry = "forbidden_country"
)

// Policy is one set of network rules: CIDR allow and deny lists and
// country allow and deny lists. A nil *Policy allows every address.
type Policy struct {
	allow, deny   []netip.Prefix
	allowCountry  map[string]bool
	denyCountry   map[string]bool
	geo           *GeoDB
	hasRules      bool
	countryFenced bool
}

// Decision is the outcome of Policy.Check.
type Decision struct {
	Allowed bool
	// Code is CodeForbiddenNetwork or CodeForbiddenCountry when refused.
	Code string
	// Rule says which rule refused, for the log ("deny 203.0.113.0/24",
	// "not in allow list", "country KP denied").
	Rule string
	// Country is the address's country when it was looked up.
	Country string
}

// NewPolicy compiles rules. Country rules need geo; CIDRs and countries
// are checked as config.ParseCIDR and config.ParseCountry do.
func NewPolicy(rules config.NetworkRules, geo *GeoDB) (*Policy, error) {
	p := &Policy{geo: geo}
	var err error
	if p.allow, err = prefixes(rules.Allow); err != nil {
		return nil, err
	}
	if p.deny, err = prefixes(rules.Deny); err != nil {
		return nil, err
	}
	if p.allowCountry, err = countrySet(rules.AllowCountries); err != nil {
		return nil, err
	}
	if p.denyCountry, err = countrySet(rules.DenyCountries); err != nil {
		return nil, err
	}
	if len(p.allowCountry) > 0 && len(p.denyCountry) > 0 {
		return nil, fmt.Errorf("%w: set allow_countries or deny_countries, not both", ErrInvalidConfig)
	}
	p.countryFenced = len(p.allowCountry)+len(p.denyCountry) > 0
	if p.countryFenced && geo == nil {
		return nil, fmt.Errorf("%w: country rules need a geo database", ErrInvalidConfig)
	}
	p.hasRules = len(p.allow)+len(p.deny) > 0 || p.countryFenced
	return p, nil
}

func prefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		p, err := config.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func countrySet(list []string) (map[string]bool, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := make(map[string]bool, len(list))
	for _, s := range list {
		c, err := config.ParseCountry(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		out[c] = true
	}
	return out, nil
}

// Empty reports whether p has no rules (and so allows everything).
func (p *Policy) Empty() bool { return p == nil || !p.hasRules }

// Allowed reports whether addr may pass, and otherwise the error code
// (CodeForbiddenNetwork or CodeForbiddenCountry) to answer with. The relay
// calls it for per-feed rules.
func (p *Policy) Allowed(addr netip.Addr) (ok bool, reason string) {
	d := p.Check(addr)
	return d.Allowed, d.Code
}

// Check decides for addr (IPv4-mapped IPv6 is treated as IPv4, and an
// IPv6 zone is ignored). The deny
// list wins over the allow list; network rules are checked before
// countries. Loopback, private and link-local addresses are never
// geo-fenced: they are not on the internet and no database places them.
// Under allow_countries, a public address the database does not place in
// a country is refused. An invalid address passes only a policy without
// rules.
func (p *Policy) Check(addr netip.Addr) Decision {
	if p.Empty() {
		return Decision{Allowed: true}
	}
	if !addr.IsValid() {
		return Decision{Code: CodeForbiddenNetwork, Rule: "client address unknown"}
	}
	addr = canonical(addr)
	for _, n := range p.deny {
		if n.Contains(addr) {
			return Decision{Code: CodeForbiddenNetwork, Rule: "deny " + n.String()}
		}
	}
	if len(p.allow) > 0 && !containsAddr(p.allow, addr) {
		return Decision{Code: CodeForbiddenNetwork, Rule: "not in allow list"}
	}
	if !p.countryFenced || !geoFenceable(addr) {
		return Decision{Allowed: true}
	}
	country, found := p.geo.Country(addr)
	switch {
	case p.denyCountry[country]:
		return Decision{Code: CodeForbiddenCountry, Rule: "country " + country + " denied", Country: country}
	case len(p.allowCountry) > 0 && !found:
		return Decision{Code: CodeForbiddenCountry, Rule: "country unknown, not in allow_countries"}
	case len(p.allowCountry) > 0 && !p.allowCountry[country]:
		return Decision{Code: CodeForbiddenCountry, Rule: "country " + country + " not in allow_countries", Country: country}
	}
	return Decision{Allowed: true, Country: country}
}

func containsAddr(list []netip.Prefix, a netip.Addr) bool {
	for _, n := range list {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// geoFenceable reports whether a is an internet address a geo database
// could place.
func geoFenceable(a netip.Addr) bool {
	return !(a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified())
}
