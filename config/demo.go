package config

import (
	"strings"
	"time"
)

// DemoKeySecret is the secret that holds the demo vendor key.
const DemoKeySecret = "TICKGATE_DEMO_KEY"

// Demo returns the configuration of demo mode against a marketsim at
// vendorURL (http://host:port): the upstream and feed named "demo".
func Demo(vendorURL string) File {
	vendorURL = strings.TrimSuffix(vendorURL, "/")
	ws := "ws" + strings.TrimPrefix(vendorURL, "http")
	key := KeyRef{Secret: DemoKeySecret, Placement: "query:apikey"}
	return File{
		Upstreams: map[string]Upstream{
			"demo": {
				BaseURL: vendorURL,
				Key:     key,
				Routes: []Route{{
					Methods: []string{"GET", "HEAD"},
					Paths:   []string{"/v1/quote/*", "/v1/quotes", "/v1/symbols", "/v1/last/*"},
				}},
				// Just under marketsim's default plan (20/s, burst 40), so
				// tickgate answers 429 upstream_budget before the vendor
				// would; a short cache keeps repeated quotes off the budget.
				Budget:   Budget{Rate: Limit{{Tokens: 18, Interval: time.Second}}, Burst: 36, Queue: Duration(500 * time.Millisecond)},
				CacheTTL: Duration(time.Second),
			},
		},
		Feeds: map[string]Feed{
			"demo": {
				URL:     ws + "/v1/stream",
				Key:     KeyRef{Secret: DemoKeySecret},
				Adapter: Adapter{Preset: "marketsim"},
			},
		},
	}
}
