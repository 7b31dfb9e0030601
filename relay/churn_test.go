package relay

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestChurnReturnsToBaseline opens and ends many browser sockets in every
// manner (close handshake, TCP FIN, TCP reset, mid-handshake, while the
// upstream dies) and checks that the relay lets go of all of them: no
// client, session or subscription is left, the vendor is unsubscribed,
// and the goroutine count returns to where it was. goleak (TestMain)
// then checks nothing outlives the test.
func TestChurnReturnsToBaseline(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 500
	}
	h := newHarness(t, vendorOpts{connCap: -1}, func(c *Config) { c.MaxConns = 1000 })
	addr := strings.TrimPrefix(h.srv.URL, "http://")
	syms := []string{"AAPL", "MSFT", "TSLA", "SPY", "QQQ", "IBM", "GOOG", "AMZN", "NVDA", "META"}

	// Warm up: the upstream connection and the server's own goroutines
	// exist before the baseline is taken.
	w := h.browser(sess("warm"))
	w.send(`{"action":"subscribe","symbols":["AAPL"]}`)
	w.until("subscribed")
	w.until("data")
	_ = w.c.Close(websocket.StatusNormalClosure, "")
	eventually(t, "warm-up browser gone", func() bool {
		return gauge(t, h.metrics.WSClientsByFeed.WithLabelValues("demo")) == 0 && len(h.vendor.subscribed()) == 0
	})
	baseline := runtime.NumGoroutine()

	manners := []func(i int){
		// close handshake after subscribing
		func(i int) {
			b := h.quietBrowser(t, sess(fmt.Sprint("u", i)))
			if b == nil {
				return
			}
			b.send(`{"action":"subscribe","symbols":["` + syms[i%len(syms)] + `","` + syms[(i+3)%len(syms)] + `"]}`)
			b.untilLoose("subscribed")
			_ = b.c.Close(websocket.StatusNormalClosure, "")
		},
		// TCP FIN without a close frame
		func(i int) {
			b := h.quietBrowser(t, sess(fmt.Sprint("u", i)))
			if b == nil {
				return
			}
			b.send(`{"action":"subscribe","symbols":["` + syms[i%len(syms)] + `"]}`)
			b.untilLoose("subscribed")
			_ = b.c.CloseNow()
		},
		// TCP reset right after a subscribe, without reading
		func(i int) {
			c, _ := rawUpgrade(t, addr, sess(fmt.Sprint("u", i)))
			if c == nil {
				return
			}
			_, _ = c.Write(maskedText([]byte(`{"action":"subscribe","symbols":["` + syms[(i+5)%len(syms)] + `"]}`)))
			_ = c.(*net.TCPConn).SetLinger(0)
			_ = c.Close()
		},
		// mid-handshake: half a request, or a whole one and gone before
		// the answer
		func(i int) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			req := upgradeRequest(addr, sess(fmt.Sprint("u", i)))
			if i%2 == 0 {
				req = req[:len(req)/2]
			}
			_, _ = c.Write([]byte(req))
			_ = c.(*net.TCPConn).SetLinger(0)
			_ = c.Close()
		},
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		if i == n/2 {
			h.vendor.dropAll() // the upstream dies while browsers come and go
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			manners[i%len(manners)](i)
		}()
	}
	wg.Wait()

	eventually(t, "every socket released", func() bool {
		return gauge(t, h.metrics.WSClientsByFeed.WithLabelValues("demo")) == 0
	})
	eventually(t, "vendor unsubscribed from everything", func() bool { return len(h.vendor.subscribed()) == 0 })
	hb := h.relay.hubs["demo"]
	hb.mu.Lock()
	left := len(hb.clients) + len(hb.subs) + len(hb.sessions) + len(hb.slotOf)
	hb.mu.Unlock()
	h.relay.mu.Lock()
	left += len(h.relay.conns)
	h.relay.mu.Unlock()
	if left != 0 {
		t.Errorf("%d clients, subscriptions, sessions or connection counts left", left)
	}
	unsubs := 0
	for _, m := range h.vendor.receivedCopy() {
		if strings.Contains(m, `"unsubscribe"`) {
			unsubs++
		}
	}
	if unsubs == 0 {
		t.Error("the vendor got no unsubscribe")
	}
	var now int
	eventually(t, "goroutines back to the baseline", func() bool {
		now = runtime.NumGoroutine()
		return now <= baseline
	})
	t.Logf("%d sockets; goroutines: baseline %d, after %d", n, baseline, now)
}

// quietBrowser opens a socket and reads its ready message; it reports
// failures with t.Error (it runs on many goroutines) and returns nil.
func (h *harness) quietBrowser(t *testing.T, sess string) *browser {
	c, _, err := h.dial("demo", sess, testOrigin)
	if err != nil {
		t.Errorf("dial: %v", err)
		return nil
	}
	b := &browser{t: t, c: c, user: sess}
	m, err := b.read()
	if err != nil || m.Type != "ready" {
		t.Errorf("first message %s (%v), want ready", m.raw, err)
		_ = c.CloseNow()
		return nil
	}
	return b
}

// untilLoose is until for use off the test goroutine: a failure is
// reported with t.Error.
func (b *browser) untilLoose(typ string) {
	for {
		m, err := b.read()
		if err != nil {
			b.t.Errorf("%s: waiting for %s: %v", b.user, typ, err)
			return
		}
		if m.Type == typ {
			return
		}
	}
}

func upgradeRequest(addr, sess string) string {
	return "GET /ws/demo HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Origin: " + testOrigin + "\r\nX-Test-Session: " + sess + "\r\n\r\n"
}

// rawUpgrade completes a WebSocket handshake over a plain TCP connection,
// so a test can end it in ways a WebSocket library does not offer.
func rawUpgrade(t *testing.T, addr, sess string) (net.Conn, *bufio.Reader) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return nil, nil
	}
	_ = c.SetDeadline(time.Now().Add(waitLong))
	if _, err := c.Write([]byte(upgradeRequest(addr, sess))); err != nil {
		t.Error(err)
		_ = c.Close()
		return nil, nil
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("raw upgrade: %v %v", resp, err)
		_ = c.Close()
		return nil, nil
	}
	return c, br
}

// maskedText is a client text frame (masked, as RFC 6455 requires) of a
// payload shorter than 126 bytes.
func maskedText(payload []byte) []byte {
	mask := [4]byte{1, 2, 3, 4}
	out := append([]byte{0x81, 0x80 | byte(len(payload))}, mask[:]...)
	for i, b := range payload {
		out = append(out, b^mask[i%4])
	}
	return out
}
