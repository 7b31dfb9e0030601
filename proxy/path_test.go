package proxy

import (
	"net/url"
	"path"
	"regexp"
	"strings"
	"testing"
)

func TestCheckPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string // want "" means refused
	}{
		{"/v1/quote/AAPL", "/v1/quote/AAPL"},
		{"/v1/quote/BRK.B", "/v1/quote/BRK.B"},
		{"/v1/quote/%41APL", "/v1/quote/AAPL"},
		{"/v1/quote/EUR%20USD", "/v1/quote/EUR USD"},
		{"/v1/quote/a:b@c,d+e", "/v1/quote/a:b@c,d+e"},
		{"/v1/quotes/", "/v1/quotes/"},
		{"/", "/"},
		{"/v1/quote/%C3%A9", "/v1/quote/é"},
		{"", ""},
		{"v1/quote", ""},
		{"/v1/../admin", ""},
		{"/v1/./quote", ""},
		{"/..", ""},
		{"/v1/..", ""},
		{"/v1//quote", ""},
		{"//v1", ""},
		{"/v1/%2e%2e/admin", ""},
		{"/v1/%2E%2E/admin", ""},
		{"/v1/.%2e/admin", ""},
		{"/v1/quote%2fAAPL", ""},
		{"/v1/quote%2FAAPL", ""},
		{"/v1/quote%5cAAPL", ""},
		{"/v1/quote%5CAAPL", ""},
		{"/v1/quote\\AAPL", ""},
		{"/v1/%252e%252e/admin", ""},
		{"/v1/%25", ""},
		{"/v1/%", ""},
		{"/v1/%4", ""},
		{"/v1/%zz", ""},
		{"/v1/quote/AAPL%00", ""},
		{"/v1/quote/AAPL%0a", ""},
		{"/v1/quote/AAPL%0D%0AX-Injected:1", ""},
		{"/v1/quote/AAPL%7f", ""},
		{"/v1/quote/AAPL\x00", ""},
		{"/v1/quote/..;/admin", ""},
		{"/v1/quote/AAPL%3bjsessionid=x", ""},
		{"/v1/quote/%ff", ""},
		{"/" + strings.Repeat("a", maxPathBytes), ""},
	}
	for _, tt := range tests {
		got, why := checkPath(tt.in)
		if got != tt.want {
			t.Errorf("checkPath(%q) = %q (%s), want %q", tt.in, got, why, tt.want)
		}
		if (got == "") != (why != "") {
			t.Errorf("checkPath(%q): result %q with reason %q", tt.in, got, why)
		}
	}
}

var testRoutes = []route{
	{methods: []string{"GET", "HEAD"}, patterns: [][]string{
		compilePattern("/v1/quote/*"), compilePattern("/v1/quotes"), compilePattern("/v1/symbols"), compilePattern("/v1/reference/**"),
	}},
	{methods: []string{"POST"}, patterns: [][]string{compilePattern("/v1/orders/*/cancel"), compilePattern("/v1/quotes")}},
	{methods: []string{"GET"}, patterns: [][]string{compilePattern("/v2/list/")}},
}

func TestMatchRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, path string
		ok           bool
		allow        string
	}{
		{"GET", "/v1/quote/AAPL", true, ""},
		{"HEAD", "/v1/quote/AAPL", true, ""},
		{"POST", "/v1/quote/AAPL", false, "GET, HEAD"},
		{"GET", "/v1/quote", false, ""},
		{"GET", "/v1/quote/", false, ""},
		{"GET", "/v1/quote/AAPL/x", false, ""},
		{"GET", "/v1/quotes", true, ""},
		{"POST", "/v1/quotes", true, ""},
		{"DELETE", "/v1/quotes", false, "GET, HEAD, POST"},
		{"GET", "/v1/quotes/", false, ""},
		{"GET", "/v1/reference", false, ""},
		{"GET", "/v1/reference/", true, ""},
		{"GET", "/v1/reference/a", true, ""},
		{"GET", "/v1/reference/a/b/c", true, ""},
		{"POST", "/v1/orders/42/cancel", true, ""},
		{"POST", "/v1/orders//cancel", false, ""},
		{"GET", "/v2/list/", true, ""},
		{"GET", "/v2/list", false, ""},
		{"get", "/v1/quotes", false, "GET, HEAD, POST"},
		{"GET", "/V1/quotes", false, ""},
	}
	for _, tt := range tests {
		ok, allow := matchRoute(testRoutes, tt.method, tt.path)
		if ok != tt.ok || strings.Join(allow, ", ") != tt.allow {
			t.Errorf("matchRoute(%s %s) = %v %v, want %v %q", tt.method, tt.path, ok, allow, tt.ok, tt.allow)
		}
	}
}

// allowRE is an independent statement of testRoutes' GET patterns.
var allowRE = regexp.MustCompile(`^/v1/(quote/[^/]+|quotes|symbols|reference/.*)$|^/v2/list/$`)

// FuzzPathCheck asserts that no accepted input yields a path outside the
// allowlist, a dot segment, or an encoded separator in the URL built for
// the vendor. Seeds are in testdata/fuzz/FuzzPathCheck.
func FuzzPathCheck(f *testing.F) {
	for _, s := range []string{"/v1/quote/AAPL", "/v1/reference/a/b", "/v1/quote/%2e%2e", "/v1/quote/..%2fadmin"} {
		f.Add(s)
	}
	base, err := url.Parse("https://api.vendor.example/base")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		clean, why := checkPath(in)
		if why != "" {
			if clean != "" {
				t.Fatalf("refused %q but returned %q", in, clean)
			}
			return
		}
		ok, _ := matchRoute(testRoutes, "GET", clean)
		if !ok {
			return
		}
		if !allowRE.MatchString(clean) {
			t.Fatalf("%q accepted as %q, outside the allowlist", in, clean)
		}
		if len(in) > maxPathBytes || !strings.HasPrefix(clean, "/") {
			t.Fatalf("%q accepted as %q", in, clean)
		}
		for seg := range strings.SplitSeq(clean[1:], "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q accepted with dot segment: %q", in, clean)
			}
		}
		if strings.ContainsAny(clean, "\\%;\x00\r\n") {
			t.Fatalf("%q accepted with a forbidden character: %q", in, clean)
		}
		if c := path.Clean(clean); c != strings.TrimSuffix(clean, "/") && clean != "/" {
			t.Fatalf("%q accepted as %q, which cleans to %q", in, clean, c)
		}
		// The URL the vendor receives.
		out := &url.URL{Scheme: base.Scheme, Host: base.Host, Path: base.Path + clean}
		wire := out.RequestURI()
		lw := strings.ToLower(wire)
		for _, bad := range []string{"%2f", "%5c", "%2e", "%25", "/../", "/./", "\\", "?", "#"} {
			if strings.Contains(lw, bad) {
				t.Fatalf("%q accepted; vendor request URI %q contains %q", in, wire, bad)
			}
		}
		back, err := url.ParseRequestURI(wire)
		if err != nil || back.Path != "/base"+clean {
			t.Fatalf("%q: vendor URI %q parses back to %q (%v)", in, wire, back.Path, err)
		}
	})
}
