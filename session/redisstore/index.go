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
// calls (one key per script keeps Redis Cluster usable), so the index may
// briefly hold a key whose record is absent or, after a failed Create,
// belongs to someone else. Such stale entries are tolerated: UserKeys and
// DeleteUser check each record's owner, never act on another user's
// record, and drop stale entries as they go.

// UserKeys returns the keys of user's live sessions, in the order of their
// deadlines, and removes stale entries from the user's index. A user with
// no sessions gets an empty slice; an empty user name is
// session.ErrInvalidArgument.
func (s *Store) UserKeys(ctx context.Context, user string) ([]string, error) {
	const op = "user keys"
	if user == "" {
		return nil, invalid(op)
	}
	if s.closed.Load() {
		return nil, errClosed(op)
	}
	members, err := s.indexMembers(ctx, user)
	if err != nil {
		return nil, fail(op, err)
	}
	keys := make([]string, 0, len(members))
	var stale []any
	for start := 0; start < len(members); start += batchSize {
		batch := members[start:min(start+batchSize, len(members))]
		owned, err := s.owners(ctx, user, batch)
		if err != nil {
			return nil, fail(op, err)
		}
		for i, k := range batch {
			if owned[i] {
				keys = append(keys, k)
			} else {
				stale = append(stale, k)
			}
		}
	}
	s.dropFromIndex(ctx, op, user, stale)
	return keys, nil
}

// DeleteUser deletes every session of user ("log out everywhere") and
// returns the keys it deleted, so the caller can announce them (Publish)
// and end their connections. Records of other users are never deleted,
// whatever the index says. A session created while DeleteUser runs may
// survive it. On an error, the keys deleted so far are returned with it.
// An empty user name is session.ErrInvalidArgument.
func (s *Store) DeleteUser(ctx context.Context, user string) ([]string, error) {
	const op = "delete user"
	if user == "" {
		return nil, invalid(op)
	}
	if s.closed.Load() {
		return nil, errClosed(op)
	}
	members, err := s.indexMembers(ctx, user)
	if err != nil {
		return nil, fail(op, err)
	}
	deleted := make([]string, 0, len(members))
	for start := 0; start < len(members); start += batchSize {
		batch := members[start:min(start+batchSize, len(members))]
		gone, err := s.deleteOwned(ctx, user, batch)
		deleted = append(deleted, gone...)
		if err != nil {
			return deleted, fail(op, err)
		}
	}
	processed := make([]any, len(members))
	for i, k := range members {
		processed[i] = k
	}
	// Only the members handled here: a session added meanwhile keeps its
	// entry.
	s.dropFromIndex(ctx, op, user, processed)
	return deleted, nil
}

// indexMembers returns the record keys in user's index that can name a
// record.
func (s *Store) indexMembers(ctx context.Context, user string) ([]string, error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	members, err := s.client.ZRange(ctx, s.userKey(user), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	valid := members[:0]
	for _, k := range members {
		if validKey(k) {
			valid = append(valid, k)
		}
	}
	return valid, nil
}

// owners reports, for each key, whether it holds a record of user.
func (s *Store) owners(ctx context.Context, user string, keys []string) ([]bool, error) {
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
	owned := make([]bool, len(keys))
	for i, cmd := range cmds {
		u, err := cmd.Result()
		switch {
		case err == nil:
			owned[i] = u == user
		case errors.Is(err, redis.Nil) || isWrongType(err):
			// absent, or not a record: stale
		default:
			return nil, err
		}
	}
	return owned, nil
}

// deleteOwned deletes those of keys that hold a record of user and
// returns them. The script is sent with EVAL: a pipeline cannot fall back
// from EVALSHA on NOSCRIPT, and this path is rare.
func (s *Store) deleteOwned(ctx context.Context, user string, keys []string) ([]string, error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	cmds := make([]*redis.Cmd, len(keys))
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = s.scripts.deleteIfOwner.Eval(ctx, p, []string{s.recordKey(k)}, user)
		}
		return nil
	})
	var deleted []string
	for i, cmd := range cmds {
		if n, err := cmd.Int(); err == nil && n == 1 {
			deleted = append(deleted, keys[i])
		}
	}
	if err != nil {
		return deleted, err
	}
	return deleted, nil
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
