package session_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/session"
)

func mustHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := session.HashPasswordWith(pw, cheap)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashPasswordDefault(t *testing.T) {
	t.Parallel()
	h, err := session.HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(h) {
		t.Fatalf("hash %q is not the standard PHC form", h)
	}
	u, err := session.NewUsers(map[string]string{"alice": h})
	if err != nil {
		t.Fatal(err)
	}
	if !u.Verify("alice", "s3cret") {
		t.Fatal("Verify rejected the right password")
	}
	if u.Verify("alice", "s3cret ") || u.Verify("alice", "") || u.Verify("bob", "s3cret") {
		t.Fatal("Verify accepted a wrong password or user")
	}
}

func TestHashPasswordWith(t *testing.T) {
	t.Parallel()
	a, b := mustHash(t, "pw"), mustHash(t, "pw")
	if a == b {
		t.Fatal("two hashes of one password are equal: no random salt")
	}
	if !strings.HasPrefix(a, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q does not carry its parameters", a)
	}
	if _, err := session.HashPasswordWith("", cheap); !errors.Is(err, session.ErrEmptyPassword) {
		t.Fatalf("empty password: %v", err)
	}
	bad := []session.Params{
		{},
		{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 4, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 8},
		{Memory: 1 << 30, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
	}
	for _, p := range bad {
		if _, err := session.HashPasswordWith("pw", p); !errors.Is(err, session.ErrInvalidHash) {
			t.Errorf("params %+v: err = %v, want ErrInvalidHash", p, err)
		}
	}
}

func TestPHCParsing(t *testing.T) {
	t.Parallel()
	good := mustHash(t, "pw")
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=..., salt, hash
	salt, sum := parts[4], parts[5]
	join := func(p ...string) string { return strings.Join(p, "$") }
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "not a PHC string"},
		{"bcrypt", "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", "not a PHC string"},
		{"argon2i", join("", "argon2i", "v=19", "m=64,t=1,p=1", salt, sum), "not argon2id"},
		{"old version", join("", "argon2id", "v=16", "m=64,t=1,p=1", salt, sum), "version"},
		{"no version", join("", "argon2id", "m=64,t=1,p=1", salt, sum), "not a PHC string"},
		{"missing p", join("", "argon2id", "v=19", "m=64,t=1", salt, sum), "each once"},
		{"repeated m", join("", "argon2id", "v=19", "m=64,m=64,t=1", salt, sum), "each once"},
		{"extra param", join("", "argon2id", "v=19", "m=64,t=1,p=1,k=2", salt, sum), "unknown parameter"},
		{"keyid", join("", "argon2id", "v=19", "m=64,t=1,p=1,keyid=abc", salt, sum), "unknown parameter"},
		{"not a number", join("", "argon2id", "v=19", "m=lots,t=1,p=1", salt, sum), "decimal"},
		{"negative", join("", "argon2id", "v=19", "m=-64,t=1,p=1", salt, sum), "decimal"},
		{"leading zero", join("", "argon2id", "v=19", "m=064,t=1,p=1", salt, sum), "decimal"},
		{"huge parallelism", join("", "argon2id", "v=19", "m=4096,t=1,p=300", salt, sum), "parallelism"},
		{"zero time", join("", "argon2id", "v=19", "m=64,t=0,p=1", salt, sum), "iterations"},
		{"memory too small", join("", "argon2id", "v=19", "m=4,t=1,p=1", salt, sum), "memory"},
		{"memory too big", join("", "argon2id", "v=19", "m=4194304,t=1,p=1", salt, sum), "memory"},
		{"salt not base64", join("", "argon2id", "v=19", "m=64,t=1,p=1", "!!!!"+salt, sum), "salt is not base64"},
		{"hash not base64", join("", "argon2id", "v=19", "m=64,t=1,p=1", salt, sum+"*"), "hash is not base64"},
		{"short salt", join("", "argon2id", "v=19", "m=64,t=1,p=1", "AAAA", sum), "salt must be"},
		{"short hash", join("", "argon2id", "v=19", "m=64,t=1,p=1", salt, "AAAAAAAA"), "hash must be"},
		{"url alphabet", join("", "argon2id", "v=19", "m=64,t=1,p=1", strings.Repeat("_", 22), sum), "salt is not base64"},
		{"trailing part", good + "$x", "not a PHC string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := session.CheckPHC(tt.in)
			if !errors.Is(err, session.ErrInvalidHash) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidHash mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), salt) || strings.Contains(err.Error(), sum) {
				t.Fatalf("error %q quotes the hash", err)
			}
		})
	}
	// Padded base64 (some tools print it) is accepted and normalised.
	padded := join("", "argon2id", "v=19", "m=64,t=1,p=1", salt+"==", sum+"=")
	if got, err := session.CheckPHC(padded); err != nil || got != good {
		t.Fatalf("padded form: %q, %v; want %q", got, err, good)
	}
	// Parameters in another order are accepted; output is canonical.
	reordered := join("", "argon2id", "v=19", "p=1,m=64,t=1", salt, sum)
	if got, err := session.CheckPHC(reordered); err != nil || got != good {
		t.Fatalf("reordered: %q, %v; want %q", got, err, good)
	}
}

func TestParseUsers(t *testing.T) {
	t.Parallel()
	ha, hb, hc := mustHash(t, "pa"), mustHash(t, "pb"), mustHash(t, "pc")
	tests := []struct {
		name string
		in   string
	}{
		{"plain", "alice:" + ha + ",bob:" + hb + ",c.d_e-f@x.org:" + hc},
		{"spaces", "  alice : " + ha + " ,\tbob:" + hb + " , c.d_e-f@x.org:" + hc + " "},
		{"trailing and doubled commas", "alice:" + ha + ",,bob:" + hb + ",c.d_e-f@x.org:" + hc + ","},
		{"spaces inside the parameters", strings.Replace("alice:"+ha, ",", ", ", -1) + ",bob:" + hb + ",c.d_e-f@x.org:" + hc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := session.ParseUsers(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(u.Names(), " "); got != "alice bob c.d_e-f@x.org" || u.Len() != 3 {
				t.Fatalf("users = %q", got)
			}
			if !u.Verify("alice", "pa") || !u.Verify("bob", "pb") || !u.Verify("c.d_e-f@x.org", "pc") {
				t.Fatal("a password does not verify")
			}
			if u.Verify("alice", "pb") {
				t.Fatal("bob's password opened alice")
			}
		})
	}
	u, err := session.ParseUsers("")
	if err != nil || u.Len() != 0 {
		t.Fatalf("empty setting: %v users, %v", u.Len(), err)
	}
	if u.Verify("anyone", "pw") {
		t.Fatal("Verify with no users succeeded")
	}
}

func TestParseUsersErrors(t *testing.T) {
	t.Parallel()
	h := mustHash(t, "pw")
	parts := strings.Split(h, "$")
	secretParts := []string{parts[4], parts[5]}
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"bare hash", h, []string{"pair 1", "missing ':'"}},
		{"no hash", "alice:", []string{"pair 1", `"alice"`, "no hash"}},
		{"no colon", "alice", []string{"pair 1", "missing ':'"}},
		{"bad name", "al/ice:" + h, []string{"pair 1", "invalid user name", `"/"`, "position 3"}},
		{"empty name", ":" + h, []string{"pair 1", "invalid user name", "empty"}},
		{"long name", strings.Repeat("a", 65) + ":" + h, []string{"longer than 64"}},
		{"wrong algorithm", "alice:" + strings.Replace(h, "argon2id", "argon2i", 1), []string{"pair 1", `user "alice"`, "not argon2id"}},
		{"cut hash", "alice:" + h[:len(h)-10] + "!", []string{`user "alice"`, "hash is not base64"}},
		{"duplicate", "alice:" + h + ",bob:" + h + ",alice:" + h, []string{"pair 3", `"alice" is listed twice`}},
		{"two problems", "alice:x,bob:" + h + ",carol", []string{"pair 1", `user "alice"`, "pair 3", "missing ':'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := session.ParseUsers(tt.in)
			if !errors.Is(err, session.ErrInvalidUsers) {
				t.Fatalf("err = %v, want ErrInvalidUsers", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, s := range secretParts {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q quotes the hash", err)
				}
			}
		})
	}
}

func TestParseUsersFile(t *testing.T) {
	t.Parallel()
	ha, hb := mustHash(t, "pa"), mustHash(t, "pb")
	in := "# tickgate users\r\n\nalice:" + ha + "   # the admin\r\n   \n  bob:" + hb + "\n"
	u, err := session.ParseUsersFile(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(u.Names(), " "); got != "alice bob" {
		t.Fatalf("users = %q", got)
	}
	if !u.Verify("alice", "pa") || !u.Verify("bob", "pb") {
		t.Fatal("a password does not verify")
	}

	_, err = session.ParseUsersFile(strings.NewReader("# header\nalice:" + ha + "\nbob " + hb + "\nalice:" + ha + "\n"))
	if !errors.Is(err, session.ErrInvalidUsers) {
		t.Fatalf("err = %v", err)
	}
	for _, w := range []string{"line 3", "line 4", "listed twice"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	_, err = session.ParseUsersFile(strings.NewReader("alice:" + ha + "\n" + strings.Repeat("x", 70<<10) + "\n"))
	if !errors.Is(err, session.ErrInvalidUsers) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("over-long line: %v", err)
	}
}

func TestNewUsersAndAdd(t *testing.T) {
	t.Parallel()
	h := mustHash(t, "pw")
	if _, err := session.NewUsers(map[string]string{"ok": h, "bad name": h, "bob": "plain"}); !errors.Is(err, session.ErrInvalidUsers) {
		t.Fatalf("NewUsers: %v", err)
	}
	u, err := session.NewUsers(map[string]string{"demo": h})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Add("demo", h); !errors.Is(err, session.ErrInvalidUsers) {
		t.Fatalf("Add of an existing user: %v", err)
	}
	if err := u.Add("second", mustHash(t, "other")); err != nil {
		t.Fatal(err)
	}
	if !u.Verify("second", "other") || !u.Verify("demo", "pw") {
		t.Fatal("Verify failed after Add")
	}
}

func TestCheckUsername(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "alice", "A.b_c-d@e.f", "0", strings.Repeat("x", 64)} {
		if err := session.CheckUsername(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", " ", "a b", "a:b", "a,b", "a$b", "é", "a\x00", "<script>", strings.Repeat("x", 65)} {
		if err := session.CheckUsername(bad); !errors.Is(err, session.ErrInvalidUsername) {
			t.Errorf("%q: err = %v, want ErrInvalidUsername", bad, err)
		}
	}
}

// TestUnknownUserCostsLikeAUser checks the timing equaliser without timing
// anything: an unknown name is verified against a dummy hash with the
// parameters of the configured users (the first one added), so it costs
// one argon2id run like a wrong password; BenchmarkVerifyTiming measures
// the ratio.
func TestUnknownUserCostsLikeAUser(t *testing.T) {
	t.Parallel()
	u, err := session.NewUsers(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.DummyParams(), session.DefaultParams(); got != want {
		t.Errorf("no users: dummy params %+v, want the defaults %+v", got, want)
	}
	p := session.Params{Memory: 128, Time: 3, Threads: 1, SaltLen: 16, KeyLen: 32}
	h, err := session.HashPasswordWith("right password", p)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Add("alice", h); err != nil {
		t.Fatal(err)
	}
	if got := u.DummyParams(); got != p {
		t.Errorf("dummy params %+v, want alice's %+v", got, p)
	}
	if u.Verify("mallory", "right password") || u.Verify("alice", "wrong") || !u.Verify("alice", "right password") {
		t.Error("Verify answers wrong")
	}
}
