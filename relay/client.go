package relay

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/logging"
	"github.com/tickgate/tickgate/session"
)

const (
	// maxPendingCtrl bounds the replies and status messages waiting for a
	// browser; past it the browser is not reading and is closed.
	maxPendingCtrl = 64
	// closeTimeout bounds a close handshake; then the socket is cut.
	closeTimeout = 2 * time.Second
	// touchEvery throttles Sessions.Touch per socket.
	touchEvery = time.Second
	// touchTimeout bounds one Sessions.Touch.
	touchTimeout = 2 * time.Second
	// maxKeptBuffer is the largest encode buffer returned to the pool.
	maxKeptBuffer = 64 << 10
)

// pendingMsg is one vendor message waiting for a browser.
type pendingMsg struct {
	sym string // canonical symbol string, shared by every subscriber
	raw []byte // the vendor's bytes, shared by every subscriber
}

// client is one browser socket. Its reader runs on the ServeHTTP
// goroutine; a writer goroutine owns every write and the close
// handshake; the hub only appends to its queues.
type client struct {
	r      *Relay
	h      *hub
	conn   *websocket.Conn
	user   string
	sess   sessionRef
	ctx    context.Context // cancelled to cut the socket at once
	logCtx context.Context // the upgrade request's, for its request id in logs
	cancel context.CancelFunc
	opened time.Time

	aux        sync.WaitGroup // ping and touch goroutines
	writerDone chan struct{}

	syms map[string]int // symbol → index in hub.subs[symbol].cl; guarded by h.mu

	mu       sync.Mutex
	ctrl     [][]byte     // replies and status, sent before data
	data     []pendingMsg // data waiting for the batch window
	spare    []pendingMsg // recycled backing array for data
	conf     map[string]int
	firstAt  time.Time // arrival of the oldest waiting data
	signaled bool      // the writer was woken for the waiting data
	closing  bool      // closeWith was called: queue nothing more

	wake        chan struct{} // capacity 1
	closeReq    chan struct{} // closed by closeWith
	closeOnce   sync.Once
	closeCode   websocket.StatusCode
	closeReason string

	budget *sessionState // the session's control message budget

	// access is the session's symbol limit and allowlist (access.go).
	access config.FeedAccess

	// reader goroutine only
	lastTouch time.Time

	touching atomic.Bool
	pinging  atomic.Bool
	dead     atomic.Bool // a ping went unanswered

	// Flow control: at most SendWindow bytes on the way to the browser
	// unconfirmed. A ping sent after them confirms them when its pong
	// comes back (browsers answer pings as they read).
	sent        int64        // bytes written; writer goroutine only
	stalled     time.Time    // when data began waiting for confirmation; writer only
	acked       atomic.Int64 // bytes confirmed
	flowPinging atomic.Bool  // a confirming ping is out
}

// sessionRef is what a socket keeps of its session: never printed.
type sessionRef struct{ Key string }

func newClient(r *Relay, h *hub, conn *websocket.Conn, s *session.Session, st *sessionState) *client {
	ctx, cancel := context.WithCancel(r.ctx)
	return &client{
		r:          r,
		h:          h,
		conn:       conn,
		user:       s.User,
		sess:       sessionRef{Key: s.Key},
		budget:     st,
		ctx:        ctx,
		logCtx:     context.Background(),
		cancel:     cancel,
		opened:     time.Now(),
		writerDone: make(chan struct{}),
		syms:       make(map[string]int),
		wake:       make(chan struct{}, 1),
		closeReq:   make(chan struct{}),
	}
}

// run serves the socket until it closes, then releases everything it held.
func (c *client) run() {
	ended, stopWatch := c.r.cfg.Sessions.Watch(c.sess.Key)
	defer stopWatch()
	defer c.cancel()
	if err := c.h.add(c); err != nil {
		code, reason := closeUnavailable, "feed unavailable"
		if errors.Is(err, ErrClosed) {
			code, reason = closeShutdown, "server shutting down"
		}
		c.h.log.InfoContext(c.logCtx, "ws refused", logging.Audit(), "user", c.user, "code", int(code), "reason", reason)
		c.closeWith(code, reason)
		c.closeConn()
		return
	}
	c.r.cfg.Metrics.WSClients.Inc()
	c.h.mClients.Inc()
	c.h.log.InfoContext(c.logCtx, "ws open", logging.Audit(), "user", c.user)

	go c.writeLoop(ended)
	err := c.readLoop()
	c.h.remove(c)
	if !c.closeRequested() {
		c.cancel() // the browser went away: stop the writer now
	}
	<-c.writerDone
	c.cancel()
	_ = c.conn.CloseNow()
	c.aux.Wait()

	c.r.cfg.Metrics.WSClients.Dec()
	c.h.mClients.Dec()
	code, reason := websocket.CloseStatus(err), "browser closed"
	switch {
	case c.closeRequested():
		code, reason = c.closeCode, c.closeReason
	case c.dead.Load():
		code, reason = websocket.StatusAbnormalClosure, "ping timeout"
	case code == -1:
		code, reason = websocket.StatusAbnormalClosure, "connection lost"
	}
	c.h.log.InfoContext(c.logCtx, "ws close", logging.Audit(), "user", c.user, "code", int(code), "reason", reason,
		"duration", time.Since(c.opened).Round(time.Millisecond).String())
}

// closeWith asks the writer to close the socket with code. The first
// call wins; queued data is dropped. Queued replies (ready, acks) still go
// out before a 1001, 1013 or 4001 close, not before a policy close.
func (c *client) closeWith(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeReason = code, reason
		keep := code == closeUnavailable || code == closeShutdown || code == closeSessionEnded
		c.mu.Lock()
		c.closing = true
		if !keep {
			c.ctrl = nil
		}
		clear(c.data)
		c.data = nil
		c.mu.Unlock()
		close(c.closeReq)
	})
}

func (c *client) closeRequested() bool {
	select {
	case <-c.closeReq:
		return true
	default:
		return false
	}
}

// closeConn sends the replies still queued, then runs the close
// handshake, cutting the socket if the browser does not answer within
// closeTimeout (cancelling ctx makes the reader's
// pending read close the connection).
func (c *client) closeConn() {
	c.mu.Lock()
	ctrl := c.ctrl
	c.ctrl = nil
	c.mu.Unlock()
	if len(ctrl) > 0 {
		ctx, cancel := context.WithTimeout(c.ctx, closeTimeout)
		for _, b := range ctrl {
			if c.conn.Write(ctx, websocket.MessageText, b) != nil {
				break
			}
		}
		cancel()
	}
	t := time.AfterFunc(closeTimeout, c.cancel)
	_ = c.conn.Close(c.closeCode, c.closeReason)
	t.Stop()
}

// readLoop reads browser messages until the socket fails. After a close
// was requested it keeps reading (and ignoring) so the close handshake
// completes and a cancelled ctx can cut the socket.
func (c *client) readLoop() error {
	for {
		typ, b, err := c.conn.Read(c.ctx)
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				c.closeWith(closeTooBig, "message too big")
			}
			return err
		}
		if c.closeRequested() {
			continue
		}
		now := time.Now()
		if !c.budget.allow(now, float64(c.r.cfg.ControlRate)) {
			c.h.log.WarnContext(c.logCtx, "ws message rate exceeded", logging.Audit(), "user", c.user, "limit", c.r.cfg.ControlRate)
			c.closeWith(closePolicy, "message rate exceeded")
			continue
		}
		c.handle(typ, b, now)
	}
}

func (c *client) handle(typ websocket.MessageType, b []byte, now time.Time) {
	req, perr := parseRequest(typ, b)
	if perr != nil {
		c.h.log.Debug("ws bad message", "user", c.user, "code", perr.code)
		c.pushCtrl(errorMessage(perr))
		return
	}
	c.touch(now)
	switch req.action {
	case actionPing:
		c.pushCtrl(msgPong)
	case actionSubscribe:
		if perr := c.h.subscribe(c, req.symbols); perr != nil {
			c.h.log.InfoContext(c.logCtx, "ws subscribe refused", logging.Audit(), "user", c.user, "symbols", req.symbols, "code", perr.code)
			c.pushCtrl(errorMessage(perr))
			return
		}
		c.h.log.InfoContext(c.logCtx, "ws subscribe", logging.Audit(), "user", c.user, "symbols", req.symbols)
	case actionUnsubscribe:
		c.h.unsubscribe(c, req.symbols)
		c.h.log.InfoContext(c.logCtx, "ws unsubscribe", logging.Audit(), "user", c.user, "symbols", req.symbols)
	}
}

// touch records session activity in the background, at most once per
// touchEvery and one at a time, so a slow session store never stalls
// the reader.
func (c *client) touch(now time.Time) {
	if !c.lastTouch.IsZero() && now.Sub(c.lastTouch) < touchEvery {
		return
	}
	if !c.touching.CompareAndSwap(false, true) {
		return
	}
	c.lastTouch = now
	c.aux.Add(1)
	go func() {
		defer c.aux.Done()
		defer c.touching.Store(false)
		ctx, cancel := context.WithTimeout(c.ctx, touchTimeout)
		defer cancel()
		err := c.r.cfg.Sessions.Touch(ctx, c.sess.Key)
		switch {
		case errors.Is(err, session.ErrNotFound):
			c.closeWith(closeSessionEnded, "session ended")
		case err != nil && c.ctx.Err() == nil:
			c.h.log.Warn("ws session touch failed", "user", c.user, "err", err)
		}
	}()
}

// pushCtrl queues a reply or status message.
func (c *client) pushCtrl(b []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if len(c.ctrl) >= maxPendingCtrl {
		c.mu.Unlock()
		c.h.log.Warn("ws slow client: replies not read", "user", c.user)
		c.closeWith(closePolicy, "slow client")
		return
	}
	c.ctrl = append(c.ctrl, b)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// pushData queues a data message; it never blocks. Past QueueSize waiting
// messages the queue conflates: a new message replaces the waiting one of
// its symbol. It returns how many messages were dropped.
func (c *client) pushData(m pendingMsg, now time.Time) int {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return 0
	}
	dropped := 0
	if c.conf == nil && len(c.data) >= c.r.cfg.QueueSize {
		dropped = c.startConflating()
	}
	if c.conf != nil {
		if i, ok := c.conf[m.sym]; ok {
			c.data[i] = m
			c.mu.Unlock()
			return dropped + 1
		}
		c.conf[m.sym] = len(c.data)
	}
	if len(c.data) == 0 {
		c.firstAt = now
	}
	c.data = append(c.data, m)
	wake := !c.signaled
	c.signaled = true
	c.mu.Unlock()
	if wake {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return dropped
}

// startConflating keeps the latest waiting message per symbol and indexes
// them. Called with c.mu held.
func (c *client) startConflating() int {
	c.conf = make(map[string]int, len(c.data))
	n := 0
	for _, m := range c.data {
		if i, ok := c.conf[m.sym]; ok {
			c.data[i] = m
			continue
		}
		c.conf[m.sym] = n
		c.data[n] = m
		n++
	}
	dropped := len(c.data) - n
	clear(c.data[n:])
	c.data = c.data[:n]
	return dropped
}

// dropPending removes waiting data of syms (after an unsubscribe, the
// browser gets no more data for them).
func (c *client) dropPending(syms []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.data) == 0 {
		return
	}
	n := 0
	for _, m := range c.data {
		if !slices.Contains(syms, m.sym) {
			c.data[n] = m
			n++
		}
	}
	clear(c.data[n:])
	c.data = c.data[:n]
	if n == 0 {
		c.signaled = false
	}
	if c.conf != nil {
		clear(c.conf)
		for i, m := range c.data {
			c.conf[m.sym] = i
		}
	}
}

// take returns the waiting replies, and, when dataOK, the waiting data
// once the batch window of its oldest message has passed; otherwise how
// long to wait. pending reports data left waiting.
func (c *client) take(now time.Time, dataOK bool) (ctrl [][]byte, data []pendingMsg, wait time.Duration, pending bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctrl, c.ctrl = c.ctrl, nil
	if len(c.data) == 0 {
		return ctrl, nil, 0, false
	}
	if !dataOK {
		return ctrl, nil, 0, true
	}
	if due := c.firstAt.Add(c.h.window); now.Before(due) {
		return ctrl, nil, due.Sub(now), true
	}
	data, c.data, c.spare = c.data, c.spare, nil
	c.conf = nil
	c.signaled = false
	return ctrl, data, 0, false
}

// recycle gives a written batch's backing array back for the next batch.
func (c *client) recycle(data []pendingMsg) {
	clear(data)
	c.mu.Lock()
	if c.spare == nil && cap(data) <= 4*c.r.cfg.QueueSize {
		c.spare = data[:0]
	}
	c.mu.Unlock()
}

// writeLoop owns every write to the socket: replies first, then data
// batched per window, pings, and the close handshake.
func (c *client) writeLoop(ended <-chan struct{}) {
	defer close(c.writerDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	ping := time.NewTicker(c.r.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.closeReq:
			c.closeConn()
			return
		default:
		}
		select {
		case <-c.ctx.Done():
			return
		case <-c.closeReq:
			c.closeConn()
			return
		case <-ended:
			ended = nil
			c.closeWith(closeSessionEnded, "session ended")
			continue
		case <-ping.C:
			c.ping()
			continue
		case <-c.wake:
		case <-timer.C:
		}
		now := time.Now()
		open := c.sent-c.acked.Load() < c.r.cfg.SendWindow
		ctrl, data, wait, pending := c.take(now, open)
		for _, b := range ctrl {
			if !c.write(b, 1) {
				return
			}
		}
		if len(data) > 0 {
			bp := c.r.getBuf()
			*bp = appendData((*bp)[:0], c.h.prefix, data)
			n := len(data)
			c.recycle(data)
			c.h.mOut.Inc() // before the write: a browser that got the frame finds it counted
			ok := c.write(*bp, n)
			c.r.putBuf(bp)
			if !ok {
				return
			}
		}
		switch {
		case open || !pending:
			c.stalled = time.Time{}
		case c.stalled.IsZero():
			c.stalled = now
			c.confirm()
			wait = c.r.cfg.WriteTimeout
		case now.Sub(c.stalled) >= c.r.cfg.WriteTimeout:
			c.stalledOut()
			continue
		default:
			c.confirm()
			wait = c.stalled.Add(c.r.cfg.WriteTimeout).Sub(now)
		}
		if wait > 0 {
			timer.Reset(wait)
		}
	}
}

// confirm sends a ping that, when answered, confirms every byte written
// before it. One at a time.
func (c *client) confirm() {
	if !c.flowPinging.CompareAndSwap(false, true) {
		return
	}
	mark := c.sent
	c.aux.Add(1)
	go func() {
		defer c.aux.Done()
		ctx, cancel := context.WithTimeout(c.ctx, c.r.cfg.WriteTimeout)
		err := c.conn.Ping(ctx)
		cancel()
		if err == nil {
			c.acked.Store(mark)
		}
		c.flowPinging.Store(false)
		if err == nil {
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
	}()
}

// stalledOut closes a browser that confirmed none of its data for
// WriteTimeout. Its unconfirmed bytes are bounded by SendWindow, so the
// close frame still fits in the socket buffers and the browser reads
// 4008 after its data, not an abnormal closure.
func (c *client) stalledOut() {
	c.mu.Lock()
	dropped := len(c.data)
	c.mu.Unlock()
	c.h.mSlow.Add(float64(dropped))
	c.h.log.Warn("ws slow client dropped: data not taken", "user", c.user, "write_timeout", c.r.cfg.WriteTimeout.String(),
		"unconfirmed_bytes", c.sent-c.acked.Load())
	c.closeWith(closePolicy, "slow client")
}

// write sends one text frame within WriteTimeout. On failure the socket
// is cut; a browser that did not take the frame in time is a slow client.
func (c *client) write(b []byte, msgs int) bool {
	ctx, cancel := context.WithTimeout(c.ctx, c.r.cfg.WriteTimeout)
	err := c.conn.Write(ctx, websocket.MessageText, b)
	timedOut := ctx.Err() == context.DeadlineExceeded // the deadline came first, whatever followed
	cancel()
	if err == nil {
		c.sent += int64(len(b))
		if c.sent-c.acked.Load() >= c.r.cfg.SendWindow/2 {
			c.confirm()
		}
		return true
	}
	if timedOut {
		c.mu.Lock()
		dropped := len(c.data) + msgs
		c.mu.Unlock()
		c.h.mSlow.Add(float64(dropped))
		c.h.log.Warn("ws slow client dropped", "user", c.user, "write_timeout", c.r.cfg.WriteTimeout.String())
		c.closeWith(closePolicy, "slow client")
	}
	c.cancel()
	return false
}

// ping checks the browser is alive in the background; one that does not
// answer within PingInterval is cut.
func (c *client) ping() {
	if !c.pinging.CompareAndSwap(false, true) {
		return
	}
	c.aux.Add(1)
	go func() {
		defer c.aux.Done()
		defer c.pinging.Store(false)
		ctx, cancel := context.WithTimeout(c.ctx, c.r.cfg.PingInterval)
		defer cancel()
		if err := c.conn.Ping(ctx); err != nil && ctx.Err() == context.DeadlineExceeded && c.ctx.Err() == nil {
			c.dead.Store(true)
			c.cancel()
		}
	}()
}
