package redisstore

import "github.com/redis/go-redis/v9"

// Every script touches exactly one key, so the Store also works on Redis
// Cluster (no CROSSSLOT errors). A record and its user's index are
// therefore updated by separate calls; see index.go for why a lagging
// index is safe.

// createSrc stores a record unless its key exists (SET NX, for a hash).
// KEYS[1] record; ARGV user, created, last seen, expires, ttl (ms),
// roles (comma separated; the field is left out when there are none).
// Returns 1 when stored, 0 when the key exists.
const createSrc = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'u', ARGV[1], 'c', ARGV[2], 'l', ARGV[3], 'e', ARGV[4])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'r', ARGV[6]) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`

// touchSrc updates LastSeen and the time to live of an existing record
// and never creates one. KEYS[1] record; ARGV last seen, ttl (ms).
// Returns 1 when updated, 0 when the key is absent.
const touchSrc = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'l', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`

// deleteSrc deletes a record and returns its user, so the caller can
// update the user's index; nil when there was nothing to delete or the
// record had no user. KEYS[1] record.
const deleteSrc = `
local u = redis.call('HGET', KEYS[1], 'u')
if redis.call('DEL', KEYS[1]) == 0 then return false end
return u
`

// deleteIfOwnerSrc deletes a record only if it belongs to ARGV[1], so a
// stale index entry can never delete another user's session. KEYS[1]
// record. Returns 1 when deleted, 0 when there is no such key, -1 when it
// holds another user's record or something else (see the entry states in
// index.go).
const deleteIfOwnerSrc = `
local t = redis.call('TYPE', KEYS[1]).ok
if t == 'none' then return 0 end
if t ~= 'hash' or redis.call('HGET', KEYS[1], 'u') ~= ARGV[1] then return -1 end
return redis.call('DEL', KEYS[1])
`

// indexAddSrc adds a record key to its user's index, a sorted set scored
// by the time (Unix ms, Redis clock) after which the record cannot exist:
// the later of its ExpiresAt and now + ttl. Entries past that time are
// pruned first, so the set stays as small as the user's live sessions,
// and the set's own TTL is raised to cover its longest-lived member.
// KEYS[1] index; ARGV record key, expires at (ms), ttl (ms).
const indexAddSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = math.max(tonumber(ARGV[2]), now + tonumber(ARGV[3]))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], string.format('%.0f', deadline), ARGV[1])
local keep = deadline - now
if redis.call('PTTL', KEYS[1]) < keep then
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', keep))
end
return 1
`

// scripts holds the Store's Lua scripts. Script.Run sends EVALSHA and
// falls back to EVAL when Redis answers NOSCRIPT (after a restart or
// SCRIPT FLUSH).
type scripts struct {
	create, touch, del, deleteIfOwner, indexAdd *redis.Script
}

func newScripts() scripts {
	return scripts{
		create:        redis.NewScript(createSrc),
		touch:         redis.NewScript(touchSrc),
		del:           redis.NewScript(deleteSrc),
		deleteIfOwner: redis.NewScript(deleteIfOwnerSrc),
		indexAdd:      redis.NewScript(indexAddSrc),
	}
}
