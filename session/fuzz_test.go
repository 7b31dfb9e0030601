package session_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/session"
)

func FuzzParseUsers(f *testing.F) {
	h := mustHash(f, "pw")
	for _, s := range []string{
		"", "alice:" + h, "alice:" + h + ",bob:" + h, h, "a:b,c", ",,,", "a:$argon2id$v=19$m=1,t=1,p=1$$",
		"x:" + strings.Replace(h, ",", ", ", -1), "t=1,p=2:3", "alice:" + h + ",t=5",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := session.ParseUsers(s)
		if err != nil {
			if !errors.Is(err, session.ErrInvalidUsers) {
				t.Fatalf("error %v does not wrap ErrInvalidUsers", err)
			}
			return
		}
		for _, name := range u.Names() {
			if err := session.CheckUsername(name); err != nil {
				t.Fatalf("accepted invalid name: %v", err)
			}
		}
	})
}

func FuzzPHC(f *testing.F) {
	h := mustHash(f, "pw")
	for _, s := range []string{h, "", "$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", "$$$$$", "$argon2id$v=19$m=99999999999,t=1,p=1$a$b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := session.CheckPHC(s)
		if err != nil {
			if !errors.Is(err, session.ErrInvalidHash) {
				t.Fatalf("error %v does not wrap ErrInvalidHash", err)
			}
			return
		}
		again, err := session.CheckPHC(out)
		if err != nil || again != out {
			t.Fatalf("canonical form %q does not round-trip: %q, %v", out, again, err)
		}
	})
}

func FuzzSessionCookie(f *testing.F) {
	fx := newFixture(f, nil)
	for _, s := range []string{"", "x", base64.RawURLEncoding.EncodeToString(make([]byte, 32)), strings.Repeat("A", 43), "a=b; c", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if k, ok := session.KeyOf(v); ok {
			raw, err := base64.RawURLEncoding.DecodeString(v)
			if err != nil || len(raw) != 32 || base64.RawURLEncoding.EncodeToString(raw) != v || len(k) != 64 {
				t.Fatalf("KeyOf accepted a non-canonical id %q", v)
			}
		}
		r := httptest.NewRequest(http.MethodGet, "/auth/session", nil)
		r.Header.Set("Cookie", session.CookieName+"="+v)
		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("cookie %q: status %d, want 401", v, w.Code)
		}
	})
}

func FuzzLoginBody(f *testing.F) {
	fx := newFixture(f, nil)
	for _, s := range []string{
		`{"username":"alice","password":"` + alicePass + `"}`, `{"username":"alice","password":"x"}`,
		`{}`, `[]`, `null`, `{"username":null,"password":null}`, `{"username":"a","password":"b"} x`, "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		w := fx.do(http.MethodPost, "/auth/login", "", strings.NewReader(body), csrf...)
		switch w.Code {
		case http.StatusOK:
			if len(w.Header().Values("Set-Cookie")) != 1 {
				t.Fatal("200 without a cookie")
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
			errCode(t, w) // a contract error body
		default:
			t.Fatalf("status %d for body %q", w.Code, body)
		}
	})
}
