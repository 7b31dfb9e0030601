package config

import (
	"errors"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

const guardFeeds = `
feeds:
  live:
    url: wss://stream.vendor.example/v1
    key: {secret: KEY}
    adapter: {preset: marketsim}
`

func TestGuardYAML(t *testing.T) {
	t.Parallel()
	f, err := Parse([]byte(guardFeeds+`
guard:
  allow: [10.0.0.0/8, "2001:db8::/32", 192.0.2.1]
  deny: [10.6.6.0/24]
  geo:
    database: /var/lib/GeoIP/GeoLite2-Country.mmdb
    deny_countries: [kp]
  routes:
    "/api/*": {limit: "20/1s,1000/1h", by: session, redis_failure: closed}
    "/auth/login": {allow: [10.1.0.0/16], allow_countries: [DE]}
    "/*": {deny: ["::ffff:203.0.113.0/120"]}
  feeds:
    live: {deny_countries: [RU]}
  ws: {connects_per_ip: 30/1m, conns_per_ip: 20}
  redis_failure: {default: open, login: closed}
`), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	g := f.Guard
	if got := g.Routes["/api/*"].Limit.String(); got != "20/1s,1000/1h" {
		t.Fatalf("route limit = %s", got)
	}
	if g.WS.ConnsPerIP != 20 || g.WS.ConnectsPerIP[0] != (Rate{Tokens: 30, Interval: time.Minute}) {
		t.Fatalf("ws = %+v", g.WS)
	}
	if g.Routes["/auth/login"].Allow[0] != "10.1.0.0/16" || g.Feeds["live"].DenyCountries[0] != "RU" || !g.UsesGeo() {
		t.Fatalf("rules = %+v", g)
	}
}

func TestGuardProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"bad cidrs", `
guard:
  allow: [10.0.0.0/33, "fe80::1%eth0"]
  deny: [nope]`, []string{
			`guard.allow[0]: "10.0.0.0/33" is not a CIDR`,
			`guard.allow[1]: "fe80::1%eth0" is not a CIDR`,
			`guard.deny[0]: "nope" is not a CIDR`,
		}},
		{"countries", `
guard:
  geo: {database: /x.mmdb, allow_countries: [DE, Germany], deny_countries: [KP]}`, []string{
			"guard.geo: set allow_countries or deny_countries, not both",
			`guard.geo.allow_countries[1]: "Germany" is not a two-letter ISO country code`,
		}},
		{"countries need a database", `
guard:
  geo: {deny_countries: [KP]}
  feeds:
    live: {allow_countries: [US]}`, []string{
			"guard.geo: allow_countries and deny_countries need geo.database",
			"guard.feeds.live: allow_countries and deny_countries need guard.geo.database",
		}},
		{"unused database", `
guard:
  geo: {database: /x.mmdb}`, []string{"guard.geo.database: set, but no allow_countries or deny_countries use it"}},
		{"routes", `
guard:
  routes:
    "api/*": {limit: 1/1s}
    "/a/*/b": {limit: 1/1s}
    "/a/../b": {limit: 1/1s}
    "/x": {by: ip}
    "/y": {}
    "/z": {limit: 1/1s, by: user, redis_failure: maybe}`, []string{
			"guard.routes./a/*/b: pattern must be",
			"guard.routes./a/../b: pattern must be",
			"guard.routes./x: by and redis_failure need a limit",
			"guard.routes./y: sets neither a limit nor network rules",
			`guard.routes./z.by: "user" is not ip or session`,
			`guard.routes./z.redis_failure: "maybe" is not open or closed`,
			"guard.routes.api/*: pattern must be",
		}},
		{"feeds", `
guard:
  feeds:
    nosuch: {deny: [10.0.0.0/8]}
    live: {}`, []string{
			"guard.feeds.live: sets no network rules",
			`guard.feeds.nosuch: no feed named "nosuch" in feeds`,
		}},
		{"ws and policies", `
guard:
  ws: {conns_per_ip: -1}
  redis_failure: {default: shut, login: ajar}`, []string{
			"guard.ws.conns_per_ip: -1 is not from 0",
			`guard.redis_failure.default: "shut" is not open or closed`,
			`guard.redis_failure.login: "ajar" is not open or closed`,
		}},
		{"bad limit", `
guard:
  ws: {connects_per_ip: lots}`, []string{`"lots": want N/duration`}},
		{"unknown key", `
guard:
  alow: [10.0.0.0/8]`, []string{"field alow not found"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(guardFeeds+tc.yaml), func(string) string { return "" })
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			lines := Lines(err)
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestParseCIDR(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"10.1.2.3/8":             "10.0.0.0/8",
		"192.0.2.1":              "192.0.2.1/32",
		"2001:db8::1":            "2001:db8::1/128",
		"2001:db8:1:2::/64":      "2001:db8:1:2::/64",
		"::ffff:203.0.113.0/120": "203.0.113.0/24",
		"::ffff:192.0.2.1":       "192.0.2.1/32",
		" 10.0.0.0/8 ":           "10.0.0.0/8",
	} {
		got, err := ParseCIDR(in)
		if err != nil || got != netip.MustParsePrefix(want) {
			t.Errorf("ParseCIDR(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "10.0.0.0/33", "::ffff:0.0.0.0/90", "host.example", "fe80::1%eth0"} {
		if _, err := ParseCIDR(bad); err == nil {
			t.Errorf("ParseCIDR(%q) succeeded", bad)
		}
	}
}

func TestValidRoutePattern(t *testing.T) {
	t.Parallel()
	for p, want := range map[string]bool{
		"/": true, "/*": true, "/api/*": true, "/auth/login": true, "/api/demo/*": true,
		"": false, "api": false, "/api*": false, "/a/*/b": false, "/a//b": false, "/a/./b": false, "/a/../*": false, "/**": false,
	} {
		if got := ValidRoutePattern(p); got != want {
			t.Errorf("ValidRoutePattern(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestLimitStoreSetting(t *testing.T) {
	t.Parallel()
	s, err := FromEnv(env(nil))
	if err != nil || s.LimitStore != "memory" {
		t.Fatalf("default LimitStore = %q, %v", s.LimitStore, err)
	}
	s, err = FromEnv(env(map[string]string{"TICKGATE_LIMIT_STORE": "redis", "TICKGATE_REDIS_URL": "redis://127.0.0.1:6379/0"}))
	if err != nil || s.LimitStore != "redis" {
		t.Fatalf("LimitStore = %q, %v", s.LimitStore, err)
	}
	for v, want := range map[string]string{"redis": "TICKGATE_REDIS_URL: required when TICKGATE_LIMIT_STORE=redis", "disk": `TICKGATE_LIMIT_STORE: "disk" is not memory or redis`} {
		_, err := FromEnv(env(map[string]string{"TICKGATE_LIMIT_STORE": v}))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("TICKGATE_LIMIT_STORE=%s: %v, want %q", v, err, want)
		}
	}
}

// TestREADMEGuardExample: the README's guard section example (every YAML
// example there is parsed by TestREADMEExamplesAreValid) sets each part of
// the section it documents.
func TestREADMEGuardExample(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var found []File
	for _, blk := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(b, -1) {
		if !strings.Contains("\n"+string(blk[1]), "\nguard:") {
			continue
		}
		f, err := Parse(blk[1], func(string) string { return "x" })
		if err != nil {
			t.Fatalf("README guard example: %v", err)
		}
		found = append(found, f)
	}
	if len(found) != 1 {
		t.Fatalf("found %d README examples with a guard section, want 1", len(found))
	}
	g := found[0].Guard
	switch {
	case len(g.Deny) == 0, g.Geo.Database == "", !g.UsesGeo():
		t.Errorf("example lacks global rules or geo: %+v", g)
	case len(g.Routes) == 0 || len(g.Routes["/api/*"].Limit) != 2 || g.Routes["/api/*"].By != "session":
		t.Errorf("example lacks a burst+sustained route limit by session: %+v", g.Routes)
	case len(g.Feeds) == 0, len(g.WS.ConnectsPerIP) == 0, g.WS.ConnsPerIP == 0, g.RedisFailure.Login == "":
		t.Errorf("example lacks feeds, ws or redis_failure: %+v", g)
	case len(found[0].Limits.IP) != 2:
		t.Errorf("example lacks the limits section: %+v", found[0].Limits)
	}
}
