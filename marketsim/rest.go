package marketsim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// routes builds the vendor's mux. Each REST route checks, in order: fault
// injection, method, api key (401), budget (429), then answers.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(RouteQuote, s.rest(rQuote, s.serveQuote))
	mux.Handle(RouteQuotes, s.rest(rQuotes, s.serveQuotes))
	mux.Handle(RouteSymbols, s.rest(rSymbols, s.serveSymbols))
	mux.Handle(RouteLast, s.rest(rLast, s.serveLast))
	mux.HandleFunc("/v1/stream", s.serveStream)
	mux.Handle("/", s.rest(rOther, func(w http.ResponseWriter, r *http.Request, _ string) {
		s.stats.notFound.Add(1)
		s.writeError(w, r, http.StatusNotFound, "not found", nil)
	}))
	return mux
}

// vendorError is the vendor's error body.
type vendorError struct {
	Status  string `json:"status"`
	Code    int    `json:"code"`
	Message string `json:"message"`
	// Request echoes the full request URL, key included: the trap a proxy
	// must scrub.
	Request string `json:"request,omitempty"`
}

func (s *Server) rest(route int, h func(http.ResponseWriter, *http.Request, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.stats.rest.Add(1)
		s.stats.byRoute[route].Add(1)
		if !s.inject(w, r) {
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			s.writeError(w, r, http.StatusMethodNotAllowed, "method not allowed", nil)
			return
		}
		key := r.URL.Query().Get("apikey")
		if !s.validKey(key) {
			s.stats.unauthorized.Add(1)
			echo := requestURL(r)
			w.Header().Set("X-Request-Url", echo)
			s.log.Debug("marketsim: invalid api key", "path", r.URL.Path)
			s.writeError(w, r, http.StatusUnauthorized, "invalid api key", &vendorError{Request: echo})
			return
		}
		if !s.allow(w, r, key) {
			return
		}
		h(w, r, key)
	})
}

// inject applies latency, reset and failure injection; false means the
// request has been answered (or its connection reset).
func (s *Server) inject(w http.ResponseWriter, r *http.Request) bool {
	if d := time.Duration(s.latency.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false
		case <-s.done:
			t.Stop()
			s.writeError(w, r, http.StatusServiceUnavailable, "server shutting down", nil)
			return false
		}
	}
	if s.chance(math.Float64frombits(s.resetRate.Load())) {
		s.stats.resets.Add(1)
		resetConn(w)
		return false
	}
	if s.chance(math.Float64frombits(s.failRate.Load())) {
		s.stats.failures.Add(1)
		s.writeError(w, r, http.StatusServiceUnavailable, "service unavailable", nil)
		return false
	}
	return true
}

// resetConn drops the request's connection with a TCP RST and no answer.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2, recorders): ErrAbortHandler is net/http's
		// own way to abort a response; the server does not log it.
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// allow spends one token of key's budget and sets the X-RateLimit-*
// headers; on refusal it answers 429 with Retry-After and false.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, key string) bool {
	d := s.budget.take(key, s.now())
	if d.unlimited {
		return true
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(d.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(d.remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(ceilUnix(d.reset), 10))
	if d.ok {
		return true
	}
	s.stats.rateLimited.Add(1)
	retry := int64(math.Ceil(d.retryAfter.Seconds()))
	if retry < 1 {
		retry = 1
	}
	h.Set("Retry-After", strconv.FormatInt(retry, 10))
	// The body names the key, as some vendors do: a proxy must scrub it.
	s.writeError(w, r, http.StatusTooManyRequests, "rate limit exceeded for api key "+key, nil)
	return false
}

func ceilUnix(t time.Time) int64 {
	u := t.Unix()
	if t.Nanosecond() > 0 {
		u++
	}
	return u
}

// writeError writes a vendor error body. In "errors in 200" mode a 4xx is
// sent with HTTP 200, the real code staying in the body.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, code int, msg string, extra *vendorError) {
	body := vendorError{Status: "error", Code: code, Message: msg}
	if extra != nil {
		body.Request = extra.Request
	}
	status := code
	if code >= 400 && code < 500 && s.errorsIn200.Load() {
		status = http.StatusOK
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep the echoed URL verbatim, key and all
	_ = enc.Encode(body)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// requestURL is the absolute URL of r as received, query (and key)
// included.
func requestURL(r *http.Request) string {
	return schemeOf(r) + "://" + r.Host + r.URL.RequestURI()
}

func schemeOf(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// baseURL is the absolute base for links: PublicURL, or the request's own
// scheme and host.
func (s *Server) baseURL(r *http.Request) string {
	if s.opts.PublicURL != "" {
		return s.opts.PublicURL
	}
	return schemeOf(r) + "://" + r.Host
}

func writeJSON(w http.ResponseWriter, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (s *Server) unknownSymbol(w http.ResponseWriter, r *http.Request) {
	s.stats.notFound.Add(1)
	s.writeError(w, r, http.StatusNotFound, "unknown symbol", nil)
}

// serveQuote answers GET /v1/quote/{sym}.
func (s *Server) serveQuote(w http.ResponseWriter, r *http.Request, _ string) {
	sym := s.bySym[r.PathValue("sym")]
	if sym == nil {
		s.unknownSymbol(w, r)
		return
	}
	bp := s.bufs.Get().(*[]byte)
	b := sym.appendQuote((*bp)[:0], s.now().UnixMilli())
	writeJSON(w, b)
	*bp = b
	s.bufs.Put(bp)
}

// serveQuotes answers GET /v1/quotes?symbols=A,B with an array of quotes.
func (s *Server) serveQuotes(w http.ResponseWriter, r *http.Request, _ string) {
	list := splitCSV(r.URL.Query().Get("symbols"))
	switch {
	case len(list) == 0:
		s.writeError(w, r, http.StatusBadRequest, "symbols parameter required", nil)
		return
	case len(list) > maxQueryQuotes:
		s.writeError(w, r, http.StatusBadRequest, "too many symbols (at most "+strconv.Itoa(maxQueryQuotes)+")", nil)
		return
	}
	syms := make([]*symbol, len(list))
	for i, name := range list {
		if syms[i] = s.bySym[name]; syms[i] == nil {
			s.unknownSymbol(w, r)
			return
		}
	}
	ts := s.now().UnixMilli()
	bp := s.bufs.Get().(*[]byte)
	b := append((*bp)[:0], '[')
	for i, sym := range syms {
		if i > 0 {
			b = append(b, ',')
		}
		b = sym.appendQuote(b, ts)
	}
	b = append(b, ']')
	writeJSON(w, b)
	*bp = b
	s.bufs.Put(bp)
}

// splitCSV splits "A, B,,C" into [A B C].
func splitCSV(v string) []string {
	var out []string
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

type symbolInfo struct {
	Symbol string `json:"symbol"`
	Type   string `json:"type"`
}

type symbolPage struct {
	Results []symbolInfo `json:"results"`
	// NextURL is absolute and carries the key, like Polygon's: the proxy
	// must rewrite or drop it. Absent on the last page.
	NextURL string `json:"next_url,omitempty"`
}

// serveSymbols answers GET /v1/symbols?cursor=C&limit=N, one page of the
// universe.
func (s *Server) serveSymbols(w http.ResponseWriter, r *http.Request, key string) {
	q := r.URL.Query()
	limit := defaultPageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			s.writeError(w, r, http.StatusBadRequest, "limit must be 1-"+strconv.Itoa(maxPageSize), nil)
			return
		}
		limit = n
	}
	offset := 0
	if c := q.Get("cursor"); c != "" {
		n, err := decodeCursor(c)
		if err != nil || n > len(s.syms) {
			s.writeError(w, r, http.StatusBadRequest, "invalid cursor", nil)
			return
		}
		offset = n
	}
	end := min(offset+limit, len(s.syms))
	page := symbolPage{Results: make([]symbolInfo, 0, end-offset)}
	for _, sym := range s.syms[offset:end] {
		page.Results = append(page.Results, symbolInfo{Symbol: sym.name, Type: sym.kind})
	}
	if end < len(s.syms) {
		v := url.Values{}
		v.Set("apikey", key)
		v.Set("cursor", encodeCursor(end))
		v.Set("limit", strconv.Itoa(limit))
		page.NextURL = s.baseURL(r) + "/v1/symbols?" + v.Encode()
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// next_url verbatim: "&", not "\u0026", as vendors write it.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(page); err != nil {
		// Cannot happen: the page holds plain strings.
		s.writeError(w, r, http.StatusInternalServerError, "internal error", nil)
		return
	}
	writeJSON(w, buf.Bytes())
}

// serveLast answers GET /v1/last/{sym} with a 302 to the absolute quote
// URL, key included: the redirect a proxy must not follow blindly.
func (s *Server) serveLast(w http.ResponseWriter, r *http.Request, key string) {
	sym := s.bySym[r.PathValue("sym")]
	if sym == nil {
		s.unknownSymbol(w, r)
		return
	}
	v := url.Values{}
	v.Set("apikey", key)
	http.Redirect(w, r, s.baseURL(r)+"/v1/quote/"+sym.name+"?"+v.Encode(), http.StatusFound)
}

const cursorPrefix = "o:"

func encodeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.Itoa(offset)))
}

// decodeCursor parses a cursor of encodeCursor. Cursors come from clients:
// anything else is errBadCursor.
func decodeCursor(c string) (int, error) {
	if len(c) > 64 {
		return 0, errBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, errBadCursor
	}
	digits, ok := strings.CutPrefix(string(b), cursorPrefix)
	if !ok || digits == "" || len(digits) > 9 {
		return 0, errBadCursor
	}
	n := 0
	for i := 0; i < len(digits); i++ {
		d := digits[i]
		if d < '0' || d > '9' {
			return 0, errBadCursor
		}
		n = n*10 + int(d-'0')
	}
	if n < 1 {
		return 0, errBadCursor
	}
	return n, nil
}
