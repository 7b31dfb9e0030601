package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tickgate/tickgate/marketsim"
)

// TestAdversarialSymbolExhaustion attacks the running product's symbol
// budgets: one user logging in many times may hold at most twice the
// per-session limit of distinct symbols on a feed across all of those
// sessions (so it cannot fill the feed for everyone), an oversized
// symbol list or frame is refused with a clear error or close code, and a
// refused subscribe changes nothing.
func TestAdversarialSymbolExhaustion(t *testing.T) {
	t.Parallel()
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword,
		"TICKGATE_WS_MAX_SYMBOLS": "5", "TICKGATE_LIMIT_LOGIN": "100/1m", "TICKGATE_LIMIT_IP": "1000/1s", "TICKGATE_LIMIT_SESSION": "1000/1s"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	syms := marketsim.DefaultSymbols()
	if len(syms) < 20 {
		t.Fatalf("demo universe has %d symbols", len(syms))
	}
	open := func() *wsClient {
		t.Helper()
		b := newBrowser(t, inst.url, &recorder{})
		login(t, b)
		ws, _, err := b.dialWS(ctx, "demo")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.conn.CloseNow() })
		if m := ws.until(ctx, "ready", nil); m.Limits["max_symbols"] != 5 {
			t.Fatalf("ready limits %v", m.Limits)
		}
		return ws
	}
	subscribe := func(ws *wsClient, s ...string) wsMsg {
		t.Helper()
		ws.send(ctx, map[string]any{"action": "subscribe", "symbols": s})
		for {
			m, err := ws.read(ctx)
			if err != nil {
				t.Fatalf("subscribe %v: %v", s, err)
			}
			if m.Type == "subscribed" || m.Type == "error" {
				return m
			}
		}
	}
	s1, s2, s3 := open(), open(), open()
	if m := subscribe(s1, syms[0:5]...); m.Type != "subscribed" {
		t.Fatalf("first session: %+v", m)
	}
	if m := subscribe(s1, syms[5]); m.Code != "too_many_symbols" {
		t.Errorf("sixth symbol in one session: %+v, want too_many_symbols", m)
	}
	if m := subscribe(s2, syms[5:10]...); m.Type != "subscribed" {
		t.Fatalf("second session: %+v", m)
	}
	// The user's third session: new symbols are past the user's 10.
	for _, tc := range [][]string{{syms[10]}, {syms[0], syms[11]}, syms[10:15]} {
		if m := subscribe(s3, tc...); m.Code != "too_many_symbols" {
			t.Errorf("third session subscribing %v: %+v, want too_many_symbols", tc, m)
		}
	}
	// What the user already holds costs nothing.
	if m := subscribe(s3, syms[0], syms[9]); m.Type != "subscribed" {
		t.Errorf("third session subscribing held symbols: %+v", m)
	}

	// A huge list in one message, a frame past the read limit.
	huge := make([]string, 5000)
	for i := range huge {
		huge[i] = fmt.Sprintf("S%04d", i)
	}
	s3.send(ctx, map[string]any{"action": "subscribe", "symbols": huge[:101]})
	if m := s3.until(ctx, "error", nil); m.Code != "too_many_symbols" && m.Code != "bad_message" && m.Code != "invalid_symbol" {
		t.Errorf("101 symbols in one message: code %q", m.Code)
	}
	s3.send(ctx, map[string]any{"action": "subscribe", "symbols": huge})
	if code := s3.closeCode(ctx); code != websocket.StatusMessageTooBig {
		t.Errorf("frame of %d symbols: close %d, want 1009", len(huge), code)
	}
	// The other sessions are unaffected.
	s2.send(ctx, map[string]any{"action": "unsubscribe", "symbols": []string{syms[9]}})
	s2.until(ctx, "unsubscribed", nil)
	if m := subscribe(s2, syms[0]); m.Type != "subscribed" {
		t.Errorf("second session after the attack: %+v", m)
	}
}

// TestAdversarialLoginFlood: a flood of concurrent logins from one
// address, with wrong and right passwords and rotating user names, is
// answered 429 with Retry-After past the login limit (no 5xx, no hang),
// and the one session that got in still works.
func TestAdversarialLoginFlood(t *testing.T) {
	t.Parallel()
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword, "TICKGATE_LIMIT_LOGIN": "5/1m"})
	b := newBrowser(t, inst.url, &recorder{})
	login(t, b)
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			user, pass := "demo", testPassword
			switch i % 3 {
			case 1:
				pass = "wrong"
			case 2:
				user = fmt.Sprintf("user%d", i)
			}
			req, _ := http.NewRequest("POST", inst.url+"/auth/login", strings.NewReader(`{"username":"`+user+`","password":"`+pass+`"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-CSRF", "1")
			req.Header.Set("Origin", inst.url)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			if res.StatusCode == http.StatusTooManyRequests && res.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			mu.Lock()
			counts[res.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	for code, n := range counts {
		if code != 200 && code != 401 && code != 429 {
			t.Errorf("%d answers %d", n, code)
		}
	}
	if counts[429] < 50 {
		t.Errorf("answers %v: want at least 50 of 60 limited", counts)
	}
	if resp, body := b.do("GET", "/auth/session", "", nil); resp.StatusCode != 200 {
		t.Errorf("session after the flood: %d %s", resp.StatusCode, body)
	}
}
