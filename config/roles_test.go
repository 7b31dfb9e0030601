package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

const rolesYAML = `upstreams:
  broker:
    base_url: https://api.broker.example
    key: {secret: BROKER_KEY, placement: header:X-Key}
    routes:
      - paths: [/v1/quote/*, /v1/symbols]
      - methods: [POST, DELETE]
        paths: [/v1/orders, /v1/orders/*]
        roles: [trading]
feeds:
  live:
    url: wss://stream.example/v1
    key: {secret: K}
    adapter: {preset: marketsim}
    max_symbols: 40
    roles:
      free: {max_symbols: 2, symbols: [aapl, MSFT, "BTC/USD"]}
      realtime: {}
      pro: {max_symbols: 30}
`

func TestRolesParse(t *testing.T) {
	t.Parallel()
	f, err := Parse([]byte(rolesYAML), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	u := f.Upstreams["broker"]
	if got := u.RouteRoles("POST", "/v1/orders"); len(got) != 1 || !slices.Equal(got[0], []string{"trading"}) {
		t.Errorf("POST /v1/orders needs %q, want [[trading]]", got)
	}
	if got := u.RouteRoles("DELETE", "/v1/orders/42"); len(got) != 1 {
		t.Errorf("DELETE /v1/orders/42 needs %q", got)
	}
	for _, tc := range [][2]string{{"GET", "/v1/orders"}, {"GET", "/v1/quote/AAPL"}, {"POST", "/v1/orders/42/x"}} {
		if got := u.RouteRoles(tc[0], tc[1]); got != nil {
			t.Errorf("%s %s needs %q, want nothing", tc[0], tc[1], got)
		}
	}

	feed := f.Feeds["live"]
	tests := []struct {
		name    string
		roles   []string
		allowed bool
		max     int
		symbols []string // nil: any
	}{
		{"no role", nil, false, 0, nil},
		{"unrelated role", []string{"trading"}, false, 0, nil},
		{"free", []string{"free"}, true, 2, []string{"AAPL", "BTC/USD", "MSFT"}},
		{"pro", []string{"pro"}, true, 30, nil},
		{"free and pro: the most generous", []string{"free", "pro"}, true, 30, nil},
		{"realtime: the feed's own limit", []string{"free", "realtime"}, true, 0, nil},
	}
	for _, tt := range tests {
		acc := feed.Access(tt.roles)
		if acc.Allowed != tt.allowed || acc.MaxSymbols != tt.max {
			t.Errorf("%s: access = %+v, want allowed %v max %d", tt.name, acc, tt.allowed, tt.max)
		}
		var syms []string
		for s := range acc.Symbols {
			syms = append(syms, s)
		}
		slices.Sort(syms)
		if !slices.Equal(syms, tt.symbols) {
			t.Errorf("%s: symbols = %q, want %q", tt.name, syms, tt.symbols)
		}
	}
	if acc := (Feed{}).Access(nil); !acc.Allowed || acc.Symbols != nil || acc.MaxSymbols != 0 {
		t.Errorf("feed without roles: %+v, want open", acc)
	}
}

func TestRolesProblems(t *testing.T) {
	t.Parallel()
	feed := func(roles string) string {
		return "feeds:\n  f:\n    url: wss://stream.example/v1\n    key: {secret: K}\n    adapter: {preset: marketsim}\n    max_symbols: 10\n    roles: " + roles + "\n"
	}
	route := func(roles string) string {
		return "upstreams:\n  u:\n    base_url: https://api.example\n    key: {secret: K, placement: bearer}\n    routes:\n      - paths: [/x]\n        roles: " + roles + "\n"
	}
	tests := []struct{ name, yaml, want string }{
		{"bad feed role name", feed("{Free: {}}"), `feeds.f.roles: "Free" is not a role name`},
		{"negative max", feed("{free: {max_symbols: -1}}"), "feeds.f.roles.free.max_symbols: must not be negative"},
		{"max above the feed's", feed("{free: {max_symbols: 11}}"), "above the feed's max_symbols 10"},
		{"bad symbol", feed(`{free: {symbols: ["AA PL"]}}`), `feeds.f.roles.free.symbols[0]: "AA PL" is not a symbol`},
		{"duplicate symbol", feed(`{free: {symbols: [AAPL, aapl]}}`), `"AAPL" is listed twice`},
		{"max above its list", feed(`{free: {max_symbols: 3, symbols: [AAPL]}}`), "more than the 1 symbols"},
		{"unknown key", feed(`{free: {max: 3}}`), "max"},
		{"bad route role", route("[Trading]"), `upstreams.u.routes[0].roles[0]: "Trading" is not a role name`},
		{"empty route roles", route("[]"), "upstreams.u.routes[0].roles: empty list"},
		{"duplicate route role", route("[a, a]"), `roles[1]: "a" is listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.yaml), func(string) string { return "" })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestValidRole(t *testing.T) {
	t.Parallel()
	for _, r := range []string{"a", "trading", "real-time", "plan_2", "9", strings.Repeat("r", 32)} {
		if !ValidRole(r) {
			t.Errorf("ValidRole(%q) = false", r)
		}
	}
	for _, r := range []string{"", "-a", "_a", "A", "a b", "a|b", "a,b", "a:b", "é", strings.Repeat("r", 33)} {
		if ValidRole(r) {
			t.Errorf("ValidRole(%q) = true", r)
		}
	}
}

func TestMatchPattern(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pat, path string
		want      bool
	}{
		{"/v1/orders", "/v1/orders", true},
		{"/v1/orders", "/v1/orders/", false},
		{"/v1/orders/*", "/v1/orders/42", true},
		{"/v1/orders/*", "/v1/orders/", false},
		{"/v1/orders/*", "/v1/orders/42/fills", false},
		{"/v1/**", "/v1/a/b/c", true},
		{"/v1/**", "/v1/", true},
		{"/v1/**", "/v1", false},
		{"/v1/orders", "/V1/orders", false},
		{"/v1/orders", "v1/orders", false},
	}
	for _, tt := range tests {
		if got := MatchPattern(tt.pat, tt.path); got != tt.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", tt.pat, tt.path, got, tt.want)
		}
	}
}

func TestParseUserNetworks(t *testing.T) {
	t.Parallel()
	got, err := ParseUserNetworks(" alice=10.1.2.3/8 | 2001:db8::/32 ; bob=198.51.100.7;")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]netip.Prefix{
		"alice": {netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
		"bob":   {netip.MustParsePrefix("198.51.100.7/32")},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for u, w := range want {
		if !slices.Equal(got[u], w) {
			t.Errorf("%s: %v, want %v", u, got[u], w)
		}
	}
	for _, bad := range []string{"alice", "=10.0.0.0/8", "alice=", "alice=10.0.0.0/33", "alice=nope",
		"al ice=10.0.0.0/8", "alice=10.0.0.0/8;alice=10.0.0.0/8", "alice=fe80::1%eth0"} {
		if _, err := ParseUserNetworks(bad); err == nil {
			t.Errorf("ParseUserNetworks(%q) succeeded", bad)
		}
	}
}

func TestUserNetworksSetting(t *testing.T) {
	t.Parallel()
	env := map[string]string{"TICKGATE_USER_NETWORKS": "alice=nope"}
	if _, err := FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err == nil || !strings.Contains(err.Error(), "TICKGATE_USER_NETWORKS") {
		t.Fatalf("err = %v, want a TICKGATE_USER_NETWORKS problem", err)
	}
	env["TICKGATE_USER_NETWORKS"] = "alice=192.0.2.0/24"
	s, err := FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if got := s.UserNetworks["alice"]; len(got) != 1 || got[0] != netip.MustParsePrefix("192.0.2.0/24") {
		t.Fatalf("UserNetworks = %v", s.UserNetworks)
	}
}

// BenchmarkRouteRoles is the per-request cost of the route role lookup
// on an upstream with three routes (one of them gated).
func BenchmarkRouteRoles(b *testing.B) {
	f, err := Parse([]byte(rolesYAML), func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	u := f.Upstreams["broker"]
	b.ReportAllocs()
	for b.Loop() {
		if u.RouteRoles("POST", "/v1/orders/42") == nil {
			b.Fatal("no roles")
		}
		if u.RouteRoles("GET", "/v1/quote/AAPL") != nil {
			b.Fatal("roles on an open route")
		}
	}
}
