package oidc_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/tickgate/tickgate/session/oidc"
)

func TestRolesClaim(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		claim  string
		groups []string
		want   []string
	}{
		{"roles from the claim, sorted, invalid ones dropped", "groups",
			[]string{"trading", "Admins", "realtime", "app:x", "trading"}, []string{"realtime", "trading"}},
		{"no claim configured: no roles", "", []string{"trading"}, nil},
		{"claim absent: no roles", "realm_access.roles", []string{"trading"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *oidc.Config) {
				c.RolesClaim = tt.claim
				c.Scopes = []string{"openid", "profile", "email", "groups"}
			})
			e.op.QueueUser(&mockoidc.MockUser{Subject: "7", Email: "rita@example.com", EmailVerified: true, Groups: tt.groups})
			b := e.browser()
			if r := e.loginFlow(b); r.code != http.StatusFound {
				t.Fatalf("callback = %d %s, want 302", r.code, r.body)
			}
			r := b.get(e.srv.URL + "/auth/session")
			var body struct {
				User  string   `json:"user"`
				Roles []string `json:"roles"`
			}
			if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.User != "rita@example.com" {
				t.Fatalf("session = %d %s", r.code, r.body)
			}
			if !slices.Equal(body.Roles, tt.want) {
				t.Fatalf("roles = %q, want %q", body.Roles, tt.want)
			}
		})
	}
}
