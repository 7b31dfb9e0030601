package redisstore

import (
	"context"
	"errors"

	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickgate/tickgate/session"
)

var _ session.Values = (*Store)(nil)

// valueKey is the Redis key of an app value: its own namespace, apart
// from records (whose keys never hold ':') and user indexes.
func (s *Store) valueKey(key string) string { return s.prefix + "val:" + key }

// SetValue implements session.Values with one SET (PX when ttl > 0).
func (s *Store) SetValue(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	const op = "set value"
	if !session.ValidValue(key, val, ttl) {
		return invalid(op)
	}
	if s.closed.Load() {
		return errClosed(op)
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	var exp time.Duration
	if ttl > 0 {
		exp = time.Duration(millis(ttl)) * time.Millisecond
	}
	if err := s.client.Set(ctx, s.valueKey(key), val, exp).Err(); err != nil {
		return fail(op, err)
	}
	return nil
}

// GetValue implements session.Values with one GET.
func (s *Store) GetValue(ctx context.Context, key string) ([]byte, error) {
	return s.readValue(ctx, "get value", key, false)
}

// TakeValue implements session.Values with one GETDEL (Redis 6.2+), which
// is atomic: of two replicas taking the same key only one gets it.
func (s *Store) TakeValue(ctx context.Context, key string) ([]byte, error) {
	return s.readValue(ctx, "take value", key, true)
}

func (s *Store) readValue(ctx context.Context, op, key string, del bool) ([]byte, error) {
	if !session.ValidValue(key, nil, 0) {
		return nil, session.ErrNotFound // no value can exist under it
	}
	if s.closed.Load() {
		return nil, errClosed(op)
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	var cmd *redis.StringCmd
	if del {
		cmd = s.client.GetDel(ctx, s.valueKey(key))
	} else {
		cmd = s.client.Get(ctx, s.valueKey(key))
	}
	b, err := cmd.Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, session.ErrNotFound
	case isWrongType(err):
		return nil, session.ErrNotFound
	case err != nil:
		return nil, fail(op, err)
	}
	return b, nil
}

// DeleteValue implements session.Values with one DEL.
func (s *Store) DeleteValue(ctx context.Context, key string) error {
	const op = "delete value"
	if s.closed.Load() {
		return errClosed(op)
	}
	if !session.ValidValue(key, nil, 0) {
		return nil
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := s.client.Del(ctx, s.valueKey(key)).Err(); err != nil {
		return fail(op, err)
	}
	return nil
}
