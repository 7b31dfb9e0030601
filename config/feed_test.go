package config

import (
	"strings"
	"testing"
)

func TestFeedPresetsValidate(t *testing.T) {
	t.Parallel()
	for _, name := range sortedKeys(presets) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			yaml := "feeds:\n  f:\n    url: wss://stream.example/v1\n    key: {secret: K}\n    adapter: {preset: " + name + ", auth: {key_id: AKID}}\n"
			f, err := Parse([]byte(yaml), func(string) string { return "" })
			if err != nil {
				t.Fatalf("preset %s: %v", name, err)
			}
			a := f.Feeds["f"].Adapter.Resolved()
			if a.Subscribe == "" || a.SymbolField == "" || a.MaxConnections < 1 {
				t.Errorf("preset %s resolved incompletely: %+v", name, a)
			}
		})
	}
}

func TestFeedAdapterOverridesPreset(t *testing.T) {
	t.Parallel()
	yaml := `feeds:
  f:
    url: wss://stream.example/v1
    key: {secret: K}
    max_feed_symbols: 300
    adapter:
      preset: binance
      symbol_field: data.s
      max_connections: 2
`
	f, err := Parse([]byte(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	feed := f.Feeds["f"]
	a := feed.Adapter.Resolved()
	if a.SymbolField != "data.s" || a.MaxConnections != 2 || a.SymbolSuffix != "@trade" || a.SymbolCase != "lower" || feed.MaxFeedSymbols != 300 {
		t.Errorf("resolved %+v, max_feed_symbols %d", a, feed.MaxFeedSymbols)
	}
}

func TestFeedAdapterProblems(t *testing.T) {
	t.Parallel()
	base := "feeds:\n  f:\n    url: wss://stream.example/v1\n    key: {secret: K}\n"
	tests := []struct{ name, extra, want string }{
		{"negative feed cap", "    max_feed_symbols: -1\n    adapter: {preset: marketsim}\n", "max_feed_symbols: must not be negative"},
		{"negative connections", "    adapter: {preset: marketsim, max_connections: -2}\n", "max_connections: must not be negative"},
		{"rejected without field", "    adapter: {preset: finage, rejected: {status: error}}\n", "rejected and rejected_symbols_field go together"},
		{"bad case", "    adapter: {preset: binance, symbol_case: title}\n", `symbol_case: "title" is not upper or lower`},
		{"heartbeat without interval", "    adapter: {preset: finage, heartbeat: '{\"a\":1}'}\n", "heartbeat and a positive heartbeat_interval go together"},
		{"heartbeat not JSON", "    adapter: {preset: finage, heartbeat: 'ping', heartbeat_interval: 10s}\n", "adapter.heartbeat: is not JSON"},
		{"key id missing", "    adapter: {preset: alpaca}\n", "auth.key_id: required"},
		{"negative lifetime", "    adapter: {preset: binance, max_lifetime: -1s}\n", "max_lifetime: must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(base+tc.extra), func(string) string { return "" })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
