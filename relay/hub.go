package relay

import (
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickgate/tickgate/config"
)

// hubState is the state of a feed's upstream connection.
type hubState int

const (
	stateIdle         hubState = iota // no browser has asked for the feed yet
	stateConnecting                   // first connection attempt in progress
	stateConnected                    // authenticated upstream
	stateReconnecting                 // lost or failing; browsers were told
	stateFailed                       // key missing or refused: browsers get 1013
)

// hub serves one feed: it owns the feed's one upstream connection and the
// symbol → subscribers index. One mutex guards every map of the hub and
// nothing blocks or does I/O under it: fan-out only appends to the
// clients' bounded queues.
type hub struct {
	r          *Relay
	name       string
	feed       config.Feed
	url        *url.URL
	path       string // the vendor URL's path, for logs (never the URL: its query may hold the key)
	ad         *adapter
	maxSymbols int           // per session
	window     time.Duration // batch window per browser
	prefix     []byte        // start of a data message
	readyMsg   []byte        // the ready message
	log        *slog.Logger

	mClients, mUpstream, mSubs              prometheus.Gauge
	mIn, mOut, mReconnects                  prometheus.Counter
	mConflated, mSlow, mUnroutable, mGuards prometheus.Counter

	mu       sync.Mutex
	subs     map[string]*subList       // symbol → sockets subscribed to it
	linger   map[string]time.Time      // symbol no one wants → when to unsubscribe upstream
	sessions map[string]map[string]int // session key → symbol → its sockets holding it
	clients  map[*client]struct{}
	state    hubState
	closed   bool // Close began: no new clients

	kick chan struct{} // wakes the upstream goroutine: the wanted symbols changed
	done chan struct{} // closed when the upstream goroutine returns
}

// subList is the sockets subscribed to one symbol. Each socket records its
// index (client.syms) so leaving is O(1).
type subList struct {
	sym string
	cl  []*client
}

func newHub(r *Relay, name string, f config.Feed, ad *adapter) *hub {
	m := r.cfg.Metrics
	u, _ := url.Parse(f.URL) // newAdapter checked it
	h := &hub{
		r:          r,
		name:       name,
		feed:       f,
		url:        u,
		path:       u.Path,
		ad:         ad,
		maxSymbols: r.cfg.MaxSymbols,
		window:     25 * time.Millisecond,
		prefix:     dataPrefix(name),
		log:        r.log.With("feed", name),

		mClients:    m.WSClientsByFeed.WithLabelValues(name),
		mUpstream:   m.UpstreamWSConnections.WithLabelValues(name),
		mSubs:       m.WSSubscriptions.WithLabelValues(name),
		mIn:         m.WSMessagesIn.WithLabelValues(name),
		mOut:        m.WSMessagesOut.WithLabelValues(name),
		mReconnects: m.WSReconnects.WithLabelValues(name),
		mConflated:  m.WSDropped.WithLabelValues(name, "conflated"),
		mSlow:       m.WSDropped.WithLabelValues(name, "slow_client"),
		mUnroutable: m.WSDropped.WithLabelValues(name, "unroutable"),
		mGuards:     m.WSDropped.WithLabelValues(name, "key_guard"),

		subs:     make(map[string]*subList),
		linger:   make(map[string]time.Time),
		sessions: make(map[string]map[string]int),
		clients:  make(map[*client]struct{}),
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	if f.MaxSymbols > 0 {
		h.maxSymbols = f.MaxSymbols
	}
	if f.BatchWindow > 0 {
		h.window = f.BatchWindow.Std()
	}
	h.readyMsg = readyMessage(name, h.maxSymbols)
	return h
}

// add registers a new socket, queues its ready message and starts the
// upstream connection on the feed's first socket.
func (h *hub) add(c *client) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return ErrClosed
	case h.state == stateFailed:
		return ErrUnavailable
	}
	h.clients[c] = struct{}{}
	c.pushCtrl(h.readyMsg)
	if h.state == stateReconnecting {
		c.pushCtrl(msgStatusReconnecting)
	}
	if h.state == stateIdle {
		h.state = stateConnecting
		go h.run()
	}
	return nil
}

// remove releases a socket's subscriptions.
func (h *hub) remove(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; !ok {
		return
	}
	delete(h.clients, c)
	changed := false
	now := time.Now()
	for s := range c.syms {
		changed = h.removeSym(c, s, now) || changed
	}
	if changed {
		h.kickUpstream()
	}
}

// subscribe adds syms to c, all or nothing, and queues the acknowledgement
// ahead of any data for them.
func (h *hub) subscribe(c *client, syms []string) *protoError {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; !ok {
		return nil // closing
	}
	held := h.sessions[c.sess.Key]
	newForSession, newForFeed := 0, 0
	for _, s := range syms {
		if _, ok := c.syms[s]; ok {
			continue
		}
		if held[s] == 0 {
			newForSession++
		}
		if h.subs[s] == nil {
			newForFeed++
		}
	}
	if len(held)+newForSession > h.maxSymbols {
		return errTooManySymbols(h.maxSymbols)
	}
	if h.ad.maxSyms > 0 && len(h.subs)+newForFeed > h.ad.maxSyms {
		return errFeedFull
	}
	if held == nil {
		held = make(map[string]int, len(syms))
		h.sessions[c.sess.Key] = held
	}
	changed := false
	for _, s := range syms {
		if _, ok := c.syms[s]; ok {
			continue
		}
		l := h.subs[s]
		if l == nil {
			l = &subList{sym: s}
			h.subs[s] = l
			if _, lingering := h.linger[s]; lingering {
				delete(h.linger, s) // still subscribed upstream
			} else {
				changed = true
			}
		}
		c.syms[s] = len(l.cl)
		l.cl = append(l.cl, c)
		held[s]++
	}
	c.pushCtrl(ackMessage("subscribed", syms))
	if changed {
		h.kickUpstream()
	}
	return nil
}

// unsubscribe removes syms from c, drops their queued data and queues the
// acknowledgement. Symbols c did not hold are acknowledged too.
func (h *hub) unsubscribe(c *client, syms []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; !ok {
		return
	}
	changed := false
	now := time.Now()
	for _, s := range syms {
		changed = h.removeSym(c, s, now) || changed
	}
	c.dropPending(syms)
	c.pushCtrl(ackMessage("unsubscribed", syms))
	if changed {
		h.kickUpstream()
	}
}

// removeSym takes c off symbol s; it reports whether s lost its last
// subscriber. Called with h.mu held.
func (h *hub) removeSym(c *client, s string, now time.Time) bool {
	i, ok := c.syms[s]
	if !ok {
		return false
	}
	delete(c.syms, s)
	l := h.subs[s]
	last := len(l.cl) - 1
	if i != last {
		moved := l.cl[last]
		l.cl[i] = moved
		moved.syms[s] = i
	}
	l.cl[last] = nil
	l.cl = l.cl[:last]
	if held := h.sessions[c.sess.Key]; held != nil {
		if held[s]--; held[s] <= 0 {
			delete(held, s)
		}
		if len(held) == 0 {
			delete(h.sessions, c.sess.Key)
		}
	}
	if len(l.cl) > 0 {
		return false
	}
	delete(h.subs, s)
	if h.r.cfg.Linger > 0 {
		h.linger[s] = now.Add(h.r.cfg.Linger)
	}
	return true
}

func (h *hub) kickUpstream() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// wanted returns the symbols the upstream connection should hold: every
// subscribed symbol and the lingering ones (dropped early to stay under
// the vendor's cap), and when the next linger ends.
func (h *hub) wanted(now time.Time) (map[string]struct{}, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	want := make(map[string]struct{}, len(h.subs)+len(h.linger))
	for s := range h.subs {
		want[s] = struct{}{}
	}
	var next time.Time
	for s, until := range h.linger {
		if !now.Before(until) || (h.ad.maxSyms > 0 && len(want) >= h.ad.maxSyms) {
			delete(h.linger, s)
			continue
		}
		want[s] = struct{}{}
		if next.IsZero() || until.Before(next) {
			next = until
		}
	}
	return want, next
}

// dispatch fans vendor data messages out to their subscribers' queues.
func (h *hub) dispatch(msgs []vendorMsg, now time.Time) {
	conflated := 0
	h.mu.Lock()
	for _, m := range msgs {
		l := h.subs[string(m.sym)]
		if l == nil {
			continue // lingering, or data racing an unsubscribe
		}
		pm := pendingMsg{sym: l.sym, raw: m.raw}
		for _, c := range l.cl {
			conflated += c.pushData(pm, now)
		}
	}
	h.mu.Unlock()
	if conflated > 0 {
		h.mConflated.Add(float64(conflated))
	}
}

// setState records the upstream state and tells the browsers: status
// reconnecting when the upstream is lost, connected when it is back, and
// close 1013 when the feed cannot be served.
func (h *hub) setState(s hubState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.state
	if old == s {
		return
	}
	h.state = s
	switch {
	case s == stateConnected && old == stateReconnecting:
		for c := range h.clients {
			c.pushCtrl(msgStatusConnected)
		}
	case s == stateReconnecting:
		for c := range h.clients {
			c.pushCtrl(msgStatusReconnecting)
		}
	case s == stateFailed:
		for c := range h.clients {
			c.closeWith(closeUnavailable, "feed unavailable")
		}
	}
}

func (h *hub) ready() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state == stateIdle || h.state == stateConnected
}

// closeClients refuses new sockets and closes the open ones with 1001.
func (h *hub) closeClients() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.clients {
		c.closeWith(closeShutdown, "server shutting down")
	}
}

// wait waits for the upstream goroutine, if it was started. The relay's
// context must be cancelled first.
func (h *hub) wait() {
	h.mu.Lock()
	started := h.state != stateIdle
	h.mu.Unlock()
	if started {
		<-h.done
	}
}
