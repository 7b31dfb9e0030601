package memstore

// IndexedUsers returns how many users the per-user index holds.
func (s *Store) IndexedUsers() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byUser)
}
