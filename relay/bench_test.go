package relay

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tickgate/tickgate/session"
)

// benchHub is a hub with n subscribed clients that have no sockets: the
// benchmarks measure routing, queueing and encoding, not the network.
func benchHub(b *testing.B, n int, syms []string, perClient int) (*hub, []*client) {
	b.Helper()
	r, err := New(Config{
		Feeds:          nil,
		Sessions:       newSessions(),
		AllowedOrigins: []string{testOrigin},
		QueueSize:      1 << 20,
		MaxSymbols:     len(syms),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.Close)
	ad, err := newAdapter(testFeed("ws://127.0.0.1:1/v1/stream"))
	if err != nil {
		b.Fatal(err)
	}
	ad.maxSyms = 0
	h := newHub(r, "demo", testFeed("ws://127.0.0.1:1/v1/stream"), ad)
	h.window = 0
	h.state = stateConnected // no upstream goroutine
	h.newSlot()              // a connection that takes every symbol (no cap), never started
	clients := make([]*client, n)
	for i := range clients {
		c := newClient(r, h, nil, &session.Session{Key: fmt.Sprint("k", i), User: "u"}, &sessionState{})
		h.clients[c] = struct{}{}
		want := make([]string, perClient)
		for j := range want {
			want[j] = syms[(i+j)%len(syms)]
		}
		if perr := h.subscribe(c, want); perr != nil {
			b.Fatal(perr)
		}
		c.take(time.Now(), true) // drop the ack
		clients[i] = c
	}
	return h, clients
}

func vendorFrame(syms []string) []byte {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, s := range syms {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"ev":"T","sym":%q,"p":191.25,"s":100,"t":1733241600123}`, s)
	}
	sb.WriteByte(']')
	return []byte(sb.String())
}

// BenchmarkFanout is one vendor frame (20 messages, one per symbol of a
// 100-symbol universe) parsed once and delivered to N clients holding 5
// symbols each, including the per-client batch take and data encoding.
func BenchmarkFanout(b *testing.B) {
	universe := make([]string, 100)
	for i := range universe {
		universe[i] = fmt.Sprintf("S%03d", i)
	}
	frame := vendorFrame(universe[:20])
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			h, clients := benchHub(b, n, universe, 5)
			u := &upstream{h: h}
			var msgs []vendorMsg
			buf := make([]byte, 0, 4096)
			delivered := 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				msgs = u.handleFrame(frame, msgs[:0], nil)
				now := time.Now()
				for _, c := range clients {
					_, data, _, _ := c.take(now, true)
					if len(data) > 0 {
						buf = appendData(buf[:0], h.prefix, data)
						delivered += len(data)
						c.recycle(data)
					}
				}
			}
			b.ReportMetric(float64(delivered)/float64(b.N), "deliveries/op")
		})
	}
}

// BenchmarkDispatch is the hub's routing alone: one frame of 20 messages
// to 10,000 clients' queues.
func BenchmarkDispatch(b *testing.B) {
	universe := make([]string, 100)
	for i := range universe {
		universe[i] = fmt.Sprintf("S%03d", i)
	}
	h, clients := benchHub(b, 10000, universe, 5)
	var s scanner = h.ad.scan
	msgs, _ := s.split(nil, vendorFrame(universe[:20]))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		h.dispatch(msgs, time.Now())
		if i%64 == 63 { // keep the queues from growing without bound
			for _, c := range clients {
				if _, data, _, _ := c.take(time.Now(), true); data != nil {
					c.recycle(data)
				}
			}
		}
	}
}

func BenchmarkSplitFrame(b *testing.B) {
	syms := make([]string, 20)
	for i := range syms {
		syms[i] = fmt.Sprintf("S%03d", i)
	}
	frame := vendorFrame(syms)
	s := scanner{symbolField: "sym", control: newMatcher(map[string]string{"ev": "status"})}
	var msgs []vendorMsg
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for range b.N {
		msgs, _ = s.split(msgs[:0], frame)
	}
}

func BenchmarkParseRequest(b *testing.B) {
	msg := []byte(`{"action":"subscribe","symbols":["AAPL","MSFT","TSLA","SPY","QQQ"]}`)
	b.ReportAllocs()
	for range b.N {
		if _, perr := parseRequest(websocket.MessageText, msg); perr != nil {
			b.Fatal(perr)
		}
	}
}
