package redislimit_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/tickgate/tickgate/guard"
)

// BenchmarkLimiterTake is one rate-limit check of a request on a Redis
// store with burst and sustained windows (two scripts per take).
func BenchmarkLimiterTake(b *testing.B) {
	lim, err := guard.NewLimiterWith(mustLimit(b, "1000000/1s,100000000/1h"), guard.LimiterOptions{Name: "bench", Stores: newBackend(b, testPrefix(b)).Store})
	if err != nil {
		b.Fatal(err)
	}
	defer lim.Close()
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := lim.Take(ctx, "ip:198.51.100."+strconv.Itoa(i%200)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if _, err := lim.Take(ctx, "ip:198.51.100."+strconv.Itoa(i%200)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
