// Package redisstore is the Redis session.Store
// (TICKGATE_SESSION_STORE=redis, TICKGATE_REDIS_URL): sessions survive a
// restart and are shared by every replica pointed at the same Redis
// server and Prefix. It also keeps a per-user index for "log out
// everywhere" and carries revocation events between replicas.
//
// # Keys and values
//
// A record lives in a Redis hash under Prefix + Record.Key, the hex
// SHA-256 of the session id; the id itself never reaches Redis. The hash
// has four short fields: u (user), and c, l, e (CreatedAt, LastSeen,
// ExpiresAt) as decimal Unix seconds exact to the nanosecond, so redis-cli
// shows something readable. Its Redis TTL is the ttl given to Create or
// Touch, in milliseconds (PEXPIRE), which the Manager sets to the time
// left until the nearer of the idle and absolute deadlines: Redis itself
// forgets a session once it can no longer be used.
//
// Create is "SET NX" for a hash: a Lua script that writes the record
// only if the key is absent (else session.ErrExists). Touch is a script
// that rewrites LastSeen and the TTL only if the record exists, so it
// never resurrects an expired or deleted session (session.ErrNotFound).
// Scripts are sent with EVALSHA and fall back to EVAL after NOSCRIPT.
// Every script touches a single key, so Redis Cluster works too. Keys
// containing ':' are refused (session.ErrInvalidArgument): that
// character separates the store's own sub-namespaces.
//
// # Per-user index
//
// Prefix + "user:" + user is a sorted set of the user's record keys,
// scored by the time after which each record cannot exist (the later of
// its ExpiresAt and its first TTL). Create prunes entries past that time
// and raises the set's own TTL to cover its longest-lived member; Delete
// removes the entry. UserKeys lists a user's live sessions and DeleteUser
// deletes them all, returning their keys. Both check the owner of every
// record before acting, so a stale entry is harmless.
//
// # Failures
//
// Each call is bounded by Config.OpTimeout (500ms by default), so while
// Redis is down or stalled every method returns an error quickly (never
// session.ErrNotFound, which would log users out) and the Manager answers
// 503. Error replies about the server rather than a key (LOADING while
// Redis restarts, READONLY, OOM) are failures too. Nothing falls back to
// memory, and nothing needs restarting: the go-redis pool reconnects when
// Redis returns. A client made from Config.URL honours context deadlines
// and gives up a connection attempt after OpTimeout (at least 1s, at most
// 5s), so Close is quick even while packets are dropped; a client passed
// as Config.Client should be set up alike. After Close every method
// returns session.ErrClosed. Error texts name the operation, never a key.
//
// # Revocation events
//
// Publish announces an ended session's key on the channel
// Prefix + "revoked"; Subscribe delivers the keys announced by any replica
// to a callback, so each replica can close that session's WebSockets at
// once. Pub/sub is at-most-once: events sent while a replica is cut off
// are lost, and the Manager's periodic check of watched sessions catches
// those.
//
// # Requirements
//
// Redis 6 or later (tested with 7.0), or a compatible server with Lua
// scripting and pub/sub. Pub/sub channels ignore the database number, so
// deployments sharing a server need distinct prefixes.
//
// # Example
//
//	st, err := redisstore.New(redisstore.Config{URL: "redis://127.0.0.1:6379/0", Logger: logger})
//	if err != nil {
//		return err
//	}
//	defer st.Close()
//	mgr, err := session.NewManager(session.Config{Store: st, ...})
package redisstore
