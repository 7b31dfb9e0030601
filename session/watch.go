package session

import (
	"context"
	"errors"
	"sync"
	"time"
)

// watchEntry is the set of watchers of one session, with the last record
// seen for it (so Touch can throttle without a store read, and a store
// outage still ends sessions whose deadlines pass).
type watchEntry struct {
	subs  map[*watcher]struct{}
	rec   Record
	known bool
}

type watcher struct{ ended chan struct{} }

// Watch returns a channel that is closed when the session stored under key
// ends: at once on logout, Revoke, RevokeUser or an expiry noticed by this
// Manager, or by another replica that announces it (Config.Events); at the
// latest at the next periodic check (CheckInterval), which reads the store
// and so also catches announcements that were lost. One goroutine checks all watches, reading each watched
// session once per interval however many watchers it has. Call stop when
// the connection ends to release the watch; stop is safe to call twice.
//
// While the store fails, a check falls back to the deadlines of the last
// record it read. After Close, Watch returns an already closed channel.
func (m *Manager) Watch(key string) (ended <-chan struct{}, stop func()) {
	w := &watcher{ended: make(chan struct{})}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		close(w.ended)
		return w.ended, func() {}
	}
	e := m.watches[key]
	if e == nil {
		e = &watchEntry{subs: map[*watcher]struct{}{}}
		m.watches[key] = e
	}
	e.subs[w] = struct{}{}
	m.mu.Unlock()

	var once sync.Once
	return w.ended, func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if e := m.watches[key]; e != nil {
				if _, ok := e.subs[w]; ok {
					delete(e.subs, w)
					if len(e.subs) == 0 {
						delete(m.watches, key)
					}
				}
			}
		})
	}
}

// end fires and forgets every watcher of key and returns how many there
// were.
func (m *Manager) end(key string) int {
	m.mu.Lock()
	e := m.watches[key]
	delete(m.watches, key)
	m.mu.Unlock()
	if e == nil {
		return 0
	}
	for w := range e.subs {
		close(w.ended)
	}
	return len(e.subs)
}

// noteRecord remembers rec for a watched session.
func (m *Manager) noteRecord(rec Record) {
	m.mu.Lock()
	if e := m.watches[rec.Key]; e != nil && (!e.known || !rec.LastSeen.Before(e.rec.LastSeen)) {
		e.rec, e.known = rec, true
	}
	m.mu.Unlock()
}

// cachedRecord returns the remembered record of a watched session.
func (m *Manager) cachedRecord(key string) (Record, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.watches[key]; e != nil && e.known {
		return e.rec, true
	}
	return Record{}, false
}

// run checks watched sessions every CheckInterval until ctx is done.
func (m *Manager) run(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(m.checkInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.checkWatches(ctx)
		}
	}
}

// checkWatches reads every watched session and ends those that are gone
// or expired.
func (m *Manager) checkWatches(ctx context.Context) {
	m.mu.Lock()
	if len(m.watches) == 0 {
		m.mu.Unlock()
		return
	}
	keys := make([]string, 0, len(m.watches))
	cached := make(map[string]Record, len(m.watches))
	for k, e := range m.watches {
		keys = append(keys, k)
		if e.known {
			cached[k] = e.rec
		}
	}
	m.mu.Unlock()

	parent := ctx
	ctx, cancel := context.WithTimeout(parent, max(m.checkInterval, storeOpTimeout))
	defer cancel()
	recs, failed := m.readMany(ctx, keys)
	if parent.Err() != nil {
		return // closing
	}
	now := m.now()
	for _, k := range keys {
		rec, ok := recs[k]
		if failed[k] {
			if rec, ok = cached[k]; !ok {
				continue // nothing known yet; try again next tick
			}
		} else if !ok {
			m.end(k) // logged out, revoked or expired elsewhere
			continue
		}
		if reason := m.expired(rec, now); reason != "" {
			m.expire(ctx, rec, reason, !failed[k])
			continue
		}
		if !failed[k] {
			m.noteRecord(rec)
		}
	}
}

// readMany reads keys from the store, in one round trip when it can. It
// returns the records found and the keys whose read failed.
func (m *Manager) readMany(ctx context.Context, keys []string) (map[string]Record, map[string]bool) {
	failed := map[string]bool{}
	if mg, ok := m.store.(MultiGetter); ok {
		recs, err := mg.GetMany(ctx, keys)
		if err != nil {
			m.log.WarnContext(ctx, "session: check watched sessions", "sessions", len(keys), "err", err)
			for _, k := range keys {
				failed[k] = true
			}
			return nil, failed
		}
		return recs, failed
	}
	recs := make(map[string]Record, len(keys))
	var firstErr error
	for _, k := range keys {
		rec, err := m.store.Get(ctx, k)
		switch {
		case err == nil:
			recs[k] = rec
		case errors.Is(err, ErrNotFound):
		default:
			failed[k] = true
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if firstErr != nil {
		m.log.WarnContext(ctx, "session: check watched sessions", "failed", len(failed), "err", firstErr)
	}
	return recs, failed
}
