package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Window is the measurement window, by vendor event timestamp: events
// stamped inside it are counted and their latency kept; the others are
// ignored. Until Set it contains nothing.
type Window struct {
	from, to atomic.Int64 // Unix ms, [from, to)
}

// Set opens the window [from, to).
func (w *Window) Set(from, to time.Time) {
	w.to.Store(0)
	w.from.Store(from.UnixMilli())
	w.to.Store(to.UnixMilli())
}

func (w *Window) contains(t int64) bool {
	return t >= w.from.Load() && t < w.to.Load()
}

// BrowserConfig describes one simulated browser.
type BrowserConfig struct {
	URL     string   // ws://127.0.0.1:port/ws/{feed}
	Origin  string   // the Origin header a browser on the app's page sends
	Cookie  string   // the Cookie header: the browser's own session
	Symbols []string // subscribed once connected
}

// Browser is one simulated browser connected to tickgate's relay.
type Browser struct {
	cfg     BrowserConfig
	conn    *websocket.Conn
	win     *Window
	Connect time.Duration // from dial to tickgate's "ready" message

	subscribed chan struct{} // closed on the first "subscribed" message
	done       chan struct{} // closed when the read loop ends

	// Written by the read loop only; read after done is closed.
	counts     []int64 // events per cfg.Symbols entry, inside the window
	unexpected int64   // events for symbols this browser did not subscribe
	latencies  []time.Duration
	errorCodes []string // tickgate "error" messages
	readErr    error    // why the read loop ended, when it was not Close
	closing    atomic.Bool
}

// DialBrowser connects one browser and waits for tickgate's "ready"
// message. Its read loop runs until Close.
func DialBrowser(ctx context.Context, client *http.Client, cfg BrowserConfig, win *Window) (*Browser, error) {
	if err := CheckLoopbackURL(cfg.URL); err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Origin", cfg.Origin)
	h.Set("Cookie", cfg.Cookie)
	began := time.Now()
	conn, resp, err := websocket.Dial(ctx, cfg.URL, &websocket.DialOptions{
		HTTPClient:      client,
		HTTPHeader:      h,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("loadgen: WebSocket handshake answered %d", resp.StatusCode)
		}
		return nil, fmt.Errorf("loadgen: WebSocket dial: %s", describeError(err))
	}
	conn.SetReadLimit(1 << 20)
	b := &Browser{
		cfg: cfg, conn: conn, win: win,
		counts:     make([]int64, len(cfg.Symbols)),
		subscribed: make(chan struct{}),
		done:       make(chan struct{}),
	}
	_, first, err := conn.Read(ctx)
	if err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("loadgen: waiting for ready: %s", describeError(err))
	}
	if typ := FrameType(first); typ != "ready" {
		conn.CloseNow()
		return nil, fmt.Errorf("loadgen: first message is %q, not ready", typ)
	}
	b.Connect = time.Since(began)
	go b.readLoop()
	return b, nil
}

// Subscribe sends the browser's subscribe message and waits for
// tickgate's "subscribed" answer.
func (b *Browser) Subscribe(ctx context.Context) error {
	msg, err := json.Marshal(struct {
		Action  string   `json:"action"`
		Symbols []string `json:"symbols"`
	}{"subscribe", b.cfg.Symbols})
	if err != nil {
		return err
	}
	if err := b.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		return fmt.Errorf("loadgen: subscribe: %s", describeError(err))
	}
	select {
	case <-b.subscribed:
		return nil
	case <-b.done:
		return fmt.Errorf("loadgen: connection ended before subscribed: %v", b.readErr)
	case <-ctx.Done():
		return fmt.Errorf("loadgen: no subscribed answer: %w", ctx.Err())
	}
}

func (b *Browser) readLoop() {
	defer close(b.done)
	var buf bytes.Buffer
	subscribed := false
	for {
		_, r, err := b.conn.Reader(context.Background())
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			if !b.closing.Load() {
				b.readErr = err
			}
			return
		}
		now := time.Now()
		frame := buf.Bytes()
		switch FrameType(frame) {
		case "data":
			arr, ok := DataMessages(frame)
			if !ok {
				b.errorCodes = append(b.errorCodes, "malformed_data")
				continue
			}
			_, err := ScanEvents(arr, func(sym []byte, t int64) {
				if !b.win.contains(t) {
					return
				}
				for i, s := range b.cfg.Symbols {
					if string(sym) == s {
						b.counts[i]++
						b.latencies = append(b.latencies, now.Sub(time.UnixMilli(t)))
						return
					}
				}
				b.unexpected++
			})
			if err != nil {
				b.errorCodes = append(b.errorCodes, "malformed_data")
			}
		case "subscribed":
			if !subscribed {
				subscribed = true
				close(b.subscribed)
			}
		case "error":
			code, _ := stringField(frame, `"code":`)
			b.errorCodes = append(b.errorCodes, string(code))
		}
	}
}

// Close closes the connection with 1000 and waits for the read loop.
func (b *Browser) Close() {
	b.closing.Store(true)
	_ = b.conn.Close(websocket.StatusNormalClosure, "")
	<-b.done
}

// DialBrowsers connects one browser per config, at most concurrency
// dials at a time, and returns them all, or the first error after closing
// those already connected.
func DialBrowsers(ctx context.Context, client *http.Client, cfgs []BrowserConfig, concurrency int, win *Window) ([]*Browser, error) {
	out := make([]*Browser, len(cfgs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	for range max(concurrency, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(cfgs) || ctx.Err() != nil {
					return
				}
				b, err := DialBrowser(ctx, client, cfgs[i], win)
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("browser %d: %w", i+1, err); cancel() })
					return
				}
				out[i] = b
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		CloseAll(out)
		return nil, firstErr
	}
	return out, nil
}

// SubscribeAll subscribes every browser, at most concurrency at a time.
func SubscribeAll(ctx context.Context, bs []*Browser, concurrency int) error {
	var (
		next     atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	for range max(concurrency, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bs) {
					return
				}
				if err := bs[i].Subscribe(ctx); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("browser %d: %w", i+1, err) })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// CloseAll closes every non-nil browser, concurrently.
func CloseAll(bs []*Browser) {
	var wg sync.WaitGroup
	for _, b := range bs {
		if b != nil {
			wg.Go(b.Close)
		}
	}
	wg.Wait()
}

// Reference is a subscriber connected straight to the simulated vendor,
// counting what it publishes per symbol inside the window.
type Reference struct {
	conn    *websocket.Conn
	win     *Window
	mu      sync.Mutex
	counts  map[string]int64
	done    chan struct{}
	readErr error
	closing atomic.Bool
}

// DialReference connects to marketsim's stream at url, authenticates with
// key (sent only to that loopback URL) and subscribes to symbols.
func DialReference(ctx context.Context, client *http.Client, url, key string, symbols []string, win *Window) (*Reference, error) {
	if err := CheckLoopbackURL(url); err != nil {
		return nil, err
	}
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		return nil, fmt.Errorf("loadgen: reference dial: %s", describeError(err))
	}
	conn.SetReadLimit(1 << 20)
	await := func(status string) error {
		for {
			_, f, err := conn.Read(ctx)
			if err != nil {
				return fmt.Errorf("loadgen: reference waiting for %s: %s", status, describeError(err))
			}
			if s, ok := stringField(f, `"status":`); ok {
				if string(s) == status {
					return nil
				}
				if string(s) != "connected" {
					return fmt.Errorf("loadgen: reference got status %q, want %s", s, status)
				}
			}
		}
	}
	send := func(v any) error {
		b, _ := json.Marshal(v)
		return conn.Write(ctx, websocket.MessageText, b)
	}
	if err := send(map[string]string{"action": "auth", "key": key}); err != nil {
		conn.CloseNow()
		return nil, errors.New("loadgen: reference auth: write failed")
	}
	if err := await("auth_success"); err != nil {
		conn.CloseNow()
		return nil, err
	}
	if err := send(map[string]any{"action": "subscribe", "symbols": symbols}); err != nil {
		conn.CloseNow()
		return nil, errors.New("loadgen: reference subscribe: write failed")
	}
	if err := await("subscribed"); err != nil {
		conn.CloseNow()
		return nil, err
	}
	r := &Reference{conn: conn, win: win, counts: make(map[string]int64, len(symbols)), done: make(chan struct{})}
	go r.readLoop()
	return r, nil
}

func (r *Reference) readLoop() {
	defer close(r.done)
	for {
		_, f, err := r.conn.Read(context.Background())
		if err != nil {
			if !r.closing.Load() {
				r.readErr = err
			}
			return
		}
		r.mu.Lock()
		_, _ = ScanEvents(f, func(sym []byte, t int64) {
			if r.win.contains(t) {
				r.counts[string(sym)]++
			}
		})
		r.mu.Unlock()
	}
}

// Close closes the connection and waits for the read loop.
func (r *Reference) Close() {
	r.closing.Store(true)
	_ = r.conn.Close(websocket.StatusNormalClosure, "")
	<-r.done
}

// WSResult adds up what the browsers received against what the
// reference saw published.
type WSResult struct {
	Browsers     int
	Expected     int64 // events of each browser's symbols published in the window, summed over browsers
	Delivered    int64 // of those, received by the browsers
	Lost         int64 // expected but not received
	Extra        int64 // received more often than published (duplicates)
	Unexpected   int64 // events for symbols a browser did not subscribe
	Disconnected int   // browsers whose connection ended before Close
	FirstDrop    string
	ErrorCodes   map[string]int // tickgate "error" messages by code
	Latency      Summary
	Connect      Summary
}

// Collect closes the browsers and the reference and adds up the result.
// The reference must have been connected for the whole window.
func Collect(bs []*Browser, ref *Reference) (WSResult, error) {
	var dropped []error
	for _, b := range bs {
		select {
		case <-b.done:
			if b.readErr != nil {
				dropped = append(dropped, b.readErr)
			}
		default:
		}
	}
	CloseAll(bs)
	ref.Close()
	if ref.readErr != nil {
		return WSResult{}, fmt.Errorf("loadgen: the reference subscriber was disconnected: %s", describeError(ref.readErr))
	}
	res := tally(bs, ref.counts)
	res.Disconnected = len(dropped)
	if len(dropped) > 0 {
		res.FirstDrop = describeError(dropped[0])
	}
	return res, nil
}

// tally compares what each browser counted with what was published.
func tally(bs []*Browser, published map[string]int64) WSResult {
	res := WSResult{Browsers: len(bs), ErrorCodes: map[string]int{}}
	var lat, conn []time.Duration
	for _, b := range bs {
		for i, s := range b.cfg.Symbols {
			want, got := published[s], b.counts[i]
			res.Expected += want
			res.Delivered += min(want, got)
			res.Lost += max(want-got, 0)
			res.Extra += max(got-want, 0)
		}
		res.Unexpected += b.unexpected
		for _, c := range b.errorCodes {
			res.ErrorCodes[c]++
		}
		lat = append(lat, b.latencies...)
		conn = append(conn, b.Connect)
	}
	res.Latency = Summarize(lat)
	res.Connect = Summarize(conn)
	return res
}

// DeliveredRatio is Delivered / Expected (1 when nothing was expected).
func (r WSResult) DeliveredRatio() float64 {
	if r.Expected == 0 {
		return 1
	}
	return float64(r.Delivered) / float64(r.Expected)
}
