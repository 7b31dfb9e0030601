package session_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tickgate/tickgate/session"
)

// BenchmarkMiddleware is the per-request cost of cookie → session: cookie
// parse, id check, SHA-256, store read (memstore), expiry check, context.
func BenchmarkMiddleware(b *testing.B) {
	f := newFixture(b, nil)
	cookie := f.login(b, "alice", alicePass, "")
	var found bool
	h := f.m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, found = session.FromContext(r.Context())
	}))
	r := httptest.NewRequest(http.MethodGet, "/api/quote", nil)
	r.AddCookie(&http.Cookie{Name: session.CookieName, Value: cookie})
	r.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
	if !found {
		b.Fatal("no session found")
	}
}

// BenchmarkMiddlewareParallel is BenchmarkMiddleware from every core.
func BenchmarkMiddlewareParallel(b *testing.B) {
	f := newFixture(b, nil)
	cookie := f.login(b, "alice", alicePass, "")
	h := f.m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := session.FromContext(r.Context()); !ok {
			b.Error("no session")
		}
	}))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest(http.MethodGet, "/api/quote", nil)
		r.AddCookie(&http.Cookie{Name: session.CookieName, Value: cookie})
		w := httptest.NewRecorder()
		for pb.Next() {
			h.ServeHTTP(w, r)
		}
	})
}

// BenchmarkMiddlewareNoCookie is the cost for anonymous requests.
func BenchmarkMiddlewareNoCookie(b *testing.B) {
	f := newFixture(b, nil)
	h := f.m.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
