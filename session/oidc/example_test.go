package oidc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/memstore"
	"github.com/tickgate/tickgate/session/oidc"
)

// ExampleNew wires OIDC login next to the session routes, against a mock
// provider on loopback standing in for Keycloak, Okta, Entra ID or Google,
// and follows the browser's redirects to a session.
func ExampleNew() {
	provider, err := mockoidc.Run() // a real deployment: its issuer URL
	if err != nil {
		log.Fatal(err)
	}
	defer provider.Shutdown()

	store, err := memstore.New(memstore.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	users, _ := session.NewUsers(nil) // OIDC only: no local users

	mux := http.NewServeMux()
	var handler http.Handler
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.ServeHTTP(w, r)
	}))
	origin := "http://" + srv.Listener.Addr().String() // TICKGATE_PUBLIC_ORIGIN

	m, err := session.NewManager(session.Config{Store: store, Users: users, AllowedOrigins: []string{origin}})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	login, err := oidc.New(context.Background(), oidc.Config{
		IssuerURL:      provider.Issuer(),
		ClientID:       provider.ClientID,
		ClientSecret:   secrets.NewValue(provider.ClientSecret), // from the secrets cache
		RedirectURL:    origin + "/auth/oidc/callback",
		AllowedDomains: []string{"example.com"},
		Sessions:       m,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer login.Close()

	mux.HandleFunc("GET /auth/oidc/login", login.Start)
	mux.HandleFunc("GET /auth/oidc/callback", login.Callback)
	mux.HandleFunc("GET /auth/session", m.Info)
	mux.Handle("POST /auth/logout", m.RequireCSRF(http.HandlerFunc(m.Logout)))
	handler = m.Middleware(mux)
	srv.Start()
	defer srv.Close()

	// The browser: a link to /auth/oidc/login, then redirects to the
	// provider (which logs the user in) and back.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Transport: &http.Transport{}}
	defer browser.CloseIdleConnections()
	resp, err := browser.Get(srv.URL + "/auth/oidc/login")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("landed on", resp.Request.URL.Path)

	resp, err = browser.Get(srv.URL + "/auth/session")
	if err != nil {
		log.Fatal(err)
	}
	var info struct {
		User string `json:"user"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, info.User)
	// Output:
	// landed on /
	// 200 jane.doe@example.com
}
