package guard

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/tickgate/tickgate/config"
)

// TestAttackSpoofedHeadersFromUntrustedPeer: nothing an untrusted peer
// sends moves it to another bucket: X-Forwarded-For in any shape, nor
// the headers other software believes (Forwarded, X-Real-IP, ...).
func TestAttackSpoofedHeadersFromUntrustedPeer(t *testing.T) {
	t.Parallel()
	res := NewIPResolver([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	spoofs := []http.Header{
		{"X-Forwarded-For": {"10.0.0.1"}},
		{"X-Forwarded-For": {"1.2.3.4", "5.6.7.8"}},
		{"X-Forwarded-For": {"1.2.3.4,5.6.7.8,,, 9.9.9.9 "}},
		{"X-Forwarded-For": {"[2001:db8::1]:443"}},
		{"X-Forwarded-For": {"::ffff:1.2.3.4"}},
		{"Forwarded": {"for=1.2.3.4;proto=https"}},
		{"X-Real-Ip": {"1.2.3.4"}},
		{"True-Client-Ip": {"1.2.3.4"}},
		{"Cf-Connecting-Ip": {"1.2.3.4"}},
		{"X-Client-Ip": {"1.2.3.4"}},
	}
	for _, h := range spoofs {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "203.0.113.7:5555"
		r.Header = h
		if got := res.ClientIP(r); got != netip.MustParseAddr("203.0.113.7") {
			t.Errorf("%v from an untrusted peer: client %s, want the peer", h, got)
		}
		if res.IsHTTPS(r) {
			t.Errorf("%v from an untrusted peer: believed to be HTTPS", h)
		}
	}
}

// TestAttackZonedAddresses: an IPv6 zone ("fe80::1%eth0", which Go puts
// into RemoteAddr for link-local peers and netip accepts in
// X-Forwarded-For) is not part of the address. With it kept, no CIDR
// contains the address: deny lists would not refuse it and a link-local
// proxy would not be trusted.
func TestAttackZonedAddresses(t *testing.T) {
	t.Parallel()
	res := NewIPResolver([]netip.Prefix{netip.MustParsePrefix("fe80::/10"), netip.MustParsePrefix("10.0.0.0/8")})
	for _, tc := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"zoned peer", "[2001:db8::5%eth0]:5555", nil, "2001:db8::5"},
		{"zoned trusted proxy", "[fe80::1%eth0]:5555", []string{"198.51.100.9"}, "198.51.100.9"},
		{"zoned entry behind a proxy", "10.1.1.1:5555", []string{"2001:db8::9%x"}, "2001:db8::9"},
		{"zoned trusted hop", "10.1.1.1:5555", []string{"198.51.100.9, fe80::2%eth1"}, "198.51.100.9"},
		{"bracketed entry without port", "10.1.1.1:5555", []string{"[2001:db8::7]"}, "2001:db8::7"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := res.ClientIP(r).String(); got != tc.want {
			t.Errorf("%s: ClientIP = %s, want %s", tc.name, got, tc.want)
		}
	}

	p, err := NewPolicy(config.NetworkRules{Deny: []string{"fe80::/10", "2001:db8::/32"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"fe80::1%eth0", "2001:db8::1%1", "::ffff:0.0.0.0%x"} {
		addr := netip.MustParseAddr(a)
		want := addr.WithZone("").Unmap()
		if got := p.Check(addr).Allowed; got != !p.denies(want) {
			t.Errorf("Check(%s).Allowed = %v; the deny list decides %s otherwise", a, got, want)
		}
	}
	if d := p.Check(netip.MustParseAddr("fe80::1%eth0")); d.Allowed {
		t.Errorf("fe80::1%%eth0 passes deny fe80::/10: %+v", d)
	}

	// The whole chain: a link-local peer in a denied network is refused.
	hs := newGuardHarness(t, "guard:\n  deny: [\"fe80::/10\"]\n")
	if rec := hs.do(req{path: "/x", remote: "[fe80::1%eth0]:5555"}); rec.Code != http.StatusForbidden {
		t.Errorf("link-local peer with a zone in a denied network = %d, want 403", rec.Code)
	}
}

// denies reports whether the deny list alone refuses a.
func (p *Policy) denies(a netip.Addr) bool { return containsAddr(p.deny, a) }

// TestAttackMappedTrustedProxies: TICKGATE_TRUSTED_PROXIES written as
// IPv4-mapped IPv6 ("::ffff:10.0.0.0/104") names the same proxies as
// 10.0.0.0/8; client addresses are compared unmapped, so a mapped prefix
// kept as it is would trust no one and put every client behind the
// proxy into one bucket.
func TestAttackMappedTrustedProxies(t *testing.T) {
	t.Parallel()
	res := NewIPResolver([]netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104"), netip.MustParsePrefix("::ffff:192.0.2.1/128")})
	for _, remote := range []string{"10.1.2.3:5555", "[::ffff:10.1.2.3]:5555", "192.0.2.1:80"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", "198.51.100.9")
		r.Header.Set("X-Forwarded-Proto", "https")
		if got := res.ClientIP(r).String(); got != "198.51.100.9" {
			t.Errorf("peer %s inside a mapped trusted prefix: client %s, want 198.51.100.9", remote, got)
		}
		if !res.IsHTTPS(r) {
			t.Errorf("peer %s inside a mapped trusted prefix: X-Forwarded-Proto not believed", remote)
		}
	}
}

// TestAttackExemptOnlyAsSpelled: Config.Exempt paths pass the network
// rules only when spelled as listed; an escaped spelling that decodes to
// one of them ("/health%7A") is checked like any other path.
func TestAttackExemptOnlyAsSpelled(t *testing.T) {
	t.Parallel()
	hs := newGuardHarness(t, "guard:\n  deny: [203.0.113.0/24]\n")
	if rec := hs.do(req{path: "/healthz", remote: "203.0.113.5:1"}); rec.Code != http.StatusNoContent {
		t.Errorf("/healthz from a denied network = %d, want it exempt", rec.Code)
	}
	for _, p := range []string{"/health%7A", "/%68ealthz", "/healthz%2F"} {
		if rec := hs.do(req{path: p, remote: "203.0.113.5:1"}); rec.Code != http.StatusForbidden {
			t.Errorf("%s from a denied network = %d, want 403", p, rec.Code)
		}
	}
}

// TestAttackSubRouteKeepsParentRules: giving a sub-path a limit must not
// drop the network rules of the pattern above it, nor giving it network
// rules drop the limit above it: the most specific pattern that sets
// rules decides the rules, and the most specific that sets a limit
// decides the limit.
func TestAttackSubRouteKeepsParentRules(t *testing.T) {
	t.Parallel()
	hs := newGuardHarness(t, `
guard:
  routes:
    "/ws/*": {allow: [192.0.2.0/24]}
    "/ws/live": {limit: "100/1h"}
    "/api/*": {limit: "1/1h"}
    "/api/open/*": {allow: [0.0.0.0/0]}
`)
	if rec := hs.do(req{path: "/ws/live", remote: "198.51.100.1:1"}); rec.Code != http.StatusForbidden {
		t.Errorf("/ws/live from outside the /ws/* allow list = %d, want 403 (a limit on the sub-path dropped the rules)", rec.Code)
	}
	if rec := hs.do(req{path: "/ws/live", remote: "192.0.2.1:1"}); rec.Code != http.StatusNoContent || rec.Header().Get("X-RateLimit-Limit") != "100" {
		t.Errorf("/ws/live from the allow list = %d %v, want 204 under its own limit", rec.Code, rec.Header())
	}
	if rec := hs.do(req{path: "/api/open/x", remote: "198.51.100.2:1"}); rec.Code != http.StatusNoContent {
		t.Fatalf("/api/open/x = %d", rec.Code)
	}
	if rec := hs.do(req{path: "/api/open/x", remote: "198.51.100.2:1"}); rec.Code != http.StatusTooManyRequests {
		t.Errorf("second /api/open/x = %d, want 429 (network rules on the sub-path dropped the /api/* limit)", rec.Code)
	}
}
