package session

// Internals the external tests look at.

// KeyOf exposes keyOf: the store key of a cookie value.
var KeyOf = keyOf

// CheckPHC parses a PHC string and, when valid, returns it re-encoded.
func CheckPHC(s string) (string, error) {
	h, err := parsePHC(s)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// WatchedKeys returns how many sessions have watchers.
func (m *Manager) WatchedKeys() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.watches)
}

// DummyParams are the argon2id parameters an unknown user's Verify spends.
func (u *Users) DummyParams() Params {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return u.dummy.p
}
