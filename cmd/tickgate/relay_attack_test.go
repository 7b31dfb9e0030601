package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/tickgate/tickgate/marketsim"
)

// TestAttackVendorFramesAgainstBrowsers has the vendor (marketsim) send
// frames a real vendor might: invalid UTF-8 in a string, the key echoed
// with JSON escapes, a huge array. Browsers must get only valid UTF-8
// (a browser fails the socket on anything else), never the key in any
// spelling JSON.parse would decode, and stay connected with data flowing.
func TestAttackVendorFramesAgainstBrowsers(t *testing.T) {
	sim, err := marketsim.New(marketsim.Options{Keys: []string{testKey}, ConnCap: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword,
		"TICKGATE_DEMO_VENDOR_URL": sim.URL()})
	rec := &recorder{}
	b := newBrowser(t, inst.url, rec)
	login(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, _, err := b.dialWS(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.conn.CloseNow()
	ws.until(ctx, "ready", nil)
	ws.send(ctx, map[string]any{"action": "subscribe", "symbols": []string{"AAPL"}})
	ws.until(ctx, "subscribed", nil)
	ws.until(ctx, "data", hasDataFor("AAPL"))

	var esc strings.Builder
	for _, r := range testKey {
		fmt.Fprintf(&esc, `\u%04x`, r)
	}
	var huge strings.Builder
	huge.WriteByte('[')
	for i := range 5000 {
		if i > 0 {
			huge.WriteByte(',')
		}
		fmt.Fprintf(&huge, `{"ev":"T","sym":"AAPL","p":%d,"s":1,"t":%d}`, i, i)
	}
	huge.WriteByte(']')
	for _, f := range []string{
		"[{\"ev\":\"T\",\"sym\":\"AAPL\",\"p\":1,\"bad\":\"\xc3\x28\"}]",
		`[{"ev":"T","sym":"AAPL","p":1,"echo":"` + esc.String() + `"}]`,
		`[{"ev":"T","sym":"AAPL","p":1,"echo":"` + strings.ReplaceAll(testKey, "-", `\u002d`) + `"}]`,
		`[{"ev":"T","sym":"AAPL","p":1,"marker":"after-attack"}]`,
	} {
		if n := sim.InjectFrame([]byte(f)); n == 0 {
			t.Fatal("no vendor connection took the frame")
		}
	}
	for {
		_, raw, err := ws.conn.Read(ctx)
		if err != nil {
			t.Fatalf("browser socket failed during the attack: %v", err)
		}
		if !utf8.Valid(raw) {
			t.Fatalf("relay sent invalid UTF-8 to a browser: %q", raw)
		}
		var m struct {
			Messages []map[string]any `json:"messages"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("relay sent non-JSON: %q", raw)
		}
		done := false
		for _, msg := range m.Messages {
			if s, _ := msg["echo"].(string); strings.Contains(s, testKey) {
				t.Fatalf("the key reached a browser through JSON escapes: %.200s", raw)
			}
			done = done || msg["marker"] == "after-attack"
		}
		if done {
			break
		}
	}
	// A huge array (conflated per symbol on the way) leaves the socket
	// live.
	if n := sim.InjectFrame([]byte(huge.String())); n == 0 {
		t.Fatal("no vendor connection took the huge frame")
	}
	ws.until(ctx, "data", hasDataFor("AAPL"))
	ws.until(ctx, "data", hasDataFor("AAPL"))
}

// TestAttackWSOriginTricks tries Origin values a hostile page or a
// non-browser client might send. Only the exact origin (any case, the
// default port spelled out or not) may open a socket.
func TestAttackWSOriginTricks(t *testing.T) {
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword})
	b := newBrowser(t, inst.url, &recorder{})
	login(t, b)
	host := strings.TrimPrefix(inst.url, "http://")
	hostname, port, _ := strings.Cut(host, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	try := func(origins []string) int {
		hdr := http.Header{}
		for _, o := range origins {
			hdr.Add("Origin", o)
		}
		c, resp, err := websocket.Dial(ctx, "ws://"+host+"/ws/demo", &websocket.DialOptions{HTTPClient: b.client, HTTPHeader: hdr})
		if err == nil {
			_ = c.CloseNow()
			return http.StatusSwitchingProtocols
		}
		if resp == nil {
			t.Fatalf("origin %q: %v", origins, err)
		}
		return resp.StatusCode
	}
	for _, tc := range []struct {
		origins []string
		want    int
	}{
		{[]string{inst.url}, 101},
		{[]string{strings.ToUpper(inst.url)}, 101},
		{nil, 403},
		{[]string{""}, 403},
		{[]string{"null"}, 403},
		{[]string{"http://" + hostname + ".:" + port}, 403},
		{[]string{"https://" + host}, 403},
		{[]string{"http://" + hostname}, 403},
		{[]string{"http://" + hostname + ":1" + port}, 403},
		{[]string{"http://" + host + ".evil.example"}, 403},
		{[]string{"http://evil.example@" + host}, 403},
		{[]string{"http://" + host + "@evil.example"}, 403},
		{[]string{inst.url + "/path"}, 403},
		{[]string{inst.url + "#x"}, 403},
		{[]string{inst.url, "http://evil.example"}, 403},
		{[]string{"http://evil.example", inst.url}, 403},
		{[]string{inst.url + ", http://evil.example"}, 403},
		{[]string{"ws://" + host}, 403},
	} {
		if got := try(tc.origins); got != tc.want {
			t.Errorf("Origin %q: status %d, want %d", tc.origins, got, tc.want)
		}
	}
	// pprof and metrics live on the admin listener only.
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=2", "/debug/pprof/cmdline", "/metrics"} {
		resp, body := b.do("GET", path, "", nil)
		if resp.StatusCode == http.StatusOK || strings.Contains(body, "goroutine") || strings.Contains(body, "# TYPE") {
			t.Errorf("public GET %s = %d %.100q", path, resp.StatusCode, body)
		}
	}
}
