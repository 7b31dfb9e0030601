package config

import (
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestUpstreamPresetsMatchVendors checks every preset of VENDORS.md
// section 2 against the vendor's documented key placement and base URL,
// and that a preset with only its secrets set is a valid upstream.
func TestUpstreamPresetsMatchVendors(t *testing.T) {
	t.Parallel()
	want := map[string]struct {
		base       string
		placements []string
		errInBody  bool
		header     string
	}{
		"finage":     {"https://api.finage.co.uk", []string{"query:apikey"}, false, "Accept-Encoding"},
		"polygon":    {"https://api.polygon.io", []string{"query:apiKey"}, false, ""},
		"massive":    {"https://api.massive.com", []string{"query:apiKey"}, false, ""},
		"alpaca":     {"https://data.alpaca.markets", []string{"header:APCA-API-KEY-ID", "header:APCA-API-SECRET-KEY"}, false, ""},
		"finnhub":    {"https://finnhub.io/api/v1", []string{"header:X-Finnhub-Token"}, false, ""},
		"twelvedata": {"https://api.twelvedata.com", []string{"query:apikey"}, true, ""},
		"eodhd":      {"https://eodhd.com/api", []string{"query:api_token"}, false, ""},
	}
	names := UpstreamPresets()
	for name, w := range want {
		if !slices.Contains(names, name) {
			t.Errorf("preset %s is missing", name)
			continue
		}
		u := Upstream{Preset: name}
		for i := range w.placements {
			u.Keys = append(u.Keys, KeyRef{Secret: "S" + string(rune('0'+i))})
		}
		if len(u.Keys) == 1 {
			u.Key, u.Keys = u.Keys[0], nil
		}
		var p Problems
		u.validate("upstreams."+name, &p)
		if err := p.Err(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		r := u.Resolved()
		if r.BaseURL != w.base {
			t.Errorf("%s: base %q, want %q", name, r.BaseURL, w.base)
		}
		var got []string
		for _, k := range r.KeyRefs() {
			got = append(got, k.Placement)
		}
		if !slices.Equal(got, w.placements) {
			t.Errorf("%s: placements %v, want %v", name, got, w.placements)
		}
		if !r.ErrorInBody.IsZero() != w.errInBody {
			t.Errorf("%s: error_in_body %+v", name, r.ErrorInBody)
		}
		if w.header != "" && r.Headers[w.header] == "" {
			t.Errorf("%s: header %s not set", name, w.header)
		}
		if len(r.Routes) == 0 {
			t.Errorf("%s: no routes", name)
		}
		for _, rt := range r.Routes {
			for _, m := range rt.Methods {
				if m != "GET" && m != "HEAD" {
					t.Errorf("%s: preset opens %s", name, m)
				}
			}
		}
		if bu, err := url.Parse(r.BaseURL); err != nil || bu.Scheme != "https" {
			t.Errorf("%s: base URL %q", name, r.BaseURL)
		}
	}
	// Alpaca needs both secrets, in order.
	var p Problems
	Upstream{Preset: "alpaca", Key: KeyRef{Secret: "ONE"}}.validate("upstreams.alpaca", &p)
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "needs 2 keys") {
		t.Errorf("alpaca with one key: %v", err)
	}
	// Fields set next to a preset win.
	r := Upstream{Preset: "polygon", Key: KeyRef{Secret: "P", Placement: "bearer"}, BaseURL: "https://api.massive.com",
		Headers: map[string]string{"accept-encoding": "identity"}}.Resolved()
	if r.Key.Placement != "bearer" || r.BaseURL != "https://api.massive.com" || r.Headers["accept-encoding"] != "identity" {
		t.Errorf("overrides lost: %+v", r)
	}
	r = Upstream{Preset: "finage", Key: KeyRef{Secret: "F"}, Headers: map[string]string{"accept-encoding": "br"}}.Resolved()
	if len(r.Headers) != 1 || r.Headers["accept-encoding"] != "br" {
		t.Errorf("header override: %v", r.Headers)
	}
	p = Problems{}
	Upstream{Preset: "nope", Key: KeyRef{Secret: "X"}}.validate("upstreams.x", &p)
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "not a known preset") {
		t.Errorf("unknown preset: %v", err)
	}
}

// TestREADMEUpstreamPresetExamples parses the README's example for every
// vendor preset.
func TestREADMEUpstreamPresetExamples(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(b, -1)
	found, budget := map[string]bool{}, map[string]bool{}
	for _, blk := range blocks {
		f, err := Parse(blk[1], func(string) string { return "x" })
		if err != nil {
			continue // TestREADMEExamplesAreValid reports it
		}
		for _, u := range f.Upstreams {
			if u.Preset != "" {
				found[u.Preset] = true
				budget[u.Preset] = budget[u.Preset] || !u.Budget.IsZero()
			}
		}
	}
	for _, name := range []string{"finage", "polygon", "alpaca", "finnhub", "twelvedata", "eodhd"} {
		if !found[name] || !budget[name] {
			t.Errorf("README has no valid example with a budget for preset %s", name)
		}
	}
}
