package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeRelay speaks tickgate's browser protocol: ready, subscribed, then
// one data frame per subscribed symbol per tick with timestamps "now",
// plus one event for a symbol nobody asked for.
func fakeRelay(t *testing.T, wantCookie string) *httptest.Server {
	t.Helper()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cookie") != wantCookie || r.Header.Get("Origin") == "" {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true}) // test server: Origin checked above
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"ready","feed":"f","limits":{"max_symbols":50}}`))
		_, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		var sub struct{ Symbols []string }
		_ = json.Unmarshal(msg, &sub)
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribed","symbols":["`+strings.Join(sub.Symbols, `","`)+`"]}`))
		go func() { // consume the close handshake
			for {
				if _, _, err := c.Read(ctx); err != nil {
					return
				}
			}
		}()
		for range 20 {
			var evs []string
			now := time.Now().UnixMilli()
			for _, s := range sub.Symbols {
				evs = append(evs, fmt.Sprintf(`{"ev":"T","sym":%q,"p":1.5,"t":%d}`, s, now))
			}
			evs = append(evs, fmt.Sprintf(`{"ev":"T","sym":"ZZZ","t":%d}`, now))
			if c.Write(ctx, websocket.MessageText, []byte(`{"type":"data","feed":"f","messages":[`+strings.Join(evs, ",")+`]}`)) != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"error","code":"too_many_symbols","message":"x"}`))
		// Closing tells the test the browser has read everything.
		_ = c.Close(websocket.StatusNormalClosure, "done")
	}))
}

func TestBrowsersCountWhatTheyReceive(t *testing.T) {
	srv := fakeRelay(t, "tickgate=abc")
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/f"
	win := &Window{}
	win.Set(time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	cfgs := []BrowserConfig{
		{URL: url, Origin: srv.URL, Cookie: "tickgate=abc", Symbols: []string{"AAPL", "MSFT"}},
		{URL: url, Origin: srv.URL, Cookie: "tickgate=abc", Symbols: []string{"TSLA"}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bs, err := DialBrowsers(ctx, NewClient(0), cfgs, 2, win)
	if err != nil {
		t.Fatal(err)
	}
	if err := SubscribeAll(ctx, bs, 2); err != nil {
		t.Fatal(err)
	}
	for _, b := range bs { // the fake closes after its last frame
		select {
		case <-b.done:
		case <-ctx.Done():
			t.Fatal("the fake relay never closed")
		}
	}
	CloseAll(bs)
	// Published: 22 AAPL, 20 MSFT, 19 TSLA; received 20 of each.
	res := tally(bs, map[string]int64{"AAPL": 22, "MSFT": 20, "TSLA": 19})
	if res.Expected != 61 || res.Delivered != 59 || res.Lost != 2 || res.Extra != 1 {
		t.Errorf("expected %d delivered %d lost %d extra %d; want 61 59 2 1", res.Expected, res.Delivered, res.Lost, res.Extra)
	}
	if res.Unexpected != 40 {
		t.Errorf("unexpected = %d, want 40 (one ZZZ per frame per browser)", res.Unexpected)
	}
	if res.Latency.Count != 60 || res.Connect.Count != 2 || res.Connect.P50 <= 0 {
		t.Errorf("latency samples %d, connect samples %d (p50 %v)", res.Latency.Count, res.Connect.Count, res.Connect.P50)
	}
	if res.ErrorCodes["too_many_symbols"] != 2 {
		t.Errorf("error codes = %v, want too_many_symbols x2", res.ErrorCodes)
	}
	if r := res.DeliveredRatio(); r < 0.96 || r > 0.97 {
		t.Errorf("DeliveredRatio = %v, want 59/61", r)
	}
}

func TestWindowExcludesEventsOutsideIt(t *testing.T) {
	srv := fakeRelay(t, "c=1")
	defer srv.Close()
	win := &Window{} // never set: nothing counts
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bs, err := DialBrowsers(ctx, NewClient(0), []BrowserConfig{{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Origin: srv.URL, Cookie: "c=1", Symbols: []string{"A"}}}, 1, win)
	if err != nil {
		t.Fatal(err)
	}
	if err := SubscribeAll(ctx, bs, 1); err != nil {
		t.Fatal(err)
	}
	<-bs[0].done // all 20 frames read
	CloseAll(bs)
	if res := tally(bs, nil); res.Delivered != 0 || res.Extra != 0 || res.Latency.Count != 0 || res.Unexpected != 0 {
		t.Errorf("outside the window: %+v", res)
	}
}

func TestDialBrowsersReportsRefusal(t *testing.T) {
	srv := fakeRelay(t, "right")
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := DialBrowsers(ctx, NewClient(0), []BrowserConfig{{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Origin: srv.URL, Cookie: "wrong-cookie-value", Symbols: []string{"A"}}}, 1, &Window{})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("DialBrowsers with a wrong cookie: %v, want a 401 error", err)
	}
	if strings.Contains(err.Error(), "wrong-cookie-value") {
		t.Errorf("the error quotes the cookie: %v", err)
	}
	if _, err := DialBrowsers(ctx, NewClient(0), []BrowserConfig{{URL: "ws://192.0.2.1/ws/f"}}, 1, &Window{}); err == nil {
		t.Error("a non-loopback browser URL was dialed")
	}
}
