package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/tickgate/tickgate/metrics"
	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/memstore"
)

// cheap are argon2id parameters cheap enough for -race on two cores.
var cheap = session.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

const (
	origin    = "https://app.example.com"
	alicePass = "correct horse battery staple"
	bobPass   = "hunter2-hunter2"
)

var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// countingStore wraps a store, counts calls, and fails on demand.
type countingStore struct {
	session.Store
	gets, touches, creates, deletes atomic.Int64
	failGet, failTouch, failCreate  atomic.Bool
	failDelete                      atomic.Bool
	// partialDeleteUser makes DeleteUser delete everything but report
	// only the first key, with an error, as a store failing midway would.
	partialDeleteUser atomic.Bool
}

// DeleteUser forwards to the wrapped store's session.UserIndex.
func (s *countingStore) DeleteUser(ctx context.Context, user string) ([]string, error) {
	keys, err := s.Store.(session.UserIndex).DeleteUser(ctx, user)
	if err == nil && s.partialDeleteUser.Load() {
		return keys[:min(1, len(keys))], errStoreDown
	}
	return keys, err
}

var errStoreDown = errors.New("store down: dial tcp 10.0.0.1:6379: connection refused")

func (s *countingStore) Get(ctx context.Context, key string) (session.Record, error) {
	s.gets.Add(1)
	if s.failGet.Load() {
		return session.Record{}, errStoreDown
	}
	return s.Store.Get(ctx, key)
}

func (s *countingStore) Touch(ctx context.Context, key string, seen time.Time, ttl time.Duration) error {
	s.touches.Add(1)
	if s.failTouch.Load() {
		return errStoreDown
	}
	return s.Store.Touch(ctx, key, seen, ttl)
}

func (s *countingStore) Create(ctx context.Context, rec session.Record, ttl time.Duration) error {
	s.creates.Add(1)
	if s.failCreate.Load() {
		return errStoreDown
	}
	return s.Store.Create(ctx, rec, ttl)
}

func (s *countingStore) Delete(ctx context.Context, key string) error {
	s.deletes.Add(1)
	if s.failDelete.Load() {
		return errStoreDown
	}
	return s.Store.Delete(ctx, key)
}

func (s *countingStore) Ping(ctx context.Context) error {
	if s.failGet.Load() {
		return errStoreDown
	}
	return s.Store.Ping(ctx)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the JSON log records.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// audit returns the audit log records with message msg.
func (b *syncBuffer) audit(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range b.lines(t) {
		if l["msg"] == msg && l["audit"] == true {
			out = append(out, l)
		}
	}
	return out
}

// fixture is a Manager wired like the app wires it.
type fixture struct {
	m       *session.Manager
	store   *countingStore
	clock   *clock
	logs    *syncBuffer
	metrics *metrics.Metrics
	h       http.Handler
	secure  bool
}

func newFixture(t testing.TB, edit func(*session.Config)) *fixture {
	t.Helper()
	ms, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ms.Close() })
	users, err := session.NewUsers(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, pw := range map[string]string{"alice": alicePass, "bob": bobPass} {
		h, err := session.HashPasswordWith(pw, cheap)
		if err != nil {
			t.Fatal(err)
		}
		if err := users.Add(name, h); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{
		store:   &countingStore{Store: ms},
		clock:   &clock{now: t0},
		logs:    &syncBuffer{},
		metrics: metrics.Discard(),
	}
	cfg := session.Config{
		Store:          f.store,
		Users:          users,
		AllowedOrigins: []string{origin},
		Idle:           30 * time.Minute,
		Max:            12 * time.Hour,
		CheckInterval:  5 * time.Millisecond,
		Logger:         slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:        f.metrics,
		Now:            f.clock.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	if cfg.Secure != nil {
		f.secure = cfg.Secure(httptest.NewRequest(http.MethodGet, "/", nil))
	}
	m, err := session.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	f.m = m

	mux := http.NewServeMux()
	mux.Handle("POST /auth/login", m.RequireCSRF(http.HandlerFunc(m.Login)))
	mux.HandleFunc("GET /auth/session", m.Info)
	mux.Handle("POST /auth/logout", m.RequireCSRF(http.HandlerFunc(m.Logout)))
	mux.Handle("/api/", m.Require(m.RequireCSRF(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := session.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s", s.User)
	}))))
	f.h = m.Middleware(mux)
	return f
}

// cookieName is the fixture's session cookie name.
func (f *fixture) cookieName() string {
	if f.secure {
		return session.SecureCookieName
	}
	return session.CookieName
}

// do serves one request; cookie, when not empty, is sent as the session
// cookie.
func (f *fixture) do(method, target, cookie string, body io.Reader, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, body)
	r.RemoteAddr = "192.0.2.7:51000"
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: f.cookieName(), Value: cookie})
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// csrf are the headers a same-origin fetch from the frontend sends.
var csrf = []string{"X-CSRF", "1", "Origin", origin, "Sec-Fetch-Site", "same-origin", "Content-Type", "application/json"}

func loginBody(user, pw string) io.Reader {
	b, _ := json.Marshal(map[string]string{"username": user, "password": pw})
	return bytes.NewReader(b)
}

// login logs in and returns the session cookie value.
func (f *fixture) login(t testing.TB, user, pw, oldCookie string) string {
	t.Helper()
	w := f.do(http.MethodPost, "/auth/login", oldCookie, loginBody(user, pw), csrf...)
	if w.Code != http.StatusOK {
		t.Fatalf("login: status %d, body %s", w.Code, w.Body)
	}
	c := sessionCookie(t, w, f.cookieName())
	if c == nil || c.Value == "" {
		t.Fatalf("login: no session cookie in %q", w.Header().Values("Set-Cookie"))
	}
	return c.Value
}

func sessionCookie(t testing.TB, w *httptest.ResponseRecorder, name string) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// info is the session info body.
type info struct {
	User          string `json:"user"`
	IdleExpiresAt string `json:"idle_expires_at"`
	ExpiresAt     string `json:"expires_at"`
}

func decodeInfo(t *testing.T, w *httptest.ResponseRecorder) info {
	t.Helper()
	var i info
	if err := json.Unmarshal(w.Body.Bytes(), &i); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return i
}

// errCode returns the contract error code of a response.
func errCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var b struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	if b.Error.Message == "" {
		t.Fatalf("error body %q has no message", w.Body)
	}
	return b.Error.Code
}

func wantError(t *testing.T, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d (body %s)", w.Code, status, w.Body)
	}
	if got := errCode(t, w); got != code {
		t.Fatalf("code = %q, want %q", got, code)
	}
}

// waitClosed waits, generously, for ch to close.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: watch did not fire", what)
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func counter(t *testing.T, m *metrics.Metrics, result string) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Logins.WithLabelValues(result).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

func key(t *testing.T, cookie string) string {
	t.Helper()
	k, ok := session.KeyOf(cookie)
	if !ok {
		t.Fatalf("cookie is not a session id")
	}
	return k
}

func httptestRequest(method, target string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "192.0.2.7:51000"
	return r
}

func httptestRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func readCloser(r io.Reader) io.ReadCloser { return io.NopCloser(r) }
