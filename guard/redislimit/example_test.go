package redislimit_test

import (
	"context"
	"fmt"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/guard"
	"github.com/tickgate/tickgate/guard/redislimit"
)

func ExampleNew() {
	b, err := redislimit.New(redislimit.Config{URL: "redis://127.0.0.1:6379/0", Prefix: "tickgate:ratelimit:"})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	l, _ := config.ParseLimit("20/1s,1000/1h")
	// Every replica building this limiter shares its buckets.
	lim, err := guard.NewLimiterWith(l, guard.LimiterOptions{Name: "ip", Stores: b.Store})
	if err != nil {
		panic(err)
	}
	defer lim.Close()
	res, err := lim.Take(context.Background(), "198.51.100.7")
	if err != nil {
		panic(err) // only for a fail-closed limiter while Redis is down
	}
	fmt.Println(res.Allowed)
}
