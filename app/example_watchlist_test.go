package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/config"
)

func watchlistOf(t *testing.T, a answer) []string {
	t.Helper()
	var body struct {
		Symbols []string `json:"symbols"`
	}
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &body) != nil || body.Symbols == nil {
		t.Fatalf("watchlist answer %d %s", a.status, a.body)
	}
	return body.Symbols
}

func TestWatchlist(t *testing.T) {
	g := startScoped(t, scopedOpts{roles: map[string][]string{"alice": nil, "bob": nil}})
	if a := g.client("").do(http.MethodGet, "/app/watchlist", ""); a.status != http.StatusUnauthorized || a.code() != "no_session" {
		t.Fatalf("without a session = %d %s, want 401 no_session", a.status, a.body)
	}
	alice, bob := g.client(""), g.client("")
	alice.mustLoginAs("alice")
	bob.mustLoginAs("bob")

	if got := watchlistOf(t, alice.do(http.MethodGet, "/app/watchlist", "")); len(got) != 0 {
		t.Fatalf("new watchlist = %q, want []", got)
	}
	a := alice.do(http.MethodPut, "/app/watchlist", `{"symbols":["aapl","MSFT","BTC/USD","aapl"]}`)
	if got, want := watchlistOf(t, a), []string{"AAPL", "MSFT", "BTC/USD"}; !slices.Equal(got, want) {
		t.Fatalf("PUT answer = %q, want %q", got, want)
	}
	if got := watchlistOf(t, alice.do(http.MethodGet, "/app/watchlist", "")); !slices.Equal(got, []string{"AAPL", "MSFT", "BTC/USD"}) {
		t.Fatalf("GET after PUT = %q", got)
	}
	// Per user: bob's is his own; it survives a new login.
	if got := watchlistOf(t, bob.do(http.MethodGet, "/app/watchlist", "")); len(got) != 0 {
		t.Fatalf("bob sees %q", got)
	}
	alice.mustLoginAs("alice")
	if got := watchlistOf(t, alice.do(http.MethodGet, "/app/watchlist", "")); len(got) != 3 {
		t.Fatalf("after a new login = %q", got)
	}
	if a := alice.do(http.MethodPut, "/app/watchlist", `{"symbols":[]}`); len(watchlistOf(t, a)) != 0 {
		t.Fatalf("emptying = %s", a.body)
	}
	if !strings.Contains(g.logs.String(), `"msg":"watchlist updated"`) {
		t.Fatal("updates are not logged")
	}
}

func TestWatchlistRefusals(t *testing.T) {
	g := startScoped(t, scopedOpts{roles: map[string][]string{"alice": nil}})
	c := g.client("")
	c.mustLoginAs("alice")
	fifty := make([]string, 51)
	for i := range fifty {
		fifty[i] = `"S` + strings.Repeat("X", i%20) + string(rune('A'+i%26)) + string(rune('A'+i/26)) + `"`
	}
	tests := []struct {
		name, body string
		hdr        []string
		status     int
		code       string
	}{
		{"not JSON", `symbols=AAPL`, nil, 400, "bad_request"},
		{"no symbols field", `{}`, nil, 400, "bad_request"},
		{"unknown field", `{"symbols":["AAPL"],"admin":true}`, nil, 400, "bad_request"},
		{"two objects", `{"symbols":[]}{"symbols":[]}`, nil, 400, "bad_request"},
		{"symbols not strings", `{"symbols":[1]}`, nil, 400, "bad_request"},
		{"invalid symbol", `{"symbols":["AAPL","<script>"]}`, nil, 400, "invalid_symbol"},
		{"too many", `{"symbols":[` + strings.Join(fifty, ",") + `]}`, nil, 400, "too_many_symbols"},
		{"too large", `{"symbols":["` + strings.Repeat("A", 5000) + `"]}`, nil, 413, "request_too_large"},
		{"two content types", `{"symbols":[]}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
	}
	for _, tt := range tests {
		// A session each: the write limit (5/s) is per session.
		c := g.client("")
		c.mustLoginAs("alice")
		a := c.do(http.MethodPut, "/app/watchlist", tt.body, tt.hdr...)
		if a.status != tt.status || a.code() != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.name, a.status, a.body, tt.status, tt.code)
		}
		if strings.Contains(a.body, "script") {
			t.Errorf("%s: the error echoes the input: %s", tt.name, a.body)
		}
	}
	// Fifty is the limit, not above it.
	if a := c.do(http.MethodPut, "/app/watchlist", `{"symbols":[`+strings.Join(fifty[:50], ",")+`]}`); len(watchlistOf(t, a)) != 50 {
		t.Fatalf("50 symbols: %s", a.body)
	}

	// A body that is not declared JSON.
	c2 := g.client("")
	c2.mustLoginAs("alice")
	plain, _ := http.NewRequest(http.MethodPut, g.base+"/app/watchlist", strings.NewReader(`{"symbols":[]}`))
	plain.Header.Set("Content-Type", "text/plain")
	plain.Header.Set("X-CSRF", "1")
	resp, err := c2.http.Do(plain)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain body = %d, want 415", resp.StatusCode)
	}

	// CSRF: a write without X-CSRF is refused.
	req, _ := http.NewRequest(http.MethodPut, g.base+"/app/watchlist", strings.NewReader(`{"symbols":[]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err = c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("PUT without X-CSRF = %d, want 403", resp.StatusCode)
	}
	if a := c.do(http.MethodDelete, "/app/watchlist", ""); a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") == "" {
		t.Fatalf("DELETE = %d %s, want 405 with Allow", a.status, a.body)
	}
}

// TestWatchlistWriteLimit: writes have their own per-session limit
// (watchlistWrites: 5 a second); reads do not spend it.
func TestWatchlistWriteLimit(t *testing.T) {
	g := startScoped(t, scopedOpts{roles: map[string][]string{"alice": nil}})
	c := g.client("")
	c.mustLoginAs("alice")
	limited := 0
	for range 20 {
		a := c.do(http.MethodPut, "/app/watchlist", `{"symbols":["AAPL"]}`)
		if a.status == http.StatusTooManyRequests {
			limited++
			if a.header.Get("Retry-After") == "" || a.code() == "" {
				t.Fatalf("429 without Retry-After or JSON code: %v %s", a.header, a.body)
			}
		}
	}
	if limited == 0 {
		t.Fatal("20 writes in a row were never limited")
	}
	if a := c.do(http.MethodGet, "/app/watchlist", ""); a.status != http.StatusOK {
		t.Fatalf("GET after the writes were limited = %d %s", a.status, a.body)
	}
}

// FuzzReadWatchlist: any body gives either a valid watchlist (at most 50
// distinct, valid, upper-case symbols) or a contract error, never a panic.
func FuzzReadWatchlist(f *testing.F) {
	for _, s := range []string{`{"symbols":["AAPL","msft"]}`, `{"symbols":[]}`, `{}`, `[`, `{"symbols":["a","A"]}`, `{"symbols":null}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPut, "/app/watchlist", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		list, perr := readWatchlist(httptest.NewRecorder(), r)
		if perr != nil {
			if perr.Status < 400 || perr.Status > 499 || perr.Code == "" {
				t.Fatalf("error %+v", perr)
			}
			return
		}
		if len(list.Symbols) > WatchlistMax {
			t.Fatalf("%d symbols", len(list.Symbols))
		}
		seen := map[string]bool{}
		for _, s := range list.Symbols {
			if !config.ValidSymbol(s) || s != strings.ToUpper(s) || seen[s] {
				t.Fatalf("symbol %q in %q", s, list.Symbols)
			}
			seen[s] = true
		}
	})
}
