// Package redislimit is a Redis backend for go-limiter's limiter.Store,
// so that rate limits hold across every tickgate replica that shares the
// Redis server. It is the only guard package importing go-redis.
//
// # Buckets
//
// Each bucket is one Redis hash updated by one Lua script, so a take is
// atomic however many replicas race for the last token, and every script
// touches a single key (Redis Cluster works). Windows are fixed and
// anchored at a bucket's first take, as in go-limiter's memorystore, and
// are timed by the Redis server's clock (TIME), so replicas with skewed
// clocks agree; the reset time handed back is converted to the local
// clock. Keys are Prefix + limiter name + ":" + rate + ":" + a hash of
// the bucket key: client addresses are not stored in Redis. Buckets
// expire one window after their window ends.
//
// # Failures
//
// Every call is bounded by Config.OpTimeout (100ms by default) and
// returns the Redis error. What a request then gets is the limiter's
// failure policy (guard.FailOpen or guard.FailClosed), not this
// package's decision.
//
// # Example
//
//	b, err := redislimit.New(redislimit.Config{URL: settings.RedisURL})
//	if err != nil { ... }
//	defer b.Close()
//	lim, err := guard.NewLimiterWith(limit, guard.LimiterOptions{Name: "ip", Stores: b.Store})
package redislimit
