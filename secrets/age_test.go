package secrets

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// versionedProvider is a provider whose secrets carry versions.
type versionedProvider struct {
	mu       sync.Mutex
	values   map[string]string
	versions map[string]Version
}

func (p *versionedProvider) Get(_ context.Context, name string) (Value, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.values[name]
	if !ok {
		return Value{}, ErrNotFound
	}
	return NewValue(v), nil
}

func (p *versionedProvider) Version(name string) (string, time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.versions[name]
	return v.ID, v.Created, ok
}

func TestKeyAges(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	p := &versionedProvider{
		values: map[string]string{"FRESH": "fresh-value-0123456789", "OLD": "old-value-0123456789", "SOON": "soon-value-0123456789", "NOVERSION": "nov-value-0123456789"},
		versions: map[string]Version{
			"FRESH": {ID: "v-fresh", Created: now.Add(-10 * day)},
			"SOON":  {ID: "v-soon", Created: now.Add(-85 * day)},
			"OLD":   {ID: "v-old", Created: now.Add(-120 * day)},
		},
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	c := NewCache(p, CacheConfig{Refresh: -1, Now: func() time.Time { return now }})
	if err := c.Load(context.Background(), "FRESH", "OLD", "SOON", "NOVERSION"); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Version("UNLOADED"); ok {
		t.Error("a secret never loaded has a version")
	}
	ages := c.WarnOldKeys(log, AgePolicy{Max: 90 * day})
	got := map[string]KeyAge{}
	for _, a := range ages {
		got[a.Name] = a
	}
	if len(ages) != 3 || got["NOVERSION"].Name != "" {
		t.Fatalf("ages = %+v, want the three versioned secrets", ages)
	}
	for name, want := range map[string]AgeState{"FRESH": AgeOK, "SOON": AgeExpiring, "OLD": AgeExpired} {
		if got[name].State != want {
			t.Errorf("%s: state %s, want %s", name, got[name].State, want)
		}
	}
	if got["OLD"].Age != 120*day || got["OLD"].ID != "v-old" {
		t.Errorf("OLD: %+v", got["OLD"])
	}
	out := logs.String()
	for _, want := range []string{"secret=OLD version_id=v-old", "age_days=120 max_age_days=90", "secret=SOON version_id=v-soon", "reaches its maximum age soon"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FRESH") || strings.Contains(out, "value-0123456789") {
		t.Errorf("log names a fresh key or prints a value:\n%s", out)
	}

	// No maximum: ages are reported, nothing is warned about.
	logs.Reset()
	for _, a := range c.WarnOldKeys(log, AgePolicy{}) {
		if a.State != AgeOK {
			t.Errorf("%s: %s with no maximum", a.Name, a.State)
		}
	}
	if logs.Len() != 0 {
		t.Errorf("warned with no maximum: %s", logs.String())
	}

	// A provider without versions reports no ages.
	env := NewCache(NewEnv(func(string) string { return "env-value-0123456789" }), CacheConfig{Refresh: -1})
	if err := env.Load(context.Background(), "X"); err != nil {
		t.Fatal(err)
	}
	if a := env.Ages(AgePolicy{Max: day}); len(a) != 0 {
		t.Errorf("env ages = %+v", a)
	}
}
