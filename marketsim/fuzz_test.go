package marketsim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseClientMessage(f *testing.F) {
	for _, seed := range []string{
		`{"action":"auth","key":"K"}`,
		`{"action":"auth","params":"K"}`,
		`{"action":"subscribe","symbols":["AAPL","MSFT"]}`,
		`{"action":"unsubscribe","symbols":"AAPL, MSFT"}`,
		`{"action":"subscribe","symbols":[1]}`,
		`{"action":"subscribe","symbols":null}`,
		`{"action":"subscribe","symbols":[""," "]}`,
		`{"action":` + "\x00",
		`[]`, ``, `   {}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseClientMessage(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), errBadMessage.Error()+":") {
				t.Fatalf("error %q does not wrap errBadMessage", err)
			}
			return
		}
		if m.Action == "" {
			t.Fatal("accepted a message without action")
		}
		if m.Action == "subscribe" || m.Action == "unsubscribe" {
			if len(m.Symbols) == 0 {
				t.Fatal("accepted a subscription without symbols")
			}
			for _, s := range m.Symbols {
				if s == "" {
					t.Fatal("accepted an empty symbol")
				}
			}
		}
	})
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(20))
	f.Add("")
	f.Add("bzox")
	f.Add(strings.Repeat("A", 100))
	f.Fuzz(func(t *testing.T, c string) {
		n, err := decodeCursor(c)
		if err != nil {
			return
		}
		if n < 1 {
			t.Fatalf("cursor %q decoded to %d", c, n)
		}
		if m, err := decodeCursor(encodeCursor(n)); err != nil || m != n {
			t.Fatalf("round trip of %d: %d, %v", n, m, err)
		}
	})
}

// FuzzREST sends arbitrary paths and queries: every answer is a known
// status with a JSON body, never a panic.
func FuzzREST(f *testing.F) {
	for _, seed := range []string{
		"/v1/quote/AAPL?apikey=K", "/v1/quotes?symbols=A,,B&apikey=K", "/v1/symbols?cursor=%zz&apikey=K",
		"/v1/last/..%2F?apikey=K", "/v1/symbols?limit=-1&apikey=K", "/v1/quote/AAPL?apikey=K&apikey=X",
	} {
		f.Add(seed)
	}
	s, err := New(Options{Keys: []string{"K"}, RESTRate: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	h := s.Handler()
	f.Fuzz(func(t *testing.T, target string) {
		if !strings.HasPrefix(target, "/") || !utf8.ValidString(target) || strings.ContainsAny(target, " \r\n\t#") {
			return
		}
		req, err := http.NewRequest(http.MethodGet, "http://vendor.test"+target, nil)
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 301, 302, 307, 308, 400, 401, 404, 405:
		default:
			t.Fatalf("%s: status %d", target, rec.Code)
		}
	})
}
