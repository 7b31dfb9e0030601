package app

import (
	"maps"
	"slices"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/frontend"
)

// pageOptions tells the demo page about this server's configuration: its
// feeds (the one named "demo" first, then by name) and a quote route, the
// first GET route ending in /quote/* of an upstream taken in the same
// order. A team with other names or other routes gets a page that uses
// them without editing app.js.
func pageOptions(f config.File) frontend.Options {
	var opts frontend.Options
	opts.Feeds = demoFirst(slices.Sorted(maps.Keys(f.Feeds)))
	for _, name := range demoFirst(slices.Sorted(maps.Keys(f.Upstreams))) {
		var paths []string
		for _, r := range f.Upstreams[name].Routes {
			if len(r.Methods) == 0 || slices.Contains(r.Methods, "GET") {
				paths = append(paths, r.Paths...)
			}
		}
		if p := frontend.QuotePathFor(name, paths); p != "" {
			opts.QuotePath = p
			break
		}
	}
	// Non-nil even when empty: nil would mean "the demo's".
	if opts.Feeds == nil {
		opts.Feeds = []string{}
	}
	return opts
}

// demoFirst moves "demo" to the front of sorted names.
func demoFirst(names []string) []string {
	if i := slices.Index(names, "demo"); i > 0 {
		names = slices.Insert(slices.Delete(names, i, i+1), 0, "demo")
	}
	return names
}
