package proxy

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/metrics"
)

// vendorShape is one documented answer of a vendor: its status, headers
// and body. In the body {KEY} becomes the key the vendor received and
// {URL} the full request URL (as vendors echo it, key included).
type vendorShape struct {
	name    string
	status  int
	header  map[string]string
	body    string
	want    int    // status the browser gets
	code    string // contract error code; "" when the answer passes
	contain string // the browser's body contains this (passing answers)
}

// presetCase replays a vendor's REST shapes through its preset.
type presetCase struct {
	preset string
	path   string        // what the browser asks, under /api/{preset}
	ok     vendorShape   // the documented success answer
	errs   []vendorShape // documented error answers
	denied string        // a vendor path outside the preset's routes
}

var presetCases = []presetCase{
	{
		preset: "finage",
		path:   "/last/stock/AAPL",
		ok: vendorShape{status: 200, body: `{"symbol":"AAPL","ask":191.3,"bid":191.2,"asize":2,"bsize":1,"timestamp":1733241600123}`,
			contain: `"symbol":"AAPL"`},
		errs: []vendorShape{
			{name: "bad key", status: 401, body: `{"error":"Please check your API key. Given key: {KEY}"}`, want: 502, code: "upstream_auth"},
			{name: "plan", status: 403, body: `{"error":"Your plan does not cover this endpoint"}`, want: 502, code: "upstream_auth"},
			{name: "limit", status: 429, header: map[string]string{"Retry-After": "30"}, body: `{"error":"Rate limit exceeded"}`, want: 429, code: "upstream_rate_limited"},
		},
		denied: "/account/usage",
	},
	{
		preset: "polygon",
		path:   "/v3/reference/tickers?market=stocks&limit=1",
		ok: vendorShape{status: 200,
			body:    `{"results":[{"ticker":"A","name":"Agilent"}],"status":"OK","request_id":"e7a9","count":1,"next_url":"{BASE}/v3/reference/tickers?cursor=YWN0aXZl&apiKey={KEY}"}`,
			contain: `"next_url":"/api/polygon/v3/reference/tickers?cursor=YWN0aXZl"`},
		errs: []vendorShape{
			{name: "bad key", status: 401, body: `{"status":"ERROR","request_id":"9c2","error":"Unknown API Key"}`, want: 502, code: "upstream_auth"},
			{name: "not entitled", status: 403, body: `{"status":"NOT_AUTHORIZED","request_id":"1f","message":"You are not entitled to this data. Please upgrade your plan at https://polygon.io/pricing"}`, want: 502, code: "upstream_auth"},
			{name: "limit", status: 429, body: `{"status":"ERROR","request_id":"2a","error":"You've exceeded the maximum requests per minute, please wait or upgrade your subscription to continue. https://polygon.io/pricing"}`, want: 429, code: "upstream_rate_limited"},
			{name: "not found", status: 404, body: `{"status":"NOT_FOUND","request_id":"5b","message":"Data not found."}`, want: 404, contain: "NOT_FOUND"},
			{name: "bad request", status: 400, body: `{"status":"ERROR","request_id":"6c","error":"Could not parse the time parameter: 'from'. Request {URL}"}`, want: 400, contain: "Could not parse"},
		},
		denied: "/v1/marketstatus/../../admin",
	},
	{
		preset: "massive",
		path:   "/v2/last/trade/AAPL",
		ok: vendorShape{status: 200, body: `{"request_id":"f05","results":{"T":"AAPL","p":191.25,"s":100,"t":1733241600123000000},"status":"OK"}`,
			contain: `"T":"AAPL"`},
		errs: []vendorShape{
			{name: "bad key", status: 401, body: `{"status":"ERROR","request_id":"9c2","error":"Unknown API Key"}`, want: 502, code: "upstream_auth"},
			{name: "server", status: 502, body: `<html>Bad Gateway</html>`, want: 502, code: "upstream_error"},
		},
		denied: "/v4/unknown",
	},
	{
		preset: "alpaca",
		path:   "/v2/stocks/AAPL/quotes/latest?feed=iex",
		ok: vendorShape{status: 200, body: `{"symbol":"AAPL","quote":{"t":"2026-12-04T15:59:59.9Z","ax":"V","ap":191.3,"as":2,"bx":"V","bp":191.2,"bs":1,"c":["R"],"z":"C"}}`,
			contain: `"quote"`},
		errs: []vendorShape{
			{name: "bad key", status: 401, body: `{"code":40110000,"message":"request is not authorized"}`, want: 502, code: "upstream_auth"},
			{name: "forbidden", status: 403, body: `{"message":"subscription does not permit querying recent SIP data"}`, want: 502, code: "upstream_auth"},
			{name: "limit", status: 429, header: map[string]string{"X-Ratelimit-Reset": "{RESET}"}, body: `{"message":"too many requests."}`, want: 429, code: "upstream_rate_limited"},
			{name: "bad symbol", status: 400, body: `{"message":"invalid symbol: $$$"}`, want: 400, contain: "invalid symbol"},
		},
		denied: "/v2/account",
	},
	{
		preset: "finnhub",
		path:   "/quote?symbol=AAPL",
		ok: vendorShape{status: 200, body: `{"c":261.74,"d":0.37,"dp":0.1416,"h":263.31,"l":260.68,"o":261.07,"pc":261.37,"t":1733241600}`,
			contain: `"c":261.74`},
		errs: []vendorShape{
			{name: "bad key", status: 401, body: `{"error":"Invalid API key."}`, want: 502, code: "upstream_auth"},
			{name: "no access", status: 403, body: `{"error":"You don't have access to this resource."}`, want: 502, code: "upstream_auth"},
			{name: "limit", status: 429, body: `{"error":"API limit reached. Please try again later. Remaining Limit: 0"}`, want: 429, code: "upstream_rate_limited"},
		},
		denied: "/webhook/add",
	},
	{
		preset: "twelvedata",
		path:   "/quote?symbol=AAPL",
		ok: vendorShape{status: 200, body: `{"symbol":"AAPL","name":"Apple Inc","exchange":"NASDAQ","currency":"USD","datetime":"2026-12-04","close":"191.25","is_market_open":false}`,
			contain: `"name":"Apple Inc"`},
		errs: []vendorShape{
			// Twelve Data answers errors with HTTP 200 and the code inside.
			{name: "bad key in 200", status: 200, body: `{"code":401,"message":"**apikey** parameter is incorrect or not specified. You can get your free API key instantly following this link: https://twelvedata.com/pricing.","status":"error"}`, want: 502, code: "upstream_auth"},
			{name: "credits in 200", status: 200, body: `{"code":429,"message":"You have run out of API credits for the current minute. 9 API credits were used, with the current limit being 8.","status":"error"}`, want: 429, code: "upstream_rate_limited"},
			{name: "not found in 200", status: 200, body: `{"code":404,"message":"**symbol** not found: NOPE. Please specify it correctly according to API Documentation.","status":"error","meta":{"url":"{URL}"}}`, want: 404, contain: "not found: NOPE"},
			{name: "no code in 200", status: 200, body: `{"status":"error","message":"Internal error"}`, want: 502, code: "upstream_error"},
			{name: "real 500", status: 500, body: `{"code":500,"message":"Internal Server Error","status":"error"}`, want: 502, code: "upstream_error"},
		},
		denied: "/api_usage",
	},
	{
		preset: "eodhd",
		path:   "/real-time/AAPL.US?fmt=json",
		ok: vendorShape{status: 200, body: `{"code":"AAPL.US","timestamp":1733241600,"gmtoffset":0,"open":190.1,"high":192.2,"low":189.9,"close":191.25,"volume":41234567,"previousClose":190.5,"change":0.75,"change_p":0.3937}`,
			contain: `"code":"AAPL.US"`},
		errs: []vendorShape{
			{name: "bad key", status: 401, body: `{"message":"Unauthenticated.","url":"{URL}"}`, want: 502, code: "upstream_auth"},
			{name: "limit", status: 429, header: map[string]string{"Retry-After": "60"}, body: `Too Many Requests`, want: 429, code: "upstream_rate_limited"},
			{name: "payment", status: 402, body: `{"message":"Payment required: your plan does not include this data, api_token={KEY}"}`, want: 402, contain: "Payment required"},
			{name: "not found", status: 404, body: `Ticker Not Found.`, want: 404, contain: "Ticker Not Found"},
		},
		denied: "/user",
	},
}

// presetFake is a local vendor that checks the preset's key placements
// and answers one vendorShape.
type presetFake struct {
	srv  *httptest.Server
	base string // the fake's base URL with the preset's base path

	mu    sync.Mutex
	shape vendorShape
	calls int
	last  *http.Request
}

func newPresetFake(t *testing.T, up config.Upstream, keys []string) *presetFake {
	t.Helper()
	ref, err := url.Parse(up.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	f := &presetFake{}
	refs := up.KeyRefs()
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls++
		f.last = r.Clone(r.Context())
		shape := f.shape
		f.mu.Unlock()
		// The key must be where the preset puts it, once, and nowhere else.
		used := ""
		for i, k := range refs {
			kind, name := k.KeySlot()
			got := ""
			switch kind {
			case "query":
				if vs := r.URL.Query()[name]; len(vs) == 1 {
					got = vs[0]
				}
			case "header":
				if vs := r.Header.Values(name); len(vs) == 1 {
					got = vs[0]
				}
			case "bearer":
				got = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			}
			if got != keys[i] {
				shape = vendorShape{status: 401, body: `{"error":"invalid key","url":"{URL}"}`}
			}
			used = got
		}
		replace := strings.NewReplacer("{KEY}", used, "{URL}", f.srv.URL+r.URL.RequestURI(), "{BASE}", f.base, "{RESET}", "1")
		for k, v := range shape.header {
			w.Header().Set(k, replace.Replace(v))
		}
		if strings.HasPrefix(shape.body, "{") {
			w.Header().Set("Content-Type", "application/json")
		}
		w.Header().Set("Set-Cookie", "vendor=1; Path=/")
		w.WriteHeader(shape.status)
		_, _ = io.WriteString(w, replace.Replace(shape.body))
	}))
	t.Cleanup(f.srv.Close)
	f.base = f.srv.URL + strings.TrimSuffix(ref.Path, "/")
	return f
}

// TestPresetsReplayVendorShapes sends every preset's documented answers
// through the preset: key placement, routes, error mapping, rewriting,
// and no key in anything the browser or the log gets.
func TestPresetsReplayVendorShapes(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, tc := range presetCases {
		seen[tc.preset] = true
		t.Run(tc.preset, func(t *testing.T) {
			t.Parallel()
			resolved := config.Upstream{Preset: tc.preset, Key: config.KeyRef{Secret: "K0"}}
			keys := []string{"key0-" + tc.preset + "-0123456789abcdef"}
			if tc.preset == "alpaca" {
				resolved = config.Upstream{Preset: tc.preset, Keys: []config.KeyRef{{Secret: "K0"}, {Secret: "K1"}}}
				keys = append(keys, "key1-alpaca-SECRET-fedcba9876543210")
			}
			resolved = resolved.Resolved()
			if !strings.HasPrefix(resolved.BaseURL, "https://") {
				t.Fatalf("preset base URL %q is not https", resolved.BaseURL)
			}
			run := func(t *testing.T, shape vendorShape, path string, hdr map[string]string) (response, *presetFake, string) {
				t.Helper()
				f := newPresetFake(t, resolved, keys)
				f.shape = shape
				up := config.Upstream{Preset: tc.preset, BaseURL: f.base}
				if len(keys) == 1 {
					up.Key = config.KeyRef{Secret: "K0"}
				} else {
					up.Keys = []config.KeyRef{{Secret: "K0"}, {Secret: "K1"}}
				}
				sec := newFakeSecrets("K0", keys[0])
				if len(keys) > 1 {
					sec.set("K1", keys[1])
				}
				logs := &syncBuffer{}
				p, err := New(Config{
					Upstreams: map[string]config.Upstream{tc.preset: up},
					Secrets:   sec,
					Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
					Metrics:   metrics.Discard(),
				})
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				req := httptest.NewRequest(http.MethodGet, "/api/"+tc.preset+path, nil)
				req.Header.Set("Cookie", "tickgate=browser-session")
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				rec := httptest.NewRecorder()
				p.ServeHTTP(rec, req)
				res := rec.Result()
				body, _ := io.ReadAll(res.Body)
				r := response{status: res.StatusCode, header: res.Header, body: string(body)}
				assertNoKey(t, "browser answer", fmt.Sprint(r.header)+r.body, keys...)
				assertNoKey(t, "logs", logs.String(), keys...)
				if r.header.Get("Set-Cookie") != "" {
					t.Error("vendor Set-Cookie passed on")
				}
				return r, f, logs.String()
			}

			// Success, with client attempts at every key slot.
			evil := map[string]string{}
			evilPath := tc.path
			for _, k := range resolved.KeyRefs() {
				switch kind, name := k.KeySlot(); kind {
				case "query":
					sep := "?"
					if strings.Contains(evilPath, "?") {
						sep = "&"
					}
					evilPath += sep + url.QueryEscape(name) + "=client-key"
				default:
					evil[name] = "client-key"
				}
			}
			r, f, _ := run(t, tc.ok, evilPath, evil)
			if r.status != 200 || !strings.Contains(r.body, tc.ok.contain) {
				t.Errorf("success: %d %q, want 200 containing %q", r.status, r.body, tc.ok.contain)
			}
			if f.calls != 1 || f.last.Header.Get("Cookie") != "" {
				t.Errorf("vendor: %d calls, Cookie %q", f.calls, f.last.Header.Get("Cookie"))
			}
			for k, v := range resolved.Headers {
				if f.last.Header.Get(k) != v {
					t.Errorf("preset header %s = %q, want %q", k, f.last.Header.Get(k), v)
				}
			}
			// Outside the preset's routes: 404, no vendor call.
			r, f, _ = run(t, tc.ok, tc.denied, nil)
			wantError(t, r, http.StatusNotFound, "not_found")
			if f.calls != 0 {
				t.Errorf("%s reached the vendor", tc.denied)
			}
			for _, shape := range tc.errs {
				t.Run(shape.name, func(t *testing.T) {
					r, f, _ := run(t, shape, tc.path, nil)
					if shape.code != "" {
						wantError(t, r, shape.want, shape.code)
					} else if r.status != shape.want || !strings.Contains(r.body, shape.contain) {
						t.Errorf("%d %q, want %d containing %q", r.status, r.body, shape.want, shape.contain)
					}
					if shape.code == "upstream_rate_limited" && r.header.Get("Retry-After") == "" {
						t.Error("429 without Retry-After")
					}
					// One call: 401/403 re-read the key, which has not
					// changed, so there is nothing to retry with.
					if f.calls != 1 {
						t.Errorf("%d vendor calls, want 1", f.calls)
					}
				})
			}
		})
	}
	for _, name := range []string{"finage", "polygon", "massive", "alpaca", "finnhub", "twelvedata", "eodhd"} {
		if !seen[name] {
			t.Errorf("preset %s has no replay case", name)
		}
	}
}
