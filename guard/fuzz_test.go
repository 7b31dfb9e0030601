package guard

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// FuzzClientIP: any X-Forwarded-For from any peer yields the peer or a
// parseable address, never a panic; an untrusted peer's header is never
// believed.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"198.51.100.9", "6.6.6.6, 198.51.100.9, 10.9.9.9", "[2001:db8::1]:80", "garbage,,", "::ffff:1.2.3.4", ""} {
		f.Add("10.1.2.3:5555", s)
		f.Add("203.0.113.7:1", s)
	}
	res := NewIPResolver([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		for _, line := range strings.Split(xff, "\n") {
			r.Header.Add("X-Forwarded-For", line)
		}
		got := res.ClientIP(r)
		peer := res.Peer(r)
		if !res.isTrusted(peer) && got != peer {
			t.Fatalf("untrusted peer %v: ClientIP = %v from header %q", peer, got, xff)
		}
		if got.Is4In6() {
			t.Fatalf("ClientIP %v is IPv4-mapped", got)
		}
		_ = LimitKey(got)
	})
}

// FuzzRoutePath: matching request paths against route patterns never
// panics, a match is consistent with the pattern's meaning, and only
// /ws/{feed} names a feed.
func FuzzRoutePath(f *testing.F) {
	for _, s := range []string{"/api/demo/x", "/api", "/apix", "/auth/login", "", "/ws/live", "//api/", "/api/../ws/live"} {
		f.Add(s)
	}
	g, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	defer g.Close()
	for _, p := range []string{"/api/*", "/auth/login", "/*", "/api/demo/*"} {
		rt := &route{pattern: p, base: strings.TrimSuffix(p, "*")}
		rt.prefix = rt.base != p
		g.routes = append(g.routes, rt)
	}
	f.Fuzz(func(t *testing.T, path string) {
		for _, rt := range g.routes {
			if rt.matches(path) && !strings.HasPrefix(path+"/", strings.TrimSuffix(rt.base, "/")+"/") {
				t.Fatalf("%q matches %q", path, rt.pattern)
			}
		}
		if name := feedFromPath(&http.Request{URL: &url.URL{Path: path}}); name != "" && (path != "/ws/"+name || strings.Contains(name, "/")) {
			t.Fatalf("feedFromPath(%q) = %q", path, name)
		}
	})
}
