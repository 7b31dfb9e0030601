package redisstore

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// The per-user index is a sorted set under Prefix + "user:" + user whose
// members are record keys, scored by the time after which the record
// cannot exist (see indexAddSrc). Create adds to it before writing the
// record and Delete removes from it after deleting the record, in separate
// calls (one key per script keeps Redis Cluster usable), so an entry's
// record may be absent: not yet written, already deleted or expired, or,
// after a Create that found the key taken, someone else's.
//
// Readers check each record's owner and never act on another user's
// record. They drop entries that can never name one of the user's records
// (another user's record, a non-record value, an unusable key) but leave
// entries whose record is absent, since a concurrent Create may be about
// to write it: dropping that entry would hide the new session from every
// later DeleteUser. Absent entries go when their deadline passes (the
// next Create prunes them) or when Delete removes them.

// entry states, as returned by deleteIfOwnerSrc.
const (
	entryAbsent  = 0  // no record under the key (yet, or any more)
	entryOwned   = 1  // a record of the user
	entryForeign = -1 // another user's record, or not a record
)

// UserKeys returns the keys of user's live sessions, in the order of their
// deadlines. A user with no sessions gets an empty slice; an empty user
// name is session.ErrInvalidArgument.
func (s *Store) UserKeys(ctx context.Context, user string) ([]string, error) {
	const op = "user keys"
	if user == "" {
		return nil, invalid(op)
	}
	if s.closed.Load() {
		return nil, errClosed(op)
	}
	members, drop, err := s.indexMembers(ctx, user)
	if err != nil {
		return nil, fail(op, err)
	}
	keys := make([]string, 0, len(members))
	for start := 0; start < len(members); start += batchSize {
		batch := members[start:min(start+batchSize, len(members))]
		states, err := s.entryStates(ctx, user, batch)
		if err != nil {
			return nil, fail(op, err)
		}
		for i, k := range batch {
			switch states[i] {
			case entryOwned:
				keys = append(keys, k)
			case entryForeign:
				drop = append(drop, k)
			}
		}
	}
	s.dropFromIndex(ctx, op, user, drop)
	return keys, nil
}

// DeleteUser deletes every session of user ("log out everywhere") and
// returns the keys it deleted, so the caller can announce them (Publish)
// and end their connections. Records of other users are never deleted,
// whatever the index says. A session whose Create runs concurrently may
// survive this call, but stays in the index for the next one. On an
// error, the keys deleted so far are returned with it. An empty user name
// is session.ErrInvalidArgument.
func (s *Store) DeleteUser(ctx context.Context, user string) ([]string, error) {
	const op = "delete user"
	if user == "" {
		return nil, invalid(op)
	}
	if s.closed.Load() {
		return nil, errClosed(op)
	}
	members, drop, err := s.indexMembers(ctx, user)
	if err != nil {
		return nil, fail(op, err)
	}
	deleted := make([]string, 0, len(members))
	for start := 0; start < len(members); start += batchSize {
		batch := members[start:min(start+batchSize, len(members))]
		states, err := s.deleteOwned(ctx, user, batch)
		for i, k := range batch {
			switch states[i] {
			case entryOwned:
				deleted = append(deleted, k)
				drop = append(drop, k)
			case entryForeign:
				drop = append(drop, k)
			}
		}
		if err != nil {
			s.dropFromIndex(ctx, op, user, drop)
			return deleted, fail(op, err)
		}
	}
	s.dropFromIndex(ctx, op, user, drop)
	return deleted, nil
}

// indexMembers returns the members of user's index that can name a record,
// and, in drop, those that cannot.
func (s *Store) indexMembers(ctx context.Context, user string) (members []string, drop []any, err error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	all, err := s.client.ZRange(ctx, s.userKey(user), 0, -1).Result()
	if err != nil {
		return nil, nil, err
	}
	members = make([]string, 0, len(all))
	for _, k := range all {
		if validKey(k) {
			members = append(members, k)
		} else {
			drop = append(drop, k)
		}
	}
	return members, drop, nil
}

// entryStates reads, for each key, whether it holds a record of user
// (entryOwned), nothing (entryAbsent) or something else (entryForeign).
func (s *Store) entryStates(ctx context.Context, user string, keys []string) ([]int, error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HGet(ctx, s.recordKey(k), fieldUser)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) && !isWrongType(err) {
		return nil, err
	}
	states := make([]int, len(keys))
	for i, cmd := range cmds {
		u, err := cmd.Result()
		switch {
		case err == nil && u == user:
			states[i] = entryOwned
		case err == nil || isWrongType(err):
			states[i] = entryForeign
		case errors.Is(err, redis.Nil):
			// HGET cannot tell an absent key from a hash without the
			// field; the latter is no record of ours either way, and
			// leaving its entry is the safe choice.
			states[i] = entryAbsent
		default:
			return nil, err
		}
	}
	return states, nil
}

// deleteOwned deletes those of keys that hold a record of user and
// returns the state each key was in. The script is sent with EVAL, not
// EVALSHA: a pipeline cannot fall back on NOSCRIPT, and this path is rare.
// On an error, states still reports the deletions that were made.
func (s *Store) deleteOwned(ctx context.Context, user string, keys []string) ([]int, error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	cmds := make([]*redis.Cmd, len(keys))
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = s.scripts.deleteIfOwner.Eval(ctx, p, []string{s.recordKey(k)}, user)
		}
		return nil
	})
	states := make([]int, len(keys))
	for i, cmd := range cmds {
		if n, err := cmd.Int(); err == nil {
			states[i] = n
		}
	}
	return states, err
}

// dropFromIndex removes keys from user's index, best effort: a failure
// leaves stale entries, which are harmless, so it is logged, not returned.
func (s *Store) dropFromIndex(ctx context.Context, op, user string, keys []any) {
	if len(keys) == 0 {
		return
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := s.client.ZRem(ctx, s.userKey(user), keys...).Err(); err != nil {
		s.log.Warn("redisstore: "+op+": could not remove stale entries from the user's index", "user", user, "err", err)
	}
}
