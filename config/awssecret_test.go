package config

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestAWSSecretReferences(t *testing.T) {
	t.Parallel()
	const base = `upstreams:
  a:
    base_url: https://a.example
    keys:
      - {secret: A_ID, placement: "header:APCA-API-KEY-ID", aws_secret: "vendor/a#id"}
      - {secret: A_SECRET, placement: "header:APCA-API-SECRET-KEY", aws_secret: "vendor/a#secret"}
    routes: [{paths: ["/v1/x"]}]
  b:
    base_url: https://b.example
    key: {secret: B_KEY, placement: bearer}
    routes: [{paths: ["/v1/x"]}]
`
	f, err := Parse([]byte(base), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if got := f.SecretNames(); !slices.Equal(got, []string{"A_ID", "A_SECRET", "B_KEY"}) {
		t.Errorf("SecretNames = %v (every key of keys: counts)", got)
	}
	refs := f.AWSSecrets()
	if !slices.Equal(slices.Sorted(maps.Keys(refs)), []string{"A_ID", "A_SECRET"}) || refs["A_SECRET"] != "vendor/a#secret" {
		t.Errorf("AWSSecrets = %v", refs)
	}

	bad := []struct{ name, ref, want string }{
		{"empty field", `"vendor/b#"`, `upstreams.b.key.aws_secret: "vendor/b#" needs one field name after #`},
		{"two fields", `"vendor/b#x#y"`, "needs one field name after #"},
		{"no id", `"#field"`, `is not "id" or "id#field"`},
		{"spaces", `" vendor/b"`, `is not "id" or "id#field"`},
		{"control", `"vendor/b\n"`, `is not "id" or "id#field"`},
	}
	for _, tc := range bad {
		doc := strings.Replace(base, "{secret: B_KEY, placement: bearer}", "{secret: B_KEY, placement: bearer, aws_secret: "+tc.ref+"}", 1)
		if _, err := Parse([]byte(doc), func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}

	// One secret name read from two places is refused, naming both.
	clash := base + `feeds:
  f:
    url: wss://feed.example/ws
    adapter: {preset: marketsim}
    key: {secret: A_ID, aws_secret: "vendor/other#id"}
`
	_, err = Parse([]byte(clash), func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), `feeds.f.key.aws_secret: secret A_ID is read from "vendor/other#id" here and from "vendor/a#id" at upstreams.a.keys[0]`) {
		t.Errorf("clash: %v", err)
	}
}
