package app

import (
	"slices"
	"testing"

	"github.com/tickgate/tickgate/config"
)

// TestPageOptions: the page gets the server's own feeds and quote route,
// the demo's first, and nothing made up when there is none.
func TestPageOptions(t *testing.T) {
	demo := pageOptions(config.Demo("http://127.0.0.1:7070"))
	if !slices.Equal(demo.Feeds, []string{"demo"}) || demo.QuotePath != "/api/demo/v1/quote/{symbol}" {
		t.Errorf("demo: %+v", demo)
	}

	route := func(methods []string, paths ...string) []config.Route {
		return []config.Route{{Methods: methods, Paths: paths}}
	}
	f := config.File{
		Upstreams: map[string]config.Upstream{
			"alpha": {Routes: route([]string{"POST"}, "/quote/*")}, // not a GET route
			"beta":  {Routes: route(nil, "/v2/symbols", "/v2/quote/*")},
			"demo":  {Routes: route(nil, "/v1/last/*")},
		},
		Feeds: map[string]config.Feed{"zeta": {}, "demo": {}, "fx": {}},
	}
	got := pageOptions(f)
	if !slices.Equal(got.Feeds, []string{"demo", "fx", "zeta"}) {
		t.Errorf("feeds = %q, want demo first, then by name", got.Feeds)
	}
	if got.QuotePath != "/api/beta/v2/quote/{symbol}" {
		t.Errorf("quote path = %q", got.QuotePath)
	}

	none := pageOptions(config.File{Upstreams: map[string]config.Upstream{"u": {Routes: route(nil, "/x/*")}}})
	if none.Feeds == nil || len(none.Feeds) != 0 || none.QuotePath != "" {
		t.Errorf("no feeds, no quote route: %+v (want empty, non-nil feeds)", none)
	}
}
