package awssm_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/secrets/awssm"
	"github.com/tickgate/tickgate/secrets/awssm/smtest"
)

// ExampleNew loads vendor keys from one JSON secret through a
// secrets.Cache, then picks up a rotation. In production LoadOptions is
// left empty and the SDK's default chain finds region, credentials and
// any AWS_ENDPOINT_URL_SECRETS_MANAGER; here a local fake stands in.
func ExampleNew() {
	sm := smtest.Start()
	defer sm.Close()
	sm.Put("tickgate/prod", `{"VENDOR_KEY":"key-1","TICKGATE_DEMO_KEY":"demo-1"}`)

	ctx := context.Background()
	p, err := awssm.New(ctx, awssm.Config{
		SecretID:    "tickgate/prod", // TICKGATE_AWS_SECRET_ID
		LoadOptions: sm.LoadOptions(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	cache := secrets.NewCache(p, secrets.CacheConfig{})
	if err := cache.Load(ctx, "VENDOR_KEY", "TICKGATE_DEMO_KEY"); err != nil {
		fmt.Println(err)
		return
	}
	v, _ := cache.Get(ctx, "VENDOR_KEY")
	fmt.Println("value:", v, "AWS calls:", sm.Calls())

	sm.Put("tickgate/prod", `{"VENDOR_KEY":"key-2","TICKGATE_DEMO_KEY":"demo-1"}`)
	cache.RefreshAll(ctx)
	v, _ = cache.Get(ctx, "VENDOR_KEY")
	fmt.Println("rotated:", v.Reveal() == "key-2", "AWS calls:", sm.Calls())

	err = cache.Load(ctx, "OTHER_KEY")
	fmt.Println(err, errors.Is(err, secrets.ErrNotFound))
	// Output:
	// value: [redacted] AWS calls: 1
	// rotated: true AWS calls: 2
	// secret OTHER_KEY: AWS secret "tickgate/prod" field "OTHER_KEY": not in the JSON object (it has 2 fields) true
}

// ExampleConfig_perKey reads one name from a secret of its own: the whole
// secret string, or one field of a JSON secret with "id#field".
func ExampleConfig_perKey() {
	sm := smtest.Start()
	defer sm.Close()
	sm.Put("vendor/alpha", "alpha-key\n")
	sm.Put("vendor/beta", `{"api_key":"beta-key"}`)

	ctx := context.Background()
	p, err := awssm.New(ctx, awssm.Config{
		PerKey: map[string]string{
			"ALPHA_KEY": "vendor/alpha",
			"BETA_KEY":  "vendor/beta#api_key",
		},
		LoadOptions: sm.LoadOptions(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	for _, name := range []string{"ALPHA_KEY", "BETA_KEY"} {
		v, err := p.Get(ctx, name)
		fmt.Println(name, v.Reveal(), err)
	}
	// Output:
	// ALPHA_KEY alpha-key <nil>
	// BETA_KEY beta-key <nil>
}
