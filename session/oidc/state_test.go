package oidc

import (
	"strings"
	"testing"
	"time"

	"github.com/tickgate/tickgate/secrets"
)

var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func testSealer() *sealer {
	return newSealer(secrets.NewValue("client secret"), "tickgate", "https://app.example.com/auth/oidc/callback")
}

func TestSealRoundTrip(t *testing.T) {
	t.Parallel()
	s := testSealer()
	f := newFlow(t0)
	v := s.seal(f)
	if len(v) != sealedChars {
		t.Fatalf("sealed length %d, want %d", len(v), sealedChars)
	}
	got, err := s.open(v)
	if err != nil {
		t.Fatal(err)
	}
	if got != f {
		t.Fatalf("open(seal(f)) = %+v, want %+v", got, f)
	}
	if got, want := got.expires, t0.Add(stateTTL); !got.Equal(want) {
		t.Fatalf("expires = %v, want %v", got, want)
	}
	if v2 := s.seal(f); v2 == v {
		t.Fatal("sealing twice gave the same value: the GCM nonce is not random")
	}
	for _, p := range []string{f.stateParam(), f.nonceParam(), f.verifierParam()} {
		if len(p) != 43 {
			t.Fatalf("parameter %q is not 43 characters", p)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	s := testSealer()
	v := s.seal(newFlow(t0))
	flip := func(i int) string {
		b := []byte(v)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	others := map[string]*sealer{
		"other secret":       newSealer(secrets.NewValue("other"), "tickgate", "https://app.example.com/auth/oidc/callback"),
		"other client":       newSealer(secrets.NewValue("client secret"), "other", "https://app.example.com/auth/oidc/callback"),
		"other redirect URL": newSealer(secrets.NewValue("client secret"), "tickgate", "https://evil.example/auth/oidc/callback"),
	}
	tests := map[string]string{
		"empty":          "",
		"short":          v[:len(v)-1],
		"long":           v + "A",
		"padding":        v[:len(v)-2] + "==",
		"not base64":     strings.Repeat("*", sealedChars),
		"flipped nonce":  flip(3),
		"flipped body":   flip(60),
		"flipped tag":    flip(len(v) - 3),
		"trailing bits":  v[:len(v)-1] + "B", // non-canonical last character
		"all zero bytes": strings.Repeat("A", sealedChars),
	}
	for name, in := range tests {
		if _, err := s.open(in); err != errBadState {
			t.Errorf("%s: open = %v, want errBadState", name, err)
		}
	}
	for name, o := range others {
		if _, err := o.open(v); err != errBadState {
			t.Errorf("%s: open = %v, want errBadState", name, err)
		}
	}
}

// FuzzOpen: the state cookie is attacker input. open never panics and
// never accepts anything but a value we sealed. (The key is derived from a
// fixed secret, so every fuzz worker opens the seed; only fixed flows are
// ever sealed here.)
func FuzzOpen(f *testing.F) {
	s := testSealer()
	fixed := flow{expires: time.Unix(t0.Unix(), 0)}
	for i := range randLen {
		fixed.state[i], fixed.nonce[i], fixed.verifier[i] = byte(i), byte(i+1), byte(i+2)
	}
	valid := s.seal(fixed)
	f.Add(valid)
	f.Add("")
	f.Add("junk")
	f.Add(strings.Repeat("A", sealedChars))
	f.Add(valid[:len(valid)-1] + "B")
	f.Fuzz(func(t *testing.T, v string) {
		fl, err := s.open(v)
		if err != nil {
			return
		}
		if fl != fixed {
			t.Fatalf("open accepted a value we never sealed: %q", v)
		}
	})
}

func TestUsedStates(t *testing.T) {
	t.Parallel()
	u := newUsedStates()
	a, b := newFlow(t0), newFlow(t0)
	if !u.claim(a.state, a.expires, t0) {
		t.Fatal("first claim refused")
	}
	if u.claim(a.state, a.expires, t0.Add(time.Minute)) {
		t.Fatal("second claim accepted")
	}
	if !u.claim(b.state, b.expires, t0) {
		t.Fatal("another state refused")
	}
	u.release(b.state)
	if !u.claim(b.state, b.expires, t0) {
		t.Fatal("released state refused")
	}
	if !u.claim(a.state, a.expires.Add(stateTTL), a.expires) {
		t.Fatal("a state past its expiry is still remembered")
	}

	// Full of expired entries: they are pruned, not kept.
	full := newUsedStates()
	for i := range maxUsed {
		var k [randLen]byte
		k[0], k[1], k[2] = byte(i), byte(i>>8), 0xff
		full.m[k] = t0
	}
	c := newFlow(t0)
	if !full.claim(c.state, c.expires, t0.Add(time.Second)) {
		t.Fatal("claim refused when full")
	}
	if got := len(full.m); got != 1 {
		t.Fatalf("%d entries after pruning, want 1", got)
	}
	// Full of live entries: still bounded.
	for i := range maxUsed {
		var k [randLen]byte
		k[0], k[1], k[2] = byte(i), byte(i>>8), 0xfe
		full.m[k] = t0.Add(time.Hour)
	}
	d := newFlow(t0)
	if !full.claim(d.state, d.expires, t0) {
		t.Fatal("claim refused when full of live entries")
	}
	if got := len(full.m); got > maxUsed {
		t.Fatalf("%d entries, want at most %d", got, maxUsed)
	}
	if full.claim(d.state, d.expires, t0) {
		t.Fatal("the new claim was dropped")
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		withPath bool
		ok       bool
	}{
		{"https://login.example.com", false, true},
		{"https://login.example.com/realms/x", false, true},
		{"http://127.0.0.1:8080/oidc", false, true},
		{"http://[::1]:8080/oidc", false, true},
		{"http://localhost:8080/cb", true, true},
		{"http://login.example.com", false, false},
		{"ftp://login.example.com", false, false},
		{"https://login.example.com?x=1", false, false},
		{"https://login.example.com?", false, false},
		{"https://login.example.com#f", false, false},
		{"https://u@login.example.com", false, false},
		{"https://app.example.com/", true, false},
		{"/auth/oidc/callback", true, false},
		{"", false, false},
		{"https://%zz", false, false},
	}
	for _, tt := range tests {
		if err := checkURL(tt.in, tt.withPath); (err == nil) != tt.ok {
			t.Errorf("checkURL(%q, %v) = %v, want ok=%v", tt.in, tt.withPath, err, tt.ok)
		}
	}
}

func TestIdentify(t *testing.T) {
	t.Parallel()
	l := &Login{
		usernameClaim: "email",
		allowUsers:    map[string]bool{"bob": true},
		allowDomains:  map[string]bool{"example.com": true},
	}
	tests := []struct {
		name   string
		claims map[string]any
		user   string
		reason string
	}{
		{"verified, allowed domain", map[string]any{"email": "a@example.com", "email_verified": true}, "a@example.com", ""},
		{"verified as string", map[string]any{"email": "a@example.com", "email_verified": "true"}, "a@example.com", ""},
		{"domain case", map[string]any{"email": "a@EXAMPLE.com", "email_verified": true}, "a@EXAMPLE.com", ""},
		{"unverified", map[string]any{"email": "a@example.com", "email_verified": false}, "", "email_unverified"},
		{"verified missing", map[string]any{"email": "a@example.com"}, "", "email_unverified"},
		{"verified wrong type", map[string]any{"email": "a@example.com", "email_verified": 1.0}, "", "email_unverified"},
		{"subdomain", map[string]any{"email": "a@sub.example.com", "email_verified": true}, "a@sub.example.com", "not_allowed"},
		{"suffix trick", map[string]any{"email": "a@evilexample.com", "email_verified": true}, "a@evilexample.com", "not_allowed"},
		{"two ats", map[string]any{"email": "a@evil.com@example.com", "email_verified": true}, "a@evil.com@example.com", "not_allowed"},
		{"not a string", map[string]any{"email": 42.0, "email_verified": true}, "", "no_username_claim"},
		{"too long", map[string]any{"email": strings.Repeat("a", 60) + "@example.com", "email_verified": true}, "", "invalid_username"},
		{"allowed user", map[string]any{"email": "Bob", "email_verified": true}, "Bob", ""},
	}
	for _, tt := range tests {
		user, reason := l.identify(tt.claims)
		if user != tt.user || reason != tt.reason {
			t.Errorf("%s: identify = %q, %q; want %q, %q", tt.name, user, reason, tt.user, tt.reason)
		}
	}
}

func TestSafeCode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"invalid_grant":         "invalid_grant",
		"":                      "other",
		"Invalid code: abc":     "other",
		strings.Repeat("a", 65): "other",
		"access_denied\n":       "other",
	} {
		if got := safeCode(in); got != want {
			t.Errorf("safeCode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidDomain(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"example.com": true, "a-b.example.co.uk": true, "xn--bcher-kva.example": true,
		"example": false, ".example.com": false, "example.com.": false, "-a.com": false,
		"a..com": false, "ex ample.com": false, "a@b.com": false, "EXAMPLE.COM": false,
	} {
		if got := validDomain(in); got != want {
			t.Errorf("validDomain(%q) = %v, want %v", in, got, want)
		}
	}
}
