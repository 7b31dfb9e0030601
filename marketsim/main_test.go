package marketsim

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// deadline is generous: tests run on slow, loaded machines.
const deadline = 20 * time.Second

// fakeClock is an Options.Now that moves only when told.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2024, 12, 3, 16, 0, 0, 123e6, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// start creates a Server with opts (key "K" unless set), serves it on a
// loopback port and closes it when the test ends.
func start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := newServer(t, opts)
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

func newServer(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Keys == nil {
		opts.Keys = []string{"K"}
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// smallBufListener shrinks the socket send buffer of accepted
// connections, so a client that stops reading fills it quickly.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// startSmallBuffers is start with small server send buffers.
func startSmallBuffers(t testing.TB, opts Options) *Server {
	t.Helper()
	s := newServer(t, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(smallBufListener{ln}) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	waitFor(t, "Serve to bind", func() bool { return s.URL() != "" })
	return s
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// restClient does not follow redirects and drops its connections at the
// end of the test.
func restClient(t testing.TB) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       deadline,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func get(t testing.TB, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	return do(t, c, http.MethodGet, url)
}

func do(t testing.TB, c *http.Client, method, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, b
}

// wsClient is a test client of /v1/stream.
type wsClient struct {
	t testing.TB
	c *websocket.Conn
}

func dial(t testing.TB, s *Server) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	c, _, err := websocket.Dial(ctx, s.StreamURL(), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return &wsClient{t: t, c: c}
}

// dialAuthed dials, sees connected, authenticates with key and sees
// auth_success.
func dialAuthed(t testing.TB, s *Server, key string) *wsClient {
	t.Helper()
	w := dial(t, s)
	w.expectStatus(StatusConnected)
	w.send(`{"action":"auth","key":"` + key + `"}`)
	w.expectStatus(StatusAuthSuccess)
	return w
}

func (w *wsClient) send(msg string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		w.t.Fatalf("write %s: %v", msg, err)
	}
}

// event is one object of a server frame.
type event struct {
	Ev      string   `json:"ev"`
	Status  string   `json:"status"`
	Message string   `json:"message"`
	Symbols []string `json:"symbols"`
	Sym     string   `json:"sym"`
	P       *float64 `json:"p"`
	S       *int64   `json:"s"`
	BP      *float64 `json:"bp"`
	AP      *float64 `json:"ap"`
	T       int64    `json:"t"`
}

// read returns the next frame, or the error that ended the connection.
func (w *wsClient) read() ([]event, error) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	typ, b, err := w.c.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageText {
		w.t.Fatalf("frame type %v, want text", typ)
	}
	var evs []event
	if err := json.Unmarshal(b, &evs); err != nil {
		w.t.Fatalf("frame %q is not a JSON array of objects: %v", b, err)
	}
	if len(evs) == 0 {
		w.t.Fatalf("empty frame %q", b)
	}
	return evs, nil
}

// expectStatus reads past data frames to the next status event and
// requires it to be status.
func (w *wsClient) expectStatus(status string) event {
	w.t.Helper()
	for {
		evs, err := w.read()
		if err != nil {
			w.t.Fatalf("waiting for status %q: %v", status, err)
		}
		for _, e := range evs {
			if e.Ev != "status" {
				continue
			}
			if e.Status != status {
				w.t.Fatalf("status = %q (%q), want %q", e.Status, e.Message, status)
			}
			return e
		}
	}
}

// expectClose reads until the connection ends and requires close code.
// Status events seen on the way are returned.
func (w *wsClient) expectClose(code websocket.StatusCode) []event {
	w.t.Helper()
	var statuses []event
	for {
		evs, err := w.read()
		if err != nil {
			if got := websocket.CloseStatus(err); got != code {
				w.t.Fatalf("close status = %v (%v), want %v", got, err, code)
			}
			return statuses
		}
		for _, e := range evs {
			if e.Ev == "status" {
				statuses = append(statuses, e)
			}
		}
	}
}

func hasStatus(evs []event, status string) bool {
	for _, e := range evs {
		if e.Status == status {
			return true
		}
	}
	return false
}
