package marketsim

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

type quoteBody struct {
	Symbol string  `json:"symbol"`
	Bid    float64 `json:"bid"`
	Ask    float64 `json:"ask"`
	Last   float64 `json:"last"`
	TS     int64   `json:"ts"`
}

type errBody struct {
	Status  string `json:"status"`
	Code    int    `json:"code"`
	Message string `json:"message"`
	Request string `json:"request"`
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	return v
}

func TestQuote(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := start(t, Options{Now: clock.Now})
	c := restClient(t)
	for _, sym := range []string{"AAPL", "BTCUSD", "EURUSD", "BRK.B"} {
		resp, b := get(t, c, s.URL()+"/v1/quote/"+sym+"?apikey=K")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, body %s", sym, resp.StatusCode, b)
		}
		if got, want := resp.Header.Get("Content-Type"), "application/json"; got != want {
			t.Errorf("Content-Type = %q, want %q", got, want)
		}
		q := decode[quoteBody](t, b)
		if q.Symbol != sym || q.Bid <= 0 || q.Ask <= q.Bid || q.Last <= 0 {
			t.Errorf("%s: implausible quote %+v", sym, q)
		}
		if got, want := q.TS, clock.Now().UnixMilli(); got != want {
			t.Errorf("ts = %d, want %d", got, want)
		}
	}
}

func TestQuoteRateLimitHeaders(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := start(t, Options{Now: clock.Now})
	resp, _ := get(t, restClient(t), s.URL()+"/v1/quote/AAPL?apikey=K")
	h := resp.Header
	if got, want := h.Get("X-RateLimit-Limit"), "40"; got != want {
		t.Errorf("X-RateLimit-Limit = %q, want %q", got, want)
	}
	if got, want := h.Get("X-RateLimit-Remaining"), "39"; got != want {
		t.Errorf("X-RateLimit-Remaining = %q, want %q", got, want)
	}
	// One token spent at 20/s: full again 50ms later, rounded up to a second.
	if got, want := h.Get("X-RateLimit-Reset"), strconv.FormatInt(clock.Now().Unix()+1, 10); got != want {
		t.Errorf("X-RateLimit-Reset = %q, want %q", got, want)
	}
}

func TestQuotes(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	resp, b := get(t, restClient(t), s.URL()+"/v1/quotes?symbols=AAPL,MSFT,%20BTCUSD&apikey=K")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, b)
	}
	qs := decode[[]quoteBody](t, b)
	var got []string
	for _, q := range qs {
		got = append(got, q.Symbol)
	}
	if want := "AAPL,MSFT,BTCUSD"; strings.Join(got, ",") != want {
		t.Fatalf("symbols = %v, want %s", got, want)
	}
}

type pageBody struct {
	Results []struct {
		Symbol string `json:"symbol"`
		Type   string `json:"type"`
	} `json:"results"`
	NextURL string `json:"next_url"`
}

func TestSymbolsPagination(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	c := restClient(t)
	next := s.URL() + "/v1/symbols?apikey=K&limit=30"
	seen := map[string]bool{}
	pages := 0
	for next != "" {
		resp, b := get(t, c, next)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, body %s", next, resp.StatusCode, b)
		}
		p := decode[pageBody](t, b)
		for _, r := range p.Results {
			if seen[r.Symbol] || r.Type == "" {
				t.Fatalf("symbol %q repeated or without type", r.Symbol)
			}
			seen[r.Symbol] = true
		}
		pages++
		next = p.NextURL
		if next == "" {
			break
		}
		// The trap: an absolute vendor URL that carries the key, verbatim.
		if !strings.Contains(string(b), `?apikey=K&cursor=`) {
			t.Fatalf("body %s: next_url not written verbatim", b)
		}
		if !strings.HasPrefix(next, s.URL()+"/v1/symbols?") {
			t.Fatalf("next_url %q is not an absolute URL of the vendor", next)
		}
		u, err := url.Parse(next)
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Query().Get("apikey"); got != "K" {
			t.Fatalf("next_url apikey = %q, want the key", got)
		}
	}
	if got, want := len(seen), 100; got != want {
		t.Errorf("symbols = %d, want %d", got, want)
	}
	if got, want := pages, 4; got != want {
		t.Errorf("pages = %d, want %d", got, want)
	}
}

func TestLastRedirectCarriesKey(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	resp, b := get(t, restClient(t), s.URL()+"/v1/last/TSLA?apikey=K")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, body %s", resp.StatusCode, b)
	}
	if got, want := resp.Header.Get("Location"), s.URL()+"/v1/quote/TSLA?apikey=K"; got != want {
		t.Fatalf("Location = %q, want %q", got, want)
	}
}

func TestPublicURL(t *testing.T) {
	t.Parallel()
	s := start(t, Options{PublicURL: "http://vendor.example:9999/"})
	// Requests go to the listener; links name the public host.
	addr := s.URL()
	if !strings.HasPrefix(addr, "http://127.0.0.1:") {
		t.Fatalf("URL = %q, want the listener's", addr)
	}
	c := restClient(t)
	resp, _ := get(t, c, addr+"/v1/last/AAPL?apikey=K")
	if got, want := resp.Header.Get("Location"), "http://vendor.example:9999/v1/quote/AAPL?apikey=K"; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	_, b := get(t, c, addr+"/v1/symbols?apikey=K")
	if p := decode[pageBody](t, b); !strings.HasPrefix(p.NextURL, "http://vendor.example:9999/v1/symbols?") {
		t.Errorf("next_url = %q", p.NextURL)
	}
}

func TestRESTErrors(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	c := restClient(t)
	tooMany := strings.Repeat("AAPL,", maxQueryQuotes+1)
	tests := []struct {
		name, method, path string
		status             int
		message            string
	}{
		{"missing key", "GET", "/v1/quote/AAPL", 401, "invalid api key"},
		{"wrong key", "GET", "/v1/quote/AAPL?apikey=nope", 401, "invalid api key"},
		{"empty key", "GET", "/v1/quotes?apikey=&symbols=AAPL", 401, "invalid api key"},
		{"unknown symbol", "GET", "/v1/quote/NOPE?apikey=K", 404, "unknown symbol"},
		{"lowercase symbol", "GET", "/v1/quote/aapl?apikey=K", 404, "unknown symbol"},
		{"unknown last", "GET", "/v1/last/NOPE?apikey=K", 404, "unknown symbol"},
		{"unknown in quotes", "GET", "/v1/quotes?symbols=AAPL,NOPE&apikey=K", 404, "unknown symbol"},
		{"quotes without symbols", "GET", "/v1/quotes?apikey=K", 400, "symbols parameter required"},
		{"quotes empty symbols", "GET", "/v1/quotes?symbols=,,&apikey=K", 400, "symbols parameter required"},
		{"too many quotes", "GET", "/v1/quotes?apikey=K&symbols=" + tooMany, 400, "too many symbols (at most 200)"},
		{"bad cursor", "GET", "/v1/symbols?apikey=K&cursor=zzz", 400, "invalid cursor"},
		{"cursor past end", "GET", "/v1/symbols?apikey=K&cursor=" + encodeCursor(101), 400, "invalid cursor"},
		{"bad limit", "GET", "/v1/symbols?apikey=K&limit=0", 400, "limit must be 1-100"},
		{"huge limit", "GET", "/v1/symbols?apikey=K&limit=1000", 400, "limit must be 1-100"},
		{"unknown path", "GET", "/v1/nothing?apikey=K", 404, "not found"},
		{"root", "GET", "/?apikey=K", 404, "not found"},
		{"empty symbol segment", "GET", "/v1/quote/?apikey=K", 404, "not found"},
		{"post", "POST", "/v1/quote/AAPL?apikey=K", 405, "method not allowed"},
		{"delete", "DELETE", "/v1/symbols?apikey=K", 405, "method not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := do(t, c, tt.method, s.URL()+tt.path)
			if got := resp.StatusCode; got != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", got, tt.status, b)
			}
			e := decode[errBody](t, b)
			if e.Status != "error" || e.Code != tt.status || e.Message != tt.message {
				t.Fatalf("body = %+v, want status error, code %d, message %q", e, tt.status, tt.message)
			}
		})
	}
}

func TestUnauthorizedEchoesURL(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	c := restClient(t)
	for _, q := range []string{"?apikey=WRONG-KEY&x=a%26b", ""} {
		want := s.URL() + "/v1/quote/AAPL" + q
		resp, b := get(t, c, want)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status = %d", resp.StatusCode)
		}
		// The trap: the full URL, key included, in body and header.
		if got := decode[errBody](t, b).Request; got != want {
			t.Errorf("request = %q, want %q", got, want)
		}
		if got := resp.Header.Get("X-Request-Url"); got != want {
			t.Errorf("X-Request-Url = %q, want %q", got, want)
		}
	}
	if got, want := s.Stats().Unauthorized, int64(2); got != want {
		t.Errorf("Stats.Unauthorized = %d, want %d", got, want)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := start(t, Options{Keys: []string{"K", "K2"}, RESTRate: 1, RESTBurst: 3, Now: clock.Now})
	c := restClient(t)
	u := s.URL() + "/v1/quote/AAPL?apikey=K"
	for i := range 3 {
		resp, _ := get(t, c, u)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
		if got, want := resp.Header.Get("X-RateLimit-Remaining"), strconv.Itoa(2-i); got != want {
			t.Errorf("request %d: remaining = %q, want %q", i, got, want)
		}
	}
	resp, b := get(t, c, u)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status = %d, want 429", resp.StatusCode)
	}
	h := resp.Header
	for name, want := range map[string]string{
		"Retry-After":           "1",
		"X-RateLimit-Limit":     "3",
		"X-RateLimit-Remaining": "0",
		"X-RateLimit-Reset":     strconv.FormatInt(ceilUnix(clock.Now().Add(3*time.Second)), 10),
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	e := decode[errBody](t, b)
	if e.Code != 429 || !strings.Contains(e.Message, "K") {
		t.Errorf("body = %+v, want code 429 and a message naming the key", e)
	}
	// The budget is per key.
	if resp, _ := get(t, c, s.URL()+"/v1/quote/AAPL?apikey=K2"); resp.StatusCode != http.StatusOK {
		t.Errorf("other key: status %d", resp.StatusCode)
	}
	clock.Advance(time.Second)
	if resp, _ := get(t, c, u); resp.StatusCode != http.StatusOK {
		t.Errorf("after refill: status %d", resp.StatusCode)
	}
	if got, want := s.Stats().RateLimited, int64(1); got != want {
		t.Errorf("Stats.RateLimited = %d, want %d", got, want)
	}

	// Changing the limit at run time applies to existing buckets.
	if err := s.SetRESTLimit(-1, 0); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if resp, _ := get(t, c, u); resp.StatusCode != http.StatusOK || resp.Header.Get("X-RateLimit-Limit") != "" {
			t.Fatalf("unlimited: status %d, limit header %q", resp.StatusCode, resp.Header.Get("X-RateLimit-Limit"))
		}
	}
}

func TestErrorsIn200(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := start(t, Options{ErrorsIn200: true, RESTBurst: 1, Now: clock.Now})
	c := restClient(t)
	tests := []struct {
		path string
		code int
	}{
		{"/v1/quote/AAPL?apikey=bad", 401},
		{"/v1/quote/AAPL?apikey=K", 0}, // spends the only token
		{"/v1/quote/AAPL?apikey=K", 429},
	}
	for _, tt := range tests {
		resp, b := get(t, c, s.URL()+tt.path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, want 200 in errors-in-200 mode", tt.path, resp.StatusCode)
		}
		if tt.code == 0 {
			continue
		}
		if e := decode[errBody](t, b); e.Status != "error" || e.Code != tt.code {
			t.Fatalf("%s: body %+v, want status error, code %d", tt.path, e, tt.code)
		}
	}
	clock.Advance(time.Minute)
	if resp, b := get(t, c, s.URL()+"/v1/quote/NOPE?apikey=K"); resp.StatusCode != http.StatusOK || decode[errBody](t, b).Code != 404 {
		t.Fatalf("unknown symbol: status %d, body %s", resp.StatusCode, b)
	}
	s.SetErrorsIn200(false)
	if resp, _ := get(t, c, s.URL()+"/v1/quote/AAPL?apikey=bad"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("mode off: status %d, want 401", resp.StatusCode)
	}
}

func TestHead(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	resp, b := do(t, restClient(t), http.MethodHead, s.URL()+"/v1/quote/AAPL?apikey=K")
	if resp.StatusCode != http.StatusOK || len(b) != 0 {
		t.Fatalf("HEAD: status %d, body %q", resp.StatusCode, b)
	}
}

func TestInjectedLatency(t *testing.T) {
	t.Parallel()
	s := start(t, Options{Latency: 50 * time.Millisecond})
	c := restClient(t)
	begin := time.Now()
	if resp, _ := get(t, c, s.URL()+"/v1/quote/AAPL?apikey=K"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if el := time.Since(begin); el < 50*time.Millisecond {
		t.Fatalf("answered after %v, before the injected latency", el)
	}
	if err := s.SetLatency(0); err != nil {
		t.Fatal(err)
	}
}

func TestInjectedFailures(t *testing.T) {
	t.Parallel()
	s := start(t, Options{FailRate: 1})
	c := restClient(t)
	resp, b := get(t, c, s.URL()+"/v1/quote/AAPL?apikey=K")
	if resp.StatusCode != http.StatusServiceUnavailable || decode[errBody](t, b).Code != 503 {
		t.Fatalf("status %d, body %s; want 503", resp.StatusCode, b)
	}
	if err := s.SetFailRate(0); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, c, s.URL()+"/v1/quote/AAPL?apikey=K"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after SetFailRate(0): status %d", resp.StatusCode)
	}
	if got := s.Stats().InjectedFailures; got != 1 {
		t.Errorf("Stats.InjectedFailures = %d, want 1", got)
	}
}

func TestInjectedReset(t *testing.T) {
	t.Parallel()
	s := start(t, Options{ResetRate: 1})
	c := restClient(t)
	resp, err := c.Get(s.URL() + "/v1/quote/AAPL?apikey=K")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got status %d, want a transport error", resp.StatusCode)
	}
	if got := s.Stats().InjectedResets; got < 1 {
		t.Errorf("Stats.InjectedResets = %d, want at least 1", got)
	}
	if err := s.SetResetRate(0); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, c, s.URL()+"/v1/quote/AAPL?apikey=K"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after SetResetRate(0): status %d", resp.StatusCode)
	}
}

func TestSetKeysREST(t *testing.T) {
	t.Parallel()
	s := start(t, Options{Keys: []string{"old"}})
	c := restClient(t)
	if resp, _ := get(t, c, s.URL()+"/v1/quote/AAPL?apikey=old"); resp.StatusCode != http.StatusOK {
		t.Fatalf("old key before rotation: %d", resp.StatusCode)
	}
	if err := s.SetKeys("new"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, c, s.URL()+"/v1/quote/AAPL?apikey=old"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old key after rotation: %d, want 401", resp.StatusCode)
	}
	if resp, _ := get(t, c, s.URL()+"/v1/quote/AAPL?apikey=new"); resp.StatusCode != http.StatusOK {
		t.Fatalf("new key: %d", resp.StatusCode)
	}
	if err := s.SetKeys(); !errors.Is(err, ErrNoKeys) {
		t.Errorf("SetKeys() = %v, want ErrNoKeys", err)
	}
	err := s.SetKeys("ok", "sec ret")
	if !errors.Is(err, ErrBadKey) || strings.Contains(err.Error(), "sec ret") {
		t.Errorf("SetKeys(bad) = %v, want ErrBadKey not naming the key", err)
	}
}

func TestStatsByRoute(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	c := restClient(t)
	for _, p := range []string{"/v1/quote/AAPL", "/v1/quote/MSFT", "/v1/quotes?symbols=AAPL", "/v1/symbols", "/v1/last/AAPL", "/nope"} {
		sep := "?"
		if strings.Contains(p, "?") {
			sep = "&"
		}
		get(t, c, s.URL()+p+sep+"apikey=K")
	}
	st := s.Stats()
	want := map[string]int64{RouteQuote: 2, RouteQuotes: 1, RouteSymbols: 1, RouteLast: 1, RouteOther: 1}
	for k, v := range want {
		if st.RESTByRoute[k] != v {
			t.Errorf("RESTByRoute[%q] = %d, want %d", k, st.RESTByRoute[k], v)
		}
	}
	if st.RESTRequests != 6 || st.NotFound != 1 {
		t.Errorf("RESTRequests = %d, NotFound = %d; want 6, 1", st.RESTRequests, st.NotFound)
	}
}

func TestSeededPrices(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	quotes := func(seed int64) string {
		s := newServer(t, Options{Seed: seed, Now: clock.Now, RESTRate: -1})
		var out strings.Builder
		for range 5 {
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/v1/quotes?symbols=AAPL,EURUSD&apikey=K", nil))
			out.WriteString(rec.Body.String())
		}
		return out.String()
	}
	a, b, c := quotes(7), quotes(7), quotes(8)
	if a != b {
		t.Errorf("same seed, different prices:\n%s\n%s", a, b)
	}
	if a == c {
		t.Errorf("different seeds, same prices")
	}
}

func TestDefaultSymbols(t *testing.T) {
	t.Parallel()
	syms := DefaultSymbols()
	if len(syms) != 100 {
		t.Fatalf("len = %d, want 100", len(syms))
	}
	seen := map[string]bool{}
	for _, s := range syms {
		if seen[s] || !validSymbol(s) {
			t.Errorf("symbol %q repeated or invalid", s)
		}
		seen[s] = true
	}
	for _, want := range []string{"AAPL", "MSFT", "TSLA", "SPY", "BTCUSD", "EURUSD"} {
		if !seen[want] {
			t.Errorf("missing %s", want)
		}
	}
	syms[0] = "CHANGED"
	if DefaultSymbols()[0] != "AAPL" {
		t.Error("DefaultSymbols returns shared state")
	}
}

func BenchmarkQuoteHandler(b *testing.B) {
	s := newServer(b, Options{})
	h := s.Handler()
	req := httptest.NewRequest(http.MethodGet, "/v1/quote/AAPL?apikey=K", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusTooManyRequests {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

func BenchmarkQuoteHandlerUnlimited(b *testing.B) {
	s := newServer(b, Options{RESTRate: -1})
	h := s.Handler()
	req := httptest.NewRequest(http.MethodGet, "/v1/quote/AAPL?apikey=K", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
