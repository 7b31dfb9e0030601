package session_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/session"
)

func TestParseUsersRoles(t *testing.T) {
	t.Parallel()
	ha, hb := mustHash(t, "pa"), mustHash(t, "pb")
	tests := []struct {
		name  string
		in    string
		alice []string
		bob   []string
	}{
		{"no roles (the existing syntax)", "alice:" + ha + ",bob:" + hb, nil, nil},
		{"roles on one user", "alice:" + ha + ":trading|realtime,bob:" + hb, []string{"realtime", "trading"}, nil},
		{"roles on both, spaces", " alice:" + ha + ": trading | free ,bob:" + hb + ":free", []string{"free", "trading"}, []string{"free"}},
		{"duplicates dropped", "alice:" + ha + ":free|free,bob:" + hb, []string{"free"}, nil},
		{"spaces inside the parameters", strings.ReplaceAll("alice:"+ha, ",", ", ") + ":trading,bob:" + hb, []string{"trading"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := session.ParseUsers(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !u.Verify("alice", "pa") || !u.Verify("bob", "pb") {
				t.Fatal("a password does not verify")
			}
			if got := u.Roles("alice"); !slices.Equal(got, tt.alice) {
				t.Errorf("alice's roles = %q, want %q", got, tt.alice)
			}
			if got := u.Roles("bob"); !slices.Equal(got, tt.bob) {
				t.Errorf("bob's roles = %q, want %q", got, tt.bob)
			}
		})
	}
}

func TestParseUsersFileRoles(t *testing.T) {
	t.Parallel()
	h := mustHash(t, "pw")
	u, err := session.ParseUsersFile(strings.NewReader("# team\nalice:" + h + ":trading # desk\nbob:" + h + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Roles("alice"); !slices.Equal(got, []string{"trading"}) {
		t.Fatalf("alice's roles = %q", got)
	}
	if u.Roles("bob") != nil || u.Roles("nobody") != nil {
		t.Fatal("roles for a user without any")
	}
}

func TestParseUsersRoleErrors(t *testing.T) {
	t.Parallel()
	h := mustHash(t, "pw")
	tests := []struct{ name, in, want string }{
		{"empty role list", "alice:" + h + ":", "invalid role"},
		{"empty role", "alice:" + h + ":a||b", "invalid role"},
		{"upper case", "alice:" + h + ":Trading", `"Trading"`},
		{"bad character", "alice:" + h + ":tr ading", "invalid role"},
		{"leading dash", "alice:" + h + ":-x", "invalid role"},
		{"too long", "alice:" + h + ":" + strings.Repeat("r", 33), "invalid role"},
		{"fourth field", "alice:" + h + ":trading:extra", "too many ':'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := session.ParseUsers(tt.in)
			if !errors.Is(err, session.ErrInvalidUsers) {
				t.Fatalf("err = %v, want ErrInvalidUsers", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "$argon2id") {
				t.Fatalf("error quotes the hash: %v", err)
			}
		})
	}
	tooMany := make([]string, 33)
	for i := range tooMany {
		tooMany[i] = "r" + strings.Repeat("x", i)
	}
	u, err := session.NewUsers(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.AddWithRoles("carol", h, tooMany); !errors.Is(err, session.ErrInvalidRole) {
		t.Fatalf("33 roles: err = %v, want ErrInvalidRole", err)
	}
}

func TestLoginCarriesRoles(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *session.Config) {
		h, err := session.HashPasswordWith("carol pw", cheap)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Users.AddWithRoles("carol", h, []string{"trading", "free"}); err != nil {
			t.Fatal(err)
		}
	})
	cookie := f.login(t, "carol", "carol pw", "")
	rec, err := f.store.Get(t.Context(), key(t, cookie))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"free", "trading"}; !slices.Equal(rec.Roles, want) {
		t.Fatalf("stored roles = %q, want %q", rec.Roles, want)
	}
	w := f.do(http.MethodGet, "/auth/session", cookie, nil)
	var body struct {
		User  string   `json:"user"`
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.User != "carol" || !slices.Equal(body.Roles, []string{"free", "trading"}) {
		t.Fatalf("session info = %s (%v)", w.Body, err)
	}
	// A user without roles: no roles field at all (the contract's body).
	alice := f.login(t, "alice", alicePass, "")
	if w := f.do(http.MethodGet, "/auth/session", alice, nil); strings.Contains(w.Body.String(), "roles") {
		t.Fatalf("session info of a user without roles = %s", w.Body)
	}
}

func TestEstablishWithRolesRefusesBadRole(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/auth/oidc/callback", nil)
	if _, err := f.m.EstablishWithRoles(w, r, "dave", "oidc", []string{"ok", "Not OK"}); !errors.Is(err, session.ErrInvalidRole) {
		t.Fatalf("err = %v, want ErrInvalidRole", err)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Fatal("a cookie was set for a refused session")
	}
}
