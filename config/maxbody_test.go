package config

import (
	"strings"
	"testing"
)

func TestRouteMaxBodyBytes(t *testing.T) {
	t.Parallel()
	yaml := func(v string) []byte {
		return []byte("upstreams:\n  v:\n    base_url: https://api.vendor.example\n    key: {secret: K, placement: bearer}\n" +
			"    routes: [{methods: [POST], paths: [\"/orders\"], max_body_bytes: " + v + "}]\n")
	}
	f, err := Parse(yaml("2048"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Upstreams["v"].Routes[0].MaxBodyBytes; got != 2048 {
		t.Errorf("max_body_bytes = %d, want 2048", got)
	}
	_, err = Parse(yaml("-1"), func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "upstreams.v.routes[0].max_body_bytes: must not be negative") {
		t.Errorf("max_body_bytes -1: %v", err)
	}
}
