package secrets

import (
	"log/slog"
	"sort"
	"time"
)

// Versioned is implemented by providers that know which version of a
// secret they returned and when it was created (AWS Secrets Manager).
// Providers without versions (the environment) report nothing, and their
// keys have no age.
type Versioned interface {
	Version(name string) (id string, created time.Time, ok bool)
}

// Version identifies the version of a secret the cache holds. ID is the
// provider's version id, never the value.
type Version struct {
	Name    string
	ID      string
	Created time.Time
}

// Version returns the version of name the cache holds, when the provider
// tracks versions.
func (c *Cache) Version(name string) (Version, bool) {
	vp, ok := c.p.(Versioned)
	if !ok {
		return Version{}, false
	}
	c.mu.RLock()
	_, loaded := c.entries[name]
	c.mu.RUnlock()
	if !loaded {
		return Version{}, false
	}
	id, created, ok := vp.Version(name)
	if !ok {
		return Version{}, false
	}
	return Version{Name: name, ID: id, Created: created}, true
}

// AgeState says how a key's age compares with the maximum.
type AgeState string

// The states of a key's age.
const (
	AgeOK       AgeState = "ok"
	AgeExpiring AgeState = "expiring" // within the warning window before the maximum
	AgeExpired  AgeState = "expired"  // older than the maximum
)

// KeyAge is the age of one held secret version.
type KeyAge struct {
	Version
	Age   time.Duration
	State AgeState
}

// AgePolicy is how old a key may grow. Zero Max disables the states (every
// key is AgeOK), ages are still reported.
type AgePolicy struct {
	// Max is the age after which a key should have been rotated.
	Max time.Duration
	// WarnBefore is how long before Max the key is AgeExpiring; default
	// 14 days, at most half of Max.
	WarnBefore time.Duration
}

func (p AgePolicy) state(age time.Duration) AgeState {
	if p.Max <= 0 {
		return AgeOK
	}
	warn := p.WarnBefore
	if warn <= 0 {
		warn = min(p.Max/2, 14*24*time.Hour)
	}
	switch {
	case age > p.Max:
		return AgeExpired
	case age > p.Max-warn:
		return AgeExpiring
	}
	return AgeOK
}

// Ages returns the age of every held secret whose provider reports a
// creation time, sorted by name.
func (c *Cache) Ages(policy AgePolicy) []KeyAge {
	c.mu.RLock()
	names := make([]string, 0, len(c.entries))
	for n := range c.entries {
		names = append(names, n)
	}
	c.mu.RUnlock()
	sort.Strings(names)
	now := c.cfg.Now()
	var out []KeyAge
	for _, n := range names {
		v, ok := c.Version(n)
		if !ok || v.Created.IsZero() {
			continue
		}
		age := max(now.Sub(v.Created), 0)
		out = append(out, KeyAge{Version: v, Age: age, State: policy.state(age)})
	}
	return out
}

// WarnOldKeys logs a warning for each held key that is expiring or
// expired under policy, naming the secret and its version id, and returns
// the ages it looked at.
func (c *Cache) WarnOldKeys(log *slog.Logger, policy AgePolicy) []KeyAge {
	ages := c.Ages(policy)
	for _, a := range ages {
		switch a.State {
		case AgeExpired:
			log.Warn("vendor key is older than the maximum age; rotate it", "secret", a.Name, "version_id", a.ID,
				"created", a.Created.UTC().Format(time.RFC3339), "age_days", int(a.Age.Hours()/24), "max_age_days", int(policy.Max.Hours()/24))
		case AgeExpiring:
			log.Warn("vendor key reaches its maximum age soon; rotate it", "secret", a.Name, "version_id", a.ID,
				"created", a.Created.UTC().Format(time.RFC3339), "age_days", int(a.Age.Hours()/24), "max_age_days", int(policy.Max.Hours()/24))
		}
	}
	return ages
}
