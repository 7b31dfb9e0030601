package guard

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/tickgate/tickgate/config"
)

// patience bounds every wait; generous for a loaded machine.
const patience = 15 * time.Second

// geoRecord is one network of a test database: country, and/or only a
// registered country.
type geoRecord struct {
	cidr, country, registered string
}

// testNetworks is the tiny world of these tests. Documentation ranges
// stand in for public networks (the writer is told to allow them).
var testNetworks = []geoRecord{
	{cidr: "198.51.100.0/24", country: "DE"},
	{cidr: "203.0.113.0/24", country: "KP"},
	{cidr: "192.0.2.0/25", country: "US"},
	{cidr: "192.0.2.128/25", registered: "FR"}, // e.g. an anycast network
	{cidr: "2001:db8:de::/48", country: "DE"},
	{cidr: "2001:db8:1::/48", country: "US"},
}

// writeGeoDB builds a MaxMind-format database of records at path.
func writeGeoDB(t testing.TB, path string, records []geoRecord) {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "GeoLite2-Country",
		IncludeReservedNetworks: true,
		RecordSize:              24,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		_, network, err := net.ParseCIDR(r.cidr)
		if err != nil {
			t.Fatal(err)
		}
		rec := mmdbtype.Map{}
		if r.country != "" {
			rec["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(r.country)}
		}
		if r.registered != "" {
			rec["registered_country"] = mmdbtype.Map{"iso_code": mmdbtype.String(r.registered)}
		}
		if err := w.Insert(network, rec); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	// Write then rename, as GeoIP updaters do, so a watcher never reads
	// half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func testGeoDB(t testing.TB) (*GeoDB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "country.mmdb")
	writeGeoDB(t, path, testNetworks)
	db, err := OpenGeoDB(path, GeoOptions{Reload: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db, path
}

func TestGeoCountry(t *testing.T) {
	t.Parallel()
	db, _ := testGeoDB(t)
	tests := []struct {
		addr, want string
		found      bool
	}{
		{"198.51.100.7", "DE", true},
		{"::ffff:198.51.100.7", "DE", true}, // IPv4-mapped
		{"203.0.113.200", "KP", true},
		{"192.0.2.1", "US", true},
		{"192.0.2.200", "FR", true}, // registered country only
		{"2001:db8:de:1::5", "DE", true},
		{"2001:db8:1:ffff::1", "US", true},
		{"2001:db8:2::1", "", false},
		{"100.100.100.100", "", false},
	}
	for _, tc := range tests {
		got, found := db.Country(netip.MustParseAddr(tc.addr))
		if got != tc.want || found != tc.found {
			t.Errorf("Country(%s) = %q, %v; want %q, %v", tc.addr, got, found, tc.want, tc.found)
		}
	}
}

func TestOpenGeoDBErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := OpenGeoDB(filepath.Join(dir, "missing.mmdb"), GeoOptions{}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.mmdb")
	if err := os.WriteFile(bad, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenGeoDB(bad, GeoOptions{}); err == nil || !strings.Contains(err.Error(), "bad.mmdb") {
		t.Fatalf("garbage file: %v", err)
	}
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds or patience runs out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestGeoReloadsOnChange(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "country.mmdb")
	writeGeoDB(t, path, []geoRecord{{cidr: "198.51.100.0/24", country: "DE"}})
	var logs syncBuffer
	db, err := OpenGeoDB(path, GeoOptions{Reload: 5 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	addr := netip.MustParseAddr("198.51.100.1")
	if c, _ := db.Country(addr); c != "DE" {
		t.Fatalf("country = %q", c)
	}

	// A broken update keeps the loaded database.
	if err := os.WriteFile(path+".tmp", []byte("truncated"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the failed reload to be logged", func() bool { return strings.Contains(logs.String(), "did not load") })
	if c, _ := db.Country(addr); c != "DE" {
		t.Fatalf("after a broken update country = %q, want the old DE", c)
	}

	writeGeoDB(t, path, []geoRecord{{cidr: "198.51.100.0/24", country: "AT"}})
	waitFor(t, "the new database", func() bool { c, _ := db.Country(addr); return c == "AT" })
	db.Close()
	db.Close() // safe twice
}

func TestPolicyDecisions(t *testing.T) {
	t.Parallel()
	db, _ := testGeoDB(t)
	type check struct {
		addr, code string
	}
	tests := []struct {
		name   string
		rules  config.NetworkRules
		checks []check
	}{
		{"no rules", config.NetworkRules{}, []check{{"203.0.113.1", ""}, {"2001:db8::1", ""}}},
		{"deny v4", config.NetworkRules{Deny: []string{"203.0.113.0/24"}}, []check{
			{"203.0.113.1", CodeForbiddenNetwork},
			{"::ffff:203.0.113.1", CodeForbiddenNetwork}, // mapped is IPv4
			{"203.0.114.1", ""},
			{"2001:db8::1", ""},
		}},
		{"deny mapped cidr", config.NetworkRules{Deny: []string{"::ffff:203.0.113.0/120"}}, []check{
			{"203.0.113.1", CodeForbiddenNetwork},
			{"203.0.114.1", ""},
		}},
		{"allow v6 and one address", config.NetworkRules{Allow: []string{"2001:db8:1::/48", "192.0.2.10"}}, []check{
			{"2001:db8:1:2::3", ""},
			{"2001:db8:2::1", CodeForbiddenNetwork},
			{"192.0.2.10", ""},
			{"::ffff:192.0.2.10", ""},
			{"192.0.2.11", CodeForbiddenNetwork},
		}},
		{"deny wins over allow", config.NetworkRules{Allow: []string{"10.0.0.0/8"}, Deny: []string{"10.6.6.0/24"}}, []check{
			{"10.1.1.1", ""},
			{"10.6.6.6", CodeForbiddenNetwork},
		}},
		{"deny countries", config.NetworkRules{DenyCountries: []string{"kp", "FR"}}, []check{
			{"203.0.113.1", CodeForbiddenCountry},
			{"192.0.2.200", CodeForbiddenCountry}, // registered country
			{"198.51.100.1", ""},
			{"2001:db8:2::1", ""}, // unknown: not denied
			{"127.0.0.1", ""},
		}},
		{"allow countries", config.NetworkRules{AllowCountries: []string{"DE"}}, []check{
			{"198.51.100.1", ""},
			{"::ffff:198.51.100.1", ""},
			{"2001:db8:de::1", ""},
			{"2001:db8:1::1", CodeForbiddenCountry},
			{"192.0.2.1", CodeForbiddenCountry},
			{"100.100.100.100", CodeForbiddenCountry}, // public, unknown
			{"127.0.0.1", ""},                         // loopback is never fenced
			{"10.1.2.3", ""},                          // private
			{"fd00::1", ""},                           // unique local
			{"fe80::1", ""},                           // link local
		}},
		{"network before country", config.NetworkRules{Deny: []string{"198.51.100.0/24"}, AllowCountries: []string{"DE"}}, []check{
			{"198.51.100.1", CodeForbiddenNetwork},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := NewPolicy(tc.rules, db)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.checks {
				ok, code := p.Allowed(netip.MustParseAddr(c.addr))
				if ok != (c.code == "") || code != c.code {
					t.Errorf("Allowed(%s) = %v, %q; want code %q", c.addr, ok, code, c.code)
				}
			}
			if !p.Empty() {
				if ok, code := p.Allowed(netip.Addr{}); ok || code != CodeForbiddenNetwork {
					t.Errorf("invalid address allowed by a policy with rules: %v %q", ok, code)
				}
			}
		})
	}
	var nilPolicy *Policy
	if ok, _ := nilPolicy.Allowed(netip.MustParseAddr("203.0.113.1")); !ok {
		t.Fatal("nil policy refused")
	}
}

func TestNewPolicyErrors(t *testing.T) {
	t.Parallel()
	db, _ := testGeoDB(t)
	tests := []struct {
		name  string
		rules config.NetworkRules
		geo   *GeoDB
	}{
		{"bad cidr", config.NetworkRules{Allow: []string{"10.0.0.0/33"}}, nil},
		{"bad country", config.NetworkRules{DenyCountries: []string{"Germany"}}, db},
		{"both country lists", config.NetworkRules{AllowCountries: []string{"DE"}, DenyCountries: []string{"KP"}}, db},
		{"countries without database", config.NetworkRules{AllowCountries: []string{"DE"}}, nil},
	}
	for _, tc := range tests {
		if _, err := NewPolicy(tc.rules, tc.geo); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}
