package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickgate/tickgate/session"
)

// batchSize caps the keys read or deleted in one pipeline, so one round
// trip stays small and OpTimeout applies to a bounded amount of work.
const batchSize = 256

// Create implements session.Store. The record goes into a Redis hash under
// Prefix + rec.Key with a time to live of ttl (PEXPIRE, rounded up to the
// millisecond); rec.Key is also added to the index of rec.User (when not
// empty) before the record is written. Keys containing ':' are refused
// with session.ErrInvalidArgument.
func (s *Store) Create(ctx context.Context, rec session.Record, ttl time.Duration) error {
	const op = "create"
	if !validKey(rec.Key) || ttl <= 0 {
		return invalid(op)
	}
	if s.closed.Load() {
		return errClosed(op)
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	ms := millis(ttl)
	if rec.User != "" {
		// Index first: an index entry without its record is harmless
		// (readers check the owner), a record missing from its index
		// would survive DeleteUser.
		err := s.scripts.indexAdd.Run(ctx, s.client, []string{s.userKey(rec.User)},
			rec.Key, indexMillis(rec.ExpiresAt), ms).Err()
		if err != nil {
			return fail(op, err)
		}
	}
	n, err := s.scripts.create.Run(ctx, s.client, []string{s.recordKey(rec.Key)},
		rec.User, formatTime(rec.CreatedAt), formatTime(rec.LastSeen), formatTime(rec.ExpiresAt), ms, joinRoles(rec.Roles)).Int()
	switch {
	case err != nil:
		return fail(op, err)
	case n == 0:
		return session.ErrExists
	}
	return nil
}

// Get implements session.Store with one HMGET.
func (s *Store) Get(ctx context.Context, key string) (session.Record, error) {
	const op = "get"
	if s.closed.Load() {
		return session.Record{}, errClosed(op)
	}
	if !validKey(key) {
		return session.Record{}, session.ErrNotFound
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	vals, err := s.client.HMGet(ctx, s.recordKey(key), recordFields...).Result()
	if err != nil {
		return session.Record{}, fail(op, err)
	}
	rec, found, err := decodeRecord(key, vals)
	switch {
	case err != nil:
		return session.Record{}, fail(op, err)
	case !found:
		return session.Record{}, session.ErrNotFound
	}
	return rec, nil
}

// GetMany implements session.MultiGetter: one pipeline of HMGETs per
// batchSize keys. Keys holding something other than a record this package
// wrote are left out (and logged), like absent ones.
func (s *Store) GetMany(ctx context.Context, keys []string) (map[string]session.Record, error) {
	const op = "get many"
	if s.closed.Load() {
		return nil, errClosed(op)
	}
	out := make(map[string]session.Record, len(keys))
	for start := 0; start < len(keys); start += batchSize {
		if err := s.getBatch(ctx, keys[start:min(start+batchSize, len(keys))], out); err != nil {
			return nil, fail(op, err)
		}
	}
	return out, nil
}

func (s *Store) getBatch(ctx context.Context, keys []string, out map[string]session.Record) error {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	valid := make([]string, 0, len(keys))
	for _, k := range keys {
		if validKey(k) {
			valid = append(valid, k)
		}
	}
	if len(valid) == 0 {
		return nil
	}
	cmds := make([]*redis.SliceCmd, len(valid))
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range valid {
			cmds[i] = p.HMGet(ctx, s.recordKey(k), recordFields...)
		}
		return nil
	})
	if err != nil && !isWrongType(err) {
		return err
	}
	malformed := 0
	for i, cmd := range cmds {
		vals, err := cmd.Result()
		if err != nil {
			if !isWrongType(err) {
				return err
			}
			malformed++ // not one of our records
			continue
		}
		rec, found, err := decodeRecord(valid[i], vals)
		if err != nil {
			malformed++
			continue
		}
		if found {
			out[rec.Key] = rec
		}
	}
	if malformed > 0 {
		s.log.Warn("redisstore: get many: left out keys that do not hold a session record", "count", malformed)
	}
	return nil
}

// isWrongType reports whether err is Redis's WRONGTYPE reply: the key
// holds something other than a hash, so it is not one of our records.
// Other error replies (LOADING, READONLY, OOM, CLUSTERDOWN...) concern the
// server, not the key, and must count as failures: treating them as
// absent records would end every watched session while Redis restarts.
func isWrongType(err error) bool { return redis.HasErrorPrefix(err, "WRONGTYPE") }

// Touch implements session.Store with one script that sets LastSeen and
// the time to live only if the record exists.
func (s *Store) Touch(ctx context.Context, key string, lastSeen time.Time, ttl time.Duration) error {
	const op = "touch"
	if !validKey(key) || ttl <= 0 {
		return invalid(op)
	}
	if s.closed.Load() {
		return errClosed(op)
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	n, err := s.scripts.touch.Run(ctx, s.client, []string{s.recordKey(key)}, formatTime(lastSeen), millis(ttl)).Int()
	switch {
	case err != nil:
		return fail(op, err)
	case n == 0:
		return session.ErrNotFound
	}
	return nil
}

// Delete implements session.Store: it deletes the record and then its
// entry in the user's index. Once the record is gone Delete succeeds; a
// failure to update the index is only logged, as the entry is stale and
// expires with the index.
func (s *Store) Delete(ctx context.Context, key string) error {
	const op = "delete"
	if s.closed.Load() {
		return errClosed(op)
	}
	if !validKey(key) {
		return nil // no record can exist under it
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	user, err := s.scripts.del.Run(ctx, s.client, []string{s.recordKey(key)}).Text()
	switch {
	case errors.Is(err, redis.Nil):
		return nil
	case err != nil:
		return fail(op, err)
	case user == "":
		return nil
	}
	if err := s.client.ZRem(ctx, s.userKey(user), key).Err(); err != nil {
		s.log.Warn("redisstore: delete: could not remove the session from its user's index", "user", user, "err", err)
	}
	return nil
}
