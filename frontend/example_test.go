package frontend_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/tickgate/tickgate/frontend"
)

// The page is the catch-all after the API routes; it answers 404 and 405
// itself, as JSON.
func ExampleHandler() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	mux.Handle("/", frontend.Handler())

	for _, path := range []string{"/", "/app.js", "/nope"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(path, rec.Code, rec.Header().Get("Content-Type"))
	}
	// Output:
	// / 200 text/html; charset=utf-8
	// /app.js 200 text/javascript; charset=utf-8
	// /nope 404 application/json; charset=utf-8
}
