package memstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tickgate/tickgate/session"
)

// DefaultSweepInterval is how often expired records are reclaimed when
// Config.SweepInterval is zero.
const DefaultSweepInterval = time.Minute

// Config configures a Store. The zero value is ready to use.
type Config struct {
	// SweepInterval is how often expired records are removed from memory
	// (default 1m). It does not affect correctness: Get never returns an
	// expired record.
	SweepInterval time.Duration
	// Now is the clock deadlines are measured with (default time.Now).
	Now func() time.Time
}

// Store is an in-memory session.Store.
type Store struct {
	now func() time.Time

	mu      sync.RWMutex
	entries map[string]entry
	byUser  map[string]map[string]struct{} // user → keys of entries
	values  map[string]valueEntry          // session.Values
	closed  bool

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type entry struct {
	rec      session.Record
	deadline time.Time
}

type valueEntry struct {
	val      []byte
	deadline time.Time // zero: none
}

var (
	_ session.Store       = (*Store)(nil)
	_ session.MultiGetter = (*Store)(nil)
	_ session.UserIndex   = (*Store)(nil)
	_ session.Values      = (*Store)(nil)
)

// New returns a Store and starts its sweeper.
func New(cfg Config) (*Store, error) {
	if cfg.SweepInterval < 0 {
		return nil, fmt.Errorf("memstore: SweepInterval must be positive")
	}
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Store{
		now:     cfg.Now,
		entries: map[string]entry{},
		byUser:  map[string]map[string]struct{}{},
		values:  map[string]valueEntry{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go s.sweep(cfg.SweepInterval)
	return s, nil
}

func (s *Store) sweep(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.removeExpired()
		}
	}
}

func (s *Store) removeExpired() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.entries {
		if !now.Before(e.deadline) {
			s.remove(k)
		}
	}
	for k, v := range s.values {
		if !v.deadline.IsZero() && !now.Before(v.deadline) {
			delete(s.values, k)
		}
	}
}

// remove deletes the entry under key and its index entry. s.mu is held.
func (s *Store) remove(key string) {
	e, ok := s.entries[key]
	if !ok {
		return
	}
	delete(s.entries, key)
	if keys := s.byUser[e.rec.User]; keys != nil {
		delete(keys, key)
		if len(keys) == 0 {
			delete(s.byUser, e.rec.User)
		}
	}
}

// Create implements session.Store.
func (s *Store) Create(_ context.Context, rec session.Record, ttl time.Duration) error {
	if rec.Key == "" || ttl <= 0 {
		return fmt.Errorf("memstore: create: %w", session.ErrInvalidArgument)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return session.ErrClosed
	}
	if e, ok := s.entries[rec.Key]; ok && now.Before(e.deadline) {
		return session.ErrExists
	}
	s.remove(rec.Key) // an expired entry not yet swept
	// The caller's slice stays the caller's.
	rec.Roles = slices.Clip(slices.Clone(rec.Roles))
	if len(rec.Roles) == 0 {
		rec.Roles = nil
	}
	s.entries[rec.Key] = entry{rec: rec, deadline: now.Add(ttl)}
	keys := s.byUser[rec.User]
	if keys == nil {
		keys = map[string]struct{}{}
		s.byUser[rec.User] = keys
	}
	keys[rec.Key] = struct{}{}
	return nil
}

// Get implements session.Store.
func (s *Store) Get(_ context.Context, key string) (session.Record, error) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return session.Record{}, session.ErrClosed
	}
	e, ok := s.entries[key]
	if !ok || !now.Before(e.deadline) {
		return session.Record{}, session.ErrNotFound
	}
	return e.rec, nil
}

// GetMany implements session.MultiGetter.
func (s *Store) GetMany(_ context.Context, keys []string) (map[string]session.Record, error) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, session.ErrClosed
	}
	out := make(map[string]session.Record, len(keys))
	for _, k := range keys {
		if e, ok := s.entries[k]; ok && now.Before(e.deadline) {
			out[k] = e.rec
		}
	}
	return out, nil
}

// Touch implements session.Store.
func (s *Store) Touch(_ context.Context, key string, lastSeen time.Time, ttl time.Duration) error {
	if key == "" || ttl <= 0 {
		return fmt.Errorf("memstore: touch: %w", session.ErrInvalidArgument)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return session.ErrClosed
	}
	e, ok := s.entries[key]
	if !ok || !now.Before(e.deadline) {
		s.remove(key)
		return session.ErrNotFound
	}
	e.rec.LastSeen = lastSeen
	e.deadline = now.Add(ttl)
	s.entries[key] = e
	return nil
}

// Delete implements session.Store.
func (s *Store) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return session.ErrClosed
	}
	s.remove(key)
	return nil
}

// DeleteUser implements session.UserIndex: it deletes every record of
// user and returns the keys of those that were live, sorted.
func (s *Store) DeleteUser(_ context.Context, user string) ([]string, error) {
	if user == "" {
		return nil, fmt.Errorf("memstore: delete user: %w", session.ErrInvalidArgument)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, session.ErrClosed
	}
	deleted := []string{}
	for k := range s.byUser[user] {
		if now.Before(s.entries[k].deadline) {
			deleted = append(deleted, k)
		}
		delete(s.entries, k)
	}
	delete(s.byUser, user)
	slices.Sort(deleted)
	return deleted, nil
}

// Ping implements session.Store.
func (s *Store) Ping(context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return session.ErrClosed
	}
	return nil
}

// Len returns the number of records held, expired ones not yet swept
// included.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entries)
}

// Close stops the sweeper, waits for it and drops every record. It is safe
// to call twice.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.mu.Lock()
		s.closed = true
		s.entries = nil
		s.byUser = nil
		s.values = nil
		s.mu.Unlock()
	})
	return nil
}
