package redislimit

import "github.com/redis/go-redis/v9"

// A bucket is one Redis hash, so every script touches exactly one key and
// the store works on Redis Cluster. Fields: m (tokens per window), i
// (window length, ms), s (start of the first window, Unix ms on the Redis
// clock), a (tokens left in window k), k (index of the current window).
// Windows are fixed, anchored at the bucket's first take, like
// go-limiter's memorystore: window k runs from s + k*i to s + (k+1)*i and
// starts with m tokens. Times come from the Redis server's clock (TIME),
// so replicas with skewed clocks still agree; scripts return durations
// (ms until the window ends), which the caller adds to its own clock.
// Milliseconds keep every number exact in Lua's doubles.
//
// A bucket expires one window after its current window ends: by then a
// fresh bucket would be full anyway. (Set's custom limit is forgotten
// then too, as memorystore's sweeper forgets it.)

// loadSrc is shared: it reads KEYS[1] into max, iv, start, avail, tick,
// making a full bucket with the defaults ARGV[1] tokens per ARGV[2] ms
// when the key is absent or unreadable, and moves it to the window that
// contains now.
const loadSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'm', 'i', 's', 'a', 'k')
local max, iv, start, avail, tick = tonumber(b[1]), tonumber(b[2]), tonumber(b[3]), tonumber(b[4]), tonumber(b[5])
local fresh = false
if not (max and iv and start and avail and tick) or iv <= 0 then
  max, iv, start, avail, tick = tonumber(ARGV[1]), tonumber(ARGV[2]), now, tonumber(ARGV[1]), 0
  fresh = true
end
local cur = math.floor((now - start) / iv)
if cur > tick then
  avail, tick = max, cur
end
local reset = start + (tick + 1) * iv
`

// saveSrc writes the bucket back with its expiry.
const saveSrc = `
redis.call('HSET', KEYS[1], 'm', max, 'i', iv, 's', start, 'a', avail, 'k', tick)
redis.call('PEXPIRE', KEYS[1], reset - now + iv)
`

// takeSrc spends one token. ARGV default tokens, default interval (ms).
// Returns {tokens, remaining, ms until the window ends, 1 if taken}.
const takeSrc = loadSrc + `
local ok = 0
if avail > 0 then
  avail = avail - 1
  ok = 1
end
` + saveSrc + `
return {max, avail, reset - now, ok}
`

// getSrc reads a bucket without changing it. Returns {0, 0} for none.
const getSrc = loadSrc + `
if fresh then return {0, 0} end
return {max, avail}
`

// setSrc replaces the bucket with a full one of ARGV[1] tokens per
// ARGV[2] ms, starting now.
const setSrc = loadSrc + `
max, iv, start, avail, tick = tonumber(ARGV[1]), tonumber(ARGV[2]), now, tonumber(ARGV[1]), 0
reset = now + iv
` + saveSrc + `
return 1
`

// burstSrc adds ARGV[3] tokens to the current window (a new bucket with
// the defaults ARGV[1], ARGV[2] when there is none).
const burstSrc = loadSrc + `
avail = avail + tonumber(ARGV[3])
` + saveSrc + `
return 1
`

type scripts struct {
	take, get, set, burst *redis.Script
}

func newScripts() scripts {
	return scripts{
		take:  redis.NewScript(takeSrc),
		get:   redis.NewScript(getSrc),
		set:   redis.NewScript(setSrc),
		burst: redis.NewScript(burstSrc),
	}
}
