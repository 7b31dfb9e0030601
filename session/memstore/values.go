package memstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tickgate/tickgate/session"
)

// SetValue implements session.Values.
func (s *Store) SetValue(_ context.Context, key string, val []byte, ttl time.Duration) error {
	if !session.ValidValue(key, val, ttl) {
		return fmt.Errorf("memstore: set value: %w", session.ErrInvalidArgument)
	}
	e := valueEntry{val: slices.Clone(val)}
	if e.val == nil {
		e.val = []byte{}
	}
	if ttl > 0 {
		e.deadline = s.now().Add(ttl)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return session.ErrClosed
	}
	s.values[key] = e
	return nil
}

// GetValue implements session.Values.
func (s *Store) GetValue(_ context.Context, key string) ([]byte, error) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, session.ErrClosed
	}
	e, ok := s.values[key]
	if !ok || (!e.deadline.IsZero() && !now.Before(e.deadline)) {
		return nil, session.ErrNotFound
	}
	return slices.Clone(e.val), nil
}

// TakeValue implements session.Values.
func (s *Store) TakeValue(_ context.Context, key string) ([]byte, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, session.ErrClosed
	}
	e, ok := s.values[key]
	if !ok {
		return nil, session.ErrNotFound
	}
	delete(s.values, key)
	if !e.deadline.IsZero() && !now.Before(e.deadline) {
		return nil, session.ErrNotFound
	}
	return e.val, nil
}

// DeleteValue implements session.Values.
func (s *Store) DeleteValue(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return session.ErrClosed
	}
	delete(s.values, key)
	return nil
}
