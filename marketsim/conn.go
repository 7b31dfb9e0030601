package marketsim

import (
	"context"
	"errors"
	"math/bits"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// closeKind says why a connection ends; spec says how.
type closeKind int

const (
	closeNone        closeKind = iota
	closePeer                  // the peer closed or the socket failed
	closeDropped               // DropAll
	closeShutdown              // Server.Close
	closeAuthFailed            // bad key
	closeAuthTimeout           // no auth in time
	closeRefused               // cap reached, refuse_new
	closeEvicted               // cap reached, evict_old
	closePong                  // no pong in time
	closeSlow                  // outbound queue overflow
	closeRate                  // too many client messages
	closeLifetime              // MaxLifetime
)

var closeNames = [...]string{"none", "peer", "dropped", "shutdown", "auth_failed", "auth_timeout",
	"refused_by_cap", "evicted_by_cap", "pong_timeout", "slow_client", "message_rate", "lifetime"}

func (k closeKind) String() string {
	if int(k) < len(closeNames) {
		return closeNames[k]
	}
	return "unknown"
}

// closeSpec is what the client sees when a connection ends.
type closeSpec struct {
	code    websocket.StatusCode
	reason  string // close frame reason: a constant, at most 123 bytes
	status  string // final {"ev":"status"} frame, if any
	message string
	abrupt  bool // no close frame at all
	drain   bool // write the frames already queued first
}

func (k closeKind) spec() closeSpec {
	switch k {
	case closeShutdown:
		return closeSpec{code: websocket.StatusGoingAway, reason: "server shutting down"}
	case closeAuthFailed:
		return closeSpec{code: CloseAuthFailed, reason: "auth failed", status: StatusAuthFailed, message: "invalid api key", drain: true}
	case closeAuthTimeout:
		return closeSpec{code: CloseAuthTimeout, reason: "auth timeout", status: StatusAuthTimeout, message: "no auth message in time", drain: true}
	case closeRefused, closeEvicted:
		return closeSpec{code: CloseMaxConnections, reason: "max connections", status: StatusMaxConnections, message: "connection limit for this key reached", drain: true}
	case closePong:
		return closeSpec{code: ClosePongTimeout, reason: "pong timeout"}
	case closeSlow:
		return closeSpec{code: CloseSlowClient, reason: "slow client", status: StatusSlowClient, message: "outbound queue overflow"}
	case closeRate:
		return closeSpec{code: CloseMessageRate, reason: "too many messages", drain: true}
	case closeLifetime:
		return closeSpec{code: websocket.StatusGoingAway, reason: "connection lifetime exceeded", drain: true}
	default: // closePeer, closeDropped
		return closeSpec{abrupt: true}
	}
}

// frame is one outbound text message, pooled.
type frame struct{ b []byte }

// conn is one WebSocket client. Its goroutines: the handler's reader, a
// writer that owns every write, the timers and the close, and a pinger.
type conn struct {
	srv        *Server
	ws         *websocket.Conn
	out        chan *frame
	done       chan struct{} // closed when the connection starts closing
	writerDone chan struct{}
	pingerDone chan struct{}

	// reader goroutine only
	msgTimes []time.Time
	msgHead  int

	mu      sync.Mutex // guards the fields below and ordering of sends
	id      uint64     // also written before publication
	closing bool
	kind    closeKind // set before done is closed
	authed  bool
	key     string // written under s.mu and mu
	subs    []uint64
	nsubs   int
}

func (s *Server) newConn(ws *websocket.Conn) *conn {
	c := &conn{
		srv:        s,
		ws:         ws,
		out:        make(chan *frame, s.opts.OutQueue),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
		pingerDone: make(chan struct{}),
		subs:       make([]uint64, (len(s.syms)+63)/64),
	}
	if n := s.opts.MaxClientMsgsPerSec; n > 0 {
		c.msgTimes = make([]time.Time, 0, n)
	}
	return c
}

func (c *conn) has(i int32) bool { return c.subs[i>>6]&(1<<(uint(i)&63)) != 0 }

// markClosingLocked starts closing with kind, once. It drops the
// subscriptions so no more data is queued. c.mu must be held.
func (c *conn) markClosingLocked(kind closeKind) bool {
	if c.closing {
		return false
	}
	c.closing = true
	c.kind = kind
	for w, word := range c.subs {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			word &^= 1 << b
			c.srv.ref(w*64+b, -1)
		}
		c.subs[w] = 0
	}
	c.nsubs = 0
	c.srv.countClose(kind)
	close(c.done)
	return true
}

// shutdown starts closing with kind; false if it was already closing.
func (c *conn) shutdown(kind closeKind) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.markClosingLocked(kind)
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// enqueueLocked queues f without blocking; a full queue closes the
// connection as a slow client. c.mu must be held.
func (c *conn) enqueueLocked(f *frame) bool {
	if c.closing {
		c.srv.putFrame(f)
		return false
	}
	select {
	case c.out <- f:
		return true
	default:
		c.srv.putFrame(f)
		c.markClosingLocked(closeSlow)
		return false
	}
}

func (c *conn) sendLocked(b []byte) { c.enqueueLocked(&frame{b: b}) }

func (c *conn) sendStatus(status, message string, symbols []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sendLocked(statusFrame(status, message, symbols))
}

// writeLoop writes queued frames and runs the auth and lifetime timers
// until the connection closes, then performs the close.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	o := &c.srv.opts
	authT := time.NewTimer(o.AuthTimeout)
	defer authT.Stop()
	authC := authT.C
	var lifeC <-chan time.Time
	if o.MaxLifetime > 0 {
		lt := time.NewTimer(o.MaxLifetime)
		defer lt.Stop()
		lifeC = lt.C
	}
	for {
		select {
		case f := <-c.out:
			if err := c.write(f); err != nil {
				c.shutdown(closePeer)
				_ = c.ws.CloseNow()
				return
			}
		case <-authC:
			authC = nil
			c.mu.Lock()
			if !c.authed {
				c.markClosingLocked(closeAuthTimeout)
			}
			c.mu.Unlock()
		case <-lifeC:
			lifeC = nil
			c.shutdown(closeLifetime)
		case <-c.done:
			c.finish()
			return
		}
	}
}

func (c *conn) write(f *frame) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.srv.opts.WriteTimeout)
	err := c.ws.Write(ctx, websocket.MessageText, f.b)
	cancel()
	c.srv.putFrame(f)
	if err == nil {
		c.srv.stats.frames.Add(1)
	}
	return err
}

// finish closes the socket the way c.kind says. kind was written before
// done was closed, so reading it here is ordered.
func (c *conn) finish() {
	sp := c.kind.spec()
	if sp.abrupt {
		_ = c.ws.CloseNow()
		return
	}
	if sp.drain {
	drain:
		for {
			select {
			case f := <-c.out:
				if c.write(f) != nil {
					_ = c.ws.CloseNow()
					return
				}
			default:
				break drain
			}
		}
	}
	if sp.status != "" {
		if c.write(&frame{b: statusFrame(sp.status, sp.message, nil)}) != nil {
			_ = c.ws.CloseNow()
			return
		}
	}
	_ = c.ws.Close(sp.code, sp.reason)
	_ = c.ws.CloseNow()
}

// pingLoop pings every PingInterval; a ping without pong within
// PongTimeout closes with 4004.
func (c *conn) pingLoop() {
	defer close(c.pingerDone)
	o := &c.srv.opts
	t := time.NewTicker(o.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		// Not derived from a context that closing cancels: cancelling a
		// write in progress would make coder/websocket drop the socket and
		// turn a graceful close into an abrupt one. Ping returns anyway
		// once the socket closes.
		ctx, cancel := context.WithTimeout(context.Background(), o.PongTimeout)
		err := c.ws.Ping(ctx)
		cancel()
		switch {
		case err == nil:
			c.srv.stats.pings.Add(1)
		case c.isClosing():
			return
		case errors.Is(err, context.DeadlineExceeded):
			c.shutdown(closePong)
			return
		default:
			return // socket gone; the reader notices
		}
	}
}

// allowMessage records a client message at now and reports whether the
// connection stays within MaxClientMsgsPerSec in every one-second window.
func (c *conn) allowMessage(now time.Time) bool {
	n := cap(c.msgTimes)
	if n == 0 {
		return true
	}
	if len(c.msgTimes) < n {
		c.msgTimes = append(c.msgTimes, now)
		return true
	}
	oldest := c.msgTimes[c.msgHead]
	if now.Sub(oldest) < time.Second {
		return false
	}
	c.msgTimes[c.msgHead] = now
	c.msgHead = (c.msgHead + 1) % n
	return true
}

func (s *Server) getFrame() *frame {
	return s.frames.Get().(*frame)
}

func (s *Server) putFrame(f *frame) {
	if cap(f.b) > 4*s.opts.MaxFrameBytes {
		return
	}
	f.b = f.b[:0]
	s.frames.Put(f)
}

// ref changes the number of connections subscribed to symbol i and wakes
// the generator on the first subscription anywhere.
func (s *Server) ref(i int, delta int32) {
	s.refs[i].Add(delta)
	if s.active.Add(int64(delta)) == 1 && delta > 0 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *Server) countClose(k closeKind) {
	st := &s.stats
	switch k {
	case closeDropped:
		st.dropped.Add(1)
	case closeAuthFailed:
		st.authFailures.Add(1)
	case closeAuthTimeout:
		st.authTimeouts.Add(1)
	case closeRefused:
		st.refused.Add(1)
	case closeEvicted:
		st.evicted.Add(1)
	case closePong:
		st.pongTimeouts.Add(1)
	case closeSlow:
		st.slow.Add(1)
	case closeRate:
		st.rateViol.Add(1)
	case closeLifetime:
		st.lifetime.Add(1)
	}
}
