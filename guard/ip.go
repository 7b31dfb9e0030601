package guard

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// IPResolver finds the client address of a request.
type IPResolver struct {
	trusted []netip.Prefix
}

// NewIPResolver returns a resolver that believes forwarding headers only
// from peers inside trusted. IPv4-mapped IPv6 prefixes
// (::ffff:10.0.0.0/104) are taken as the IPv4 networks they map, since
// addresses are compared unmapped.
func NewIPResolver(trusted []netip.Prefix) *IPResolver {
	out := make([]netip.Prefix, 0, len(trusted))
	for _, p := range trusted {
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return &IPResolver{trusted: out}
}

// canonical is a with its IPv6 zone dropped and IPv4-mapped IPv6 as
// IPv4. A zone (fe80::1%eth0) names a local interface, not part of the
// address; netip never places a zoned address inside a prefix, so a kept
// zone would slip past deny lists and trusted-proxy checks.
func canonical(a netip.Addr) netip.Addr { return a.WithZone("").Unmap() }

func (res *IPResolver) isTrusted(a netip.Addr) bool {
	for _, p := range res.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err == nil {
		return canonical(ap.Addr())
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return canonical(a)
}

// ClientIP returns the client's address: the TCP peer, or, when the peer
// is a trusted proxy, the right-most X-Forwarded-For entry that is not a
// trusted proxy (all X-Forwarded-For header lines merged in order).
func (res *IPResolver) ClientIP(r *http.Request) netip.Addr {
	peer := peerAddr(r)
	if !peer.IsValid() || !res.isTrusted(peer) {
		return peer
	}
	hops := forwardedFor(r.Header)
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(hops[i])
		if err != nil {
			// An entry we cannot parse was written by someone we do not
			// trust; stop at the last address we could vouch for.
			return peer
		}
		a = canonical(a)
		if !res.isTrusted(a) {
			return a
		}
		peer = a
	}
	return peer
}

func forwardedFor(h http.Header) []string {
	var out []string
	for _, line := range h.Values("X-Forwarded-For") {
		for _, part := range strings.Split(line, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			// Accept "[v6]:port", "[v6]" and "v4:port" forms some
			// proxies write.
			if ap, err := netip.ParseAddrPort(part); err == nil {
				part = ap.Addr().String()
			} else if strings.HasPrefix(part, "[") && strings.HasSuffix(part, "]") {
				part = part[1 : len(part)-1]
			}
			out = append(out, part)
		}
	}
	return out
}

// IsHTTPS reports whether the browser reached us over HTTPS: our own TLS,
// or a trusted proxy that says X-Forwarded-Proto: https.
func (res *IPResolver) IsHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !res.isTrusted(peerAddr(r)) {
		return false
	}
	vals := r.Header.Values("X-Forwarded-Proto")
	if len(vals) == 0 {
		return false
	}
	// The proxy closest to us appends last; believe only that one.
	parts := strings.Split(vals[len(vals)-1], ",")
	return strings.EqualFold(strings.TrimSpace(parts[len(parts)-1]), "https")
}

// LimitKey returns the rate-limit key for a client address: the address
// itself for IPv4, its /64 for IPv6.
func LimitKey(a netip.Addr) string {
	a = canonical(a)
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

type ctxKey struct{}

// Middleware stores the client address in the request context for
// ClientIPFrom, so it is computed once per request.
func (res *IPResolver) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := res.ClientIP(r)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, a)))
	})
}

// ClientIPFrom returns the address Middleware stored, or the zero Addr.
func ClientIPFrom(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(ctxKey{}).(netip.Addr)
	return a
}

// ClientIPString is ClientIPFrom(r.Context()) as a string, computing it
// when the middleware did not run.
func (res *IPResolver) ClientIPString(r *http.Request) string {
	if a := ClientIPFrom(r.Context()); a.IsValid() {
		return a.String()
	}
	return res.ClientIP(r).String()
}

// Peer returns the TCP peer's address.
func (res *IPResolver) Peer(r *http.Request) netip.Addr { return peerAddr(r) }

// Forwarded reports whether the request came through a trusted proxy
// that said which scheme the browser used.
func (res *IPResolver) Forwarded(r *http.Request) bool {
	return res.isTrusted(peerAddr(r)) && r.Header.Get("X-Forwarded-Proto") != ""
}
