package session_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/memstore"
)

// ExampleNewManager wires the session routes the way the app does: the
// middleware in front of everything, CSRF checks on state-changing routes,
// Require on what needs a login.
func ExampleNewManager() {
	store, err := memstore.New(memstore.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// In the program the hashes come from TICKGATE_USERS
	// (session.ParseUsers) and are made by `tickgate hash-password`.
	hash, err := session.HashPassword("correct horse battery staple")
	if err != nil {
		log.Fatal(err)
	}
	users, err := session.NewUsers(map[string]string{"alice": hash})
	if err != nil {
		log.Fatal(err)
	}

	m, err := session.NewManager(session.Config{
		Store:          store,
		Users:          users,
		AllowedOrigins: []string{"http://127.0.0.1:8080"},
		Idle:           30 * time.Minute,
		Max:            12 * time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	mux := http.NewServeMux()
	mux.Handle("POST /auth/login", m.RequireCSRF(http.HandlerFunc(m.Login)))
	mux.HandleFunc("GET /auth/session", m.Info)
	mux.Handle("POST /auth/logout", m.RequireCSRF(http.HandlerFunc(m.Logout)))
	mux.Handle("/api/", m.Require(m.RequireCSRF(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := session.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s\n", s.User)
	}))))
	h := m.Middleware(mux)

	// Log in as the frontend does.
	req := httptest.NewRequest(http.MethodPost, "/auth/login",
		strings.NewReader(`{"username":"alice","password":"correct horse battery staple"}`))
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Origin", "http://127.0.0.1:8080")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println("login:", rec.Code)

	// Use the cookie.
	req = httptest.NewRequest(http.MethodGet, "/api/quote", nil)
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Print(rec.Body.String())
	// Output:
	// login: 200
	// hello alice
}
