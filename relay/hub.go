package relay

import (
	"context"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickgate/tickgate/config"
)

const (
	// unknownTTL is how long a symbol the vendor refused is answered
	// unknown_symbol without asking the vendor again.
	unknownTTL = time.Minute
	// maxUnknown bounds the symbols remembered as refused per feed.
	maxUnknown = 4096
)

// hubState is the state of a feed's upstream connection.
type hubState int

const (
	stateIdle         hubState = iota // no browser has asked for the feed yet
	stateConnecting                   // first connection attempt in progress
	stateConnected                    // authenticated upstream
	stateReconnecting                 // lost or failing; browsers were told
	stateFailed                       // key missing or refused: browsers get 1013
	stateDormant                      // lost while no symbol was wanted: reconnects on the next subscribe
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
	feedCap    int           // distinct symbols for the whole feed
	window     time.Duration // batch window per browser
	prefix     []byte        // start of a data message
	readyMsg   []byte        // the ready message
	log        *slog.Logger

	mClients, mUpstream, mSubs              prometheus.Gauge
	mIn, mOut, mReconnects                  prometheus.Counter
	mConflated, mSlow, mUnroutable, mGuards prometheus.Counter

	mu       sync.Mutex
	subs     map[string]*subList  // symbol → sockets subscribed to it
	linger   map[string]time.Time // symbol no one wants → when to unsubscribe upstream
	unknown  map[string]time.Time // symbol the vendor refused → until when subscribes are answered unknown_symbol
	slots    []*slot              // live upstream connections, in creation order
	slotOf   map[string]*slot     // symbol → the connection it is assigned to (subscribed, lingering or awaiting its unsubscribe)
	nextSlot int
	sessions map[string]map[string]int // session key → symbol → its sockets holding it
	users    map[string]map[string]int // user → symbol → its sockets holding it, across the user's sessions
	clients  map[*client]struct{}
	state    hubState // the feed's state: the worst of its connections'
	closed   bool     // Close began: no new clients

	// sleep waits between upstream attempts; tests replace it to watch
	// the backoff.
	sleep func(ctx context.Context, d time.Duration) bool

	// Sharing with other replicas (cluster.go); cl is nil standalone.
	cl       *cluster
	follower bool                // another replica may hold the upstream: start no connection
	remote   map[string]struct{} // as owner: symbols other replicas want
	upCtx    context.Context     // ends this replica's upstream connections; nil: the relay's

	perConn  int            // symbols per upstream connection; 0 = no cap
	maxConns int            // upstream connections with the key
	wg       sync.WaitGroup // upstream goroutines
}

// slot is one upstream connection of a feed and the symbols assigned to
// it. Its fields other than idx and kick are guarded by hub.mu.
type slot struct {
	idx     int                 // for logs
	syms    map[string]struct{} // assigned symbols
	refused map[string]struct{} // refused by the vendor since the last reconcile: forget without unsubscribing
	state   hubState
	kick    chan struct{}   // wakes its goroutine: the wanted symbols changed
	ctx     context.Context // ends the connection
	done    chan struct{}   // closed when its goroutine ends
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
		unknown:  make(map[string]time.Time),
		slotOf:   make(map[string]*slot),
		sessions: make(map[string]map[string]int),
		users:    make(map[string]map[string]int),
		clients:  make(map[*client]struct{}),
		sleep:    sleep,
		perConn:  ad.maxSyms,
		maxConns: ad.maxConns,
	}
	if f.MaxSymbols > 0 {
		h.maxSymbols = f.MaxSymbols
	}
	if f.BatchWindow > 0 {
		h.window = f.BatchWindow.Std()
	}
	h.feedCap = r.cfg.MaxFeedSymbols
	if f.MaxFeedSymbols > 0 {
		h.feedCap = f.MaxFeedSymbols
	}
	if ad.maxSyms > 0 && ad.maxSyms*ad.maxConns < h.feedCap {
		h.feedCap = ad.maxSyms * ad.maxConns
	}
	h.readyMsg = readyMessage(name, h.maxSymbols)
	if r.cfg.Sharing != nil {
		h.cl = newCluster(h, r.cfg.Sharing)
		h.follower = true
	}
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
	c.pushCtrl(c.readyMessage(h))
	if h.state == stateReconnecting {
		c.pushCtrl(msgStatusReconnecting)
	}
	if h.state == stateIdle {
		h.state = stateConnecting
		if h.cl != nil {
			h.cl.start() // the feed's owner connects
		} else {
			h.startSlot()
		}
	}
	return nil
}

// newSlot adds an upstream connection to the feed, without starting it.
// Called with h.mu held.
func (h *hub) newSlot() *slot {
	sl := &slot{
		idx:     h.nextSlot,
		syms:    make(map[string]struct{}),
		refused: make(map[string]struct{}),
		state:   stateConnecting,
		kick:    make(chan struct{}, 1),
		ctx:     h.upCtx,
		done:    make(chan struct{}),
	}
	if sl.ctx == nil {
		sl.ctx = h.r.ctx
	}
	h.nextSlot++
	h.slots = append(h.slots, sl)
	return sl
}

// startSlot adds an upstream connection and starts its goroutine. Called
// with h.mu held.
func (h *hub) startSlot() *slot {
	sl := h.newSlot()
	h.wg.Add(1)
	go h.run(sl)
	return sl
}

// assign puts a newly wanted symbol on an upstream connection: the
// fullest one with room, else one holding a symbol no browser wants any
// more (lingering, or waiting for its unsubscribe), else a new connection
// within the key's cap. Called with h.mu held; the feed cap guarantees
// room.
func (h *hub) assign(s string) {
	var best *slot
	for _, sl := range h.slots {
		if (h.perConn == 0 || len(sl.syms) < h.perConn) && (best == nil || len(sl.syms) > len(best.syms)) {
			best = sl
		}
	}
	if best == nil {
	evict:
		for _, sl := range h.slots {
			for x := range sl.syms {
				if !h.wants(x) {
					h.unassign(x)
					best = sl
					break evict
				}
			}
		}
	}
	if best == nil && len(h.slots) < h.maxConns && h.state != stateIdle && !h.follower {
		best = h.startSlot()
		h.log.Info("upstream connection added", "connection", best.idx, "connections", len(h.slots))
	}
	if best == nil {
		if len(h.slots) == 0 {
			return // no upstream yet (tests of the fan-out alone)
		}
		best = h.slots[0]
		h.log.Error("no upstream connection has room for a symbol", "connections", len(h.slots), "per_connection", h.perConn)
	}
	best.syms[s] = struct{}{}
	h.slotOf[s] = best
	select {
	case best.kick <- struct{}{}:
	default:
	}
}

// unassign takes s off its upstream connection. Called with h.mu held.
func (h *hub) unassign(s string) {
	if sl := h.slotOf[s]; sl != nil {
		delete(sl.syms, s)
		delete(h.slotOf, s)
	}
	delete(h.linger, s)
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
	if perr := c.forbiddenSymbols(syms); perr != nil {
		return perr
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; !ok {
		return nil // closing
	}
	held := h.sessions[c.sess.Key]
	byUser := h.users[c.userKey()]
	newForSession, newForUser, newForFeed := 0, 0, 0
	var unknown []string
	now := time.Now()
	for _, s := range syms {
		if _, ok := c.syms[s]; ok {
			continue
		}
		if until, ok := h.unknown[s]; ok {
			if now.Before(until) {
				unknown = append(unknown, s)
				continue
			}
			delete(h.unknown, s)
		}
		if held[s] == 0 {
			newForSession++
		}
		if byUser[s] == 0 {
			newForUser++
		}
		if h.subs[s] == nil {
			newForFeed++
		}
	}
	if len(unknown) > 0 {
		return errUnknownSymbols(unknown)
	}
	limit := c.symbolLimit(h.maxSymbols)
	if len(held)+newForSession > limit {
		return errTooManySymbols(limit)
	}
	// One user must not fill the feed-wide cap with many sessions (login
	// allows several a minute) and lock everyone else out.
	if userLimit := userSymbolFactor * limit; len(byUser)+newForUser > userLimit {
		h.log.Warn("user symbol cap reached", "user", c.user, "limit", userLimit)
		return errTooManyUserSymbols(userLimit)
	}
	if len(h.subs)+newForFeed > h.feedCap {
		h.log.Warn("feed symbol cap reached", "limit", h.feedCap)
		return errFeedFull(h.feedCap)
	}
	if held == nil {
		held = make(map[string]int, len(syms))
		h.sessions[c.sess.Key] = held
	}
	if byUser == nil {
		byUser = make(map[string]int, len(syms))
		h.users[c.userKey()] = byUser
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
			delete(h.linger, s)
			if h.slotOf[s] == nil {
				h.assign(s)
			} // else still held upstream (lingering): nothing to send
			changed = true
		}
		c.syms[s] = len(l.cl)
		l.cl = append(l.cl, c)
		held[s]++
		byUser[s]++
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
	if byUser := h.users[c.userKey()]; byUser != nil {
		if byUser[s]--; byUser[s] <= 0 {
			delete(byUser, s)
		}
		if len(byUser) == 0 {
			delete(h.users, c.userKey())
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

// kickUpstream wakes every upstream connection to reconcile. Called with
// h.mu held.
func (h *hub) kickUpstream() {
	if h.cl != nil {
		h.cl.kick() // share the changed interest
	}
	for _, sl := range h.slots {
		select {
		case sl.kick <- struct{}{}:
		default:
		}
	}
}

// wanted returns the symbols connection sl should hold: its subscribed
// symbols and its lingering ones, when the next linger ends, and the
// symbols the vendor refused since the last call (not held upstream:
// forget them without an unsubscribe). Symbols no one wants any more
// leave sl. retire reports that sl holds nothing while another
// connection exists: it is taken off the feed and should close.
func (h *hub) wanted(sl *slot, now time.Time) (want, refused map[string]struct{}, next time.Time, retire bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(sl.refused) > 0 {
		refused, sl.refused = sl.refused, make(map[string]struct{})
	}
	want = make(map[string]struct{}, len(sl.syms))
	for s := range sl.syms {
		if h.wants(s) {
			want[s] = struct{}{}
			continue
		}
		until, ok := h.linger[s]
		if !ok || !now.Before(until) {
			h.unassign(s)
			continue
		}
		want[s] = struct{}{}
		if next.IsZero() || until.Before(next) {
			next = until
		}
	}
	if len(sl.syms) == 0 && len(h.slots) > 1 {
		h.slots = slices.DeleteFunc(h.slots, func(x *slot) bool { return x == sl })
		h.updateState()
		return want, refused, next, true
	}
	return want, refused, next, false
}

// retireIdle takes sl off the feed when it holds no symbol and another
// connection exists (a lost extra connection need not come back).
func (h *hub) retireIdle(sl *slot) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range sl.syms {
		if !h.wants(s) {
			if _, lingering := h.linger[s]; !lingering {
				h.unassign(s)
			}
		}
	}
	if len(sl.syms) > 0 || len(h.slots) <= 1 {
		return false
	}
	h.slots = slices.DeleteFunc(h.slots, func(x *slot) bool { return x == sl })
	h.updateState()
	return true
}

// goDormant marks sl dormant when it holds no wanted symbol: a connection
// lost then (a vendor closing idle connections, such as Coinbase after 5 s
// without a subscription) comes back on the next subscribe, not in a
// reconnect loop, and browsers are not told of an outage that costs them
// nothing.
func (h *hub) goDormant(sl *slot) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.slotWants(sl, time.Now()) {
		return false
	}
	sl.state = stateDormant
	h.updateState()
	return true
}

// slotWants reports whether sl holds a subscribed or lingering symbol,
// dropping the others. Called with h.mu held.
func (h *hub) slotWants(sl *slot, now time.Time) bool {
	wants := false
	for s := range sl.syms {
		if h.wants(s) {
			wants = true
			continue
		}
		if until, ok := h.linger[s]; ok && now.Before(until) {
			wants = true
			continue
		}
		h.unassign(s)
	}
	return wants
}

// awaitWanted waits until dormant sl holds a wanted symbol; false when the
// relay closes first.
func (h *hub) awaitWanted(ctx context.Context, sl *slot) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-sl.kick:
			h.mu.Lock()
			ok := h.slotWants(sl, time.Now())
			h.mu.Unlock()
			if ok {
				return true
			}
		}
	}
}

// reject handles the vendor's refusal of syms (unknown symbols, or not in
// the plan): their subscribers get an unknown_symbol error and lose them,
// and for unknownTTL new subscribes to them are answered at once.
func (h *hub) reject(syms []string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	per := make(map[*client][]string)
	for _, s := range syms {
		h.rememberUnknown(s, now)
		if sl := h.slotOf[s]; sl != nil {
			sl.refused[s] = struct{}{} // the vendor does not hold it: nothing to unsubscribe
		}
		if l := h.subs[s]; l != nil {
			for _, c := range slices.Clone(l.cl) {
				per[c] = append(per[c], s)
				h.removeSym(c, s, now)
			}
		}
		h.unassign(s)
	}
	for c, ss := range per {
		c.dropPending(ss)
		c.pushCtrl(errorMessage(errUnknownSymbols(ss)))
		h.log.Info("ws symbols refused by the vendor", "user", c.user, "symbols", ss)
	}
	h.kickUpstream()
}

// rememberUnknown records that the vendor refused s, within maxUnknown
// entries. Called with h.mu held.
func (h *hub) rememberUnknown(s string, now time.Time) {
	if len(h.unknown) >= maxUnknown {
		for k, until := range h.unknown {
			if !now.Before(until) {
				delete(h.unknown, k)
			}
		}
		if len(h.unknown) >= maxUnknown {
			return
		}
	}
	h.unknown[s] = now.Add(unknownTTL)
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

// setState records the state of connection sl and updates the feed's.
func (h *hub) setState(sl *slot, st hubState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sl.state = st
	h.updateState()
}

// updateState sets the feed's state from its connections' (failed, else
// reconnecting, else connected when one is, else connecting) and tells
// the browsers: status reconnecting when the upstream is lost, connected
// when it is back, and close 1013 when the feed cannot be served. Called
// with h.mu held.
func (h *hub) updateState() {
	if h.follower {
		return // the owner's status decides (cluster.followState)
	}
	var n [stateDormant + 1]int
	for _, sl := range h.slots {
		n[sl.state]++
	}
	n[stateConnected] += n[stateDormant] // nothing is missing
	s := stateConnecting
	switch {
	case n[stateFailed] > 0:
		s = stateFailed
	case n[stateReconnecting] > 0:
		s = stateReconnecting
	case n[stateConnected] > 0:
		s = stateConnected
	}
	h.moveState(s)
}

// moveState makes s the feed's state and tells the browsers. Called with
// h.mu held.
func (h *hub) moveState(s hubState) {
	old := h.state
	if old == s {
		return
	}
	h.state = s
	if h.cl != nil && !h.follower {
		h.cl.kick() // tell the followers
	}
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

// wait waits for the upstream goroutines. The relay's context must be
// cancelled first.
func (h *hub) wait() {
	h.wg.Wait()
}

// userSymbolFactor times a session's symbol limit is the number of
// distinct symbols one user may hold on a feed across all of their
// sessions: enough for a second tab or device, far below the feed-wide
// cap (MaxFeedSymbols), so one user opening many sessions cannot lock
// everyone else out of the feed.
const userSymbolFactor = 2

// userKey identifies the socket's user for the per-user symbol cap; a
// session without a user name counts as its own user.
func (c *client) userKey() string {
	if c.user != "" {
		return "u:" + c.user
	}
	return "s:" + c.sess.Key
}

func errTooManyUserSymbols(limit int) *protoError {
	return &protoError{code: codeTooManySymbols, message: "at most " + strconv.Itoa(limit) + " symbols per user on this feed across their sessions; nothing was subscribed"}
}
