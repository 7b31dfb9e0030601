package relay

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sharing lets several tickgate replicas share each feed's upstream
// connections through Redis: per feed one replica (the owner, holding a
// Redis lease) connects to the vendor and publishes the data messages the
// other replicas' browsers want; each replica records the symbols its
// browsers want so the owner subscribes upstream to the union. When the
// owner stops or its lease expires, another replica takes over.
type Sharing struct {
	// Client is the Redis client. Required. The relay does not close it.
	Client redis.UniversalClient
	// Prefix starts every key and channel, e.g. "tickgate:feed:".
	Prefix string
	// ID names this replica (default random). Distinct per replica.
	ID string
	// LeaseTTL is how long an owner that stopped renewing keeps a feed
	// (default 5s): the longest outage when a replica dies without
	// releasing its leases.
	LeaseTTL time.Duration
}

const (
	// minLeaseTTL keeps renewals (every LeaseTTL/5) from flooding Redis.
	minLeaseTTL = 500 * time.Millisecond
	// clusterQueue bounds the payloads waiting to be published.
	clusterQueue = 1024
	// interestFactor times LeaseTTL is how long a replica's recorded
	// interest outlives its last refresh.
	interestFactor = 3
)

// Message kinds on a feed's channel.
const (
	kindData     = 'd' // token, then (symbol, vendor message) pairs
	kindStatus   = 's' // token, then the owner's feed state (one byte)
	kindInterest = 'i' // a replica changed its interest: the owner re-reads it
	headerLen    = 1 + 8
)

var (
	// acquireScript takes the lease when free, with the next fencing
	// token; it returns the token, or minus the holder's when held.
	acquireScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  local t = string.match(v, '/(%d+)$')
  return -tonumber(t or '0')
end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '/' .. t, 'PX', ARGV[2])
return t`)
	// renewScript extends the lease only while it is still ours.
	renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`)
	// releaseScript deletes the lease only while it is still ours.
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
)

func (s *Sharing) setDefaults() error {
	if s.Client == nil {
		return errors.New("Sharing.Client is required")
	}
	if s.ID == "" {
		s.ID = rand.Text()[:16]
	}
	switch {
	case s.LeaseTTL == 0:
		s.LeaseTTL = 5 * time.Second
	case s.LeaseTTL < minLeaseTTL:
		return errors.New("Sharing.LeaseTTL must be at least " + minLeaseTTL.String())
	}
	return nil
}

// cluster shares one hub's upstream with the other replicas.
type cluster struct {
	h                                   *hub
	rdb                                 redis.UniversalClient
	id                                  string
	ttl                                 time.Duration
	leaseKey, fenceKey, interestKey, ch string

	startOnce sync.Once
	wake      chan struct{}
	out       chan []byte
	token     atomic.Uint64                       // ours while we own the feed, else 0
	remote    atomic.Pointer[map[string]struct{}] // owner: symbols the other replicas want
	dropped   atomic.Int64
	started   time.Time

	// Touched by the run goroutine only.
	cancelUp  context.CancelFunc
	upSlots   []*slot
	lastSyms  []string
	lastWrite time.Time

	mu         sync.Mutex
	seen       uint64    // highest fencing token seen
	lastStatus time.Time // when the owner last told its state
	ownerState hubState
}

func newCluster(h *hub, s *Sharing) *cluster {
	base := s.Prefix + "{" + h.name + "}:"
	return &cluster{
		h:           h,
		rdb:         s.Client,
		id:          s.ID,
		ttl:         s.LeaseTTL,
		leaseKey:    base + "lease",
		fenceKey:    base + "fence",
		interestKey: base + "interest",
		ch:          base + "messages",
		wake:        make(chan struct{}, 1),
		out:         make(chan []byte, clusterQueue),
	}
}

// start begins taking part in the feed's sharing on its first browser.
// Called with h.mu held.
func (c *cluster) start() {
	c.startOnce.Do(func() {
		c.started = time.Now()
		c.h.wg.Add(1)
		go c.run()
	})
}

// kick wakes the run goroutine: local interest or the feed state changed.
func (c *cluster) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *cluster) run() {
	defer c.h.wg.Done()
	ctx := c.h.r.ctx
	ps := c.rdb.Subscribe(ctx, c.ch)
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for m := range ps.Channel() {
			c.receive([]byte(m.Payload))
		}
	}()
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-c.out:
				c.send(ctx, b)
			}
		}
	}()
	tick := time.NewTicker(c.ttl / 5)
	defer tick.Stop()
	for {
		c.step(ctx)
		select {
		case <-ctx.Done():
			<-pubDone
			c.shutdown()
			_ = ps.Close()
			<-recvDone
			return
		case <-tick.C:
		case <-c.wake:
		}
	}
}

// step renews or tries to take the lease, shares this replica's interest
// and, as owner, reads the others'.
func (c *cluster) step(ctx context.Context) {
	h := c.h
	rctx, cancel := context.WithTimeout(ctx, c.ttl/2)
	defer cancel()
	now := time.Now()
	if tok := c.token.Load(); tok != 0 {
		ok, err := renewScript.Run(rctx, c.rdb, []string{c.leaseKey}, c.leaseValue(tok), c.ttl.Milliseconds()).Int()
		if err != nil || ok != 1 {
			h.log.Warn("feed lease lost: closing the upstream connection", "err", errText(err))
			c.demote()
		}
	} else {
		tok, err := acquireScript.Run(rctx, c.rdb, []string{c.leaseKey, c.fenceKey}, c.id, c.ttl.Milliseconds()).Int64()
		switch {
		case err != nil:
			if ctx.Err() == nil {
				h.log.Warn("feed lease: Redis not answering", "err", err)
			}
		case tok > 0:
			c.promote(uint64(tok))
		default:
			c.mu.Lock()
			moved := c.see(uint64(-tok))
			c.mu.Unlock()
			if moved {
				c.follow(stateReconnecting)
			}
		}
	}
	c.shareInterest(rctx, now)
	if tok := c.token.Load(); tok != 0 {
		c.readInterest(rctx, now)
		h.mu.Lock()
		st := h.state
		h.mu.Unlock()
		c.enqueue(append(header(kindStatus, tok), byte(st)))
	} else {
		c.followState(now)
	}
}

func (c *cluster) leaseValue(tok uint64) string {
	return c.id + "/" + strconv.FormatUint(tok, 10)
}

func header(kind byte, tok uint64) []byte {
	b := make([]byte, headerLen, 256)
	b[0] = kind
	binary.BigEndian.PutUint64(b[1:], tok)
	return b
}

// promote makes this replica the feed's owner: it opens the upstream for
// every symbol wanted here or elsewhere.
func (c *cluster) promote(tok uint64) {
	h := c.h
	h.log.Info("feed lease taken: this replica holds the upstream connection", "fence", tok)
	c.mu.Lock()
	c.see(tok)
	c.mu.Unlock()
	c.token.Store(tok)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state == stateConnected {
		h.moveState(stateReconnecting) // the previous owner is gone (still a follower: no kick)
	}
	ctx, cancel := context.WithCancel(h.r.ctx)
	c.cancelUp = cancel
	h.upCtx = ctx
	h.follower = false
	sl := h.startSlot()
	if h.state == stateReconnecting {
		sl.state = stateReconnecting // browsers were told: tell them when it is back
	}
	for _, s := range slices.Sorted(mapKeys(h.subs)) {
		if h.slotOf[s] == nil {
			h.assign(s)
		}
	}
}

// demote closes this replica's upstream connections: another replica may
// hold the lease now.
func (c *cluster) demote() {
	h := c.h
	c.token.Store(0)
	c.remote.Store(nil)
	h.mu.Lock()
	if c.cancelUp != nil {
		c.cancelUp()
		c.cancelUp = nil
	}
	c.upSlots = append(c.upSlots, h.slots...)
	h.follower = true
	h.slots = nil
	clear(h.slotOf)
	clear(h.linger)
	h.remote = nil
	if h.state != stateIdle {
		h.moveState(stateReconnecting)
	}
	h.mu.Unlock()
	c.waitSlots()
}

// waitSlots waits (bounded) for the closed upstream connections to end,
// so the vendor has seen them go before another replica connects.
func (c *cluster) waitSlots() {
	deadline := time.After(closeTimeout + time.Second)
	for _, sl := range c.upSlots {
		select {
		case <-sl.done:
		case <-deadline:
			c.upSlots = nil
			return
		}
	}
	c.upSlots = nil
}

// shutdown, as the relay closes: tell the followers, close the upstream,
// then release the lease so another replica takes over at once.
func (c *cluster) shutdown() {
	tok := c.token.Load()
	if tok == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.ttl/2)
	defer cancel()
	c.send(ctx, append(header(kindStatus, tok), byte(stateReconnecting)))
	c.demote()
	if _, err := releaseScript.Run(ctx, c.rdb, []string{c.leaseKey}, c.leaseValue(tok)).Result(); err != nil {
		c.h.log.Warn("feed lease not released; another replica takes over when it expires", "err", err)
	}
	_ = c.rdb.HDel(ctx, c.interestKey, c.id).Err()
}

// interest is one replica's entry in the feed's interest hash.
type interest struct {
	Until int64    `json:"until"` // Unix ms
	Syms  []string `json:"syms"`
}

// shareInterest records the symbols this replica's browsers want when they
// changed or the record is due for refresh.
func (c *cluster) shareInterest(ctx context.Context, now time.Time) {
	h := c.h
	h.mu.Lock()
	syms := slices.Sorted(mapKeys(h.subs))
	h.mu.Unlock()
	changed := !slices.Equal(syms, c.lastSyms)
	if !changed && now.Sub(c.lastWrite) < c.ttl {
		return
	}
	b, _ := json.Marshal(interest{Until: now.Add(interestFactor * c.ttl).UnixMilli(), Syms: syms})
	pipe := c.rdb.Pipeline()
	pipe.HSet(ctx, c.interestKey, c.id, b)
	pipe.PExpire(ctx, c.interestKey, interestFactor*c.ttl)
	if changed && c.token.Load() == 0 {
		pipe.Publish(ctx, c.ch, []byte{kindInterest})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		if ctx.Err() == nil {
			h.log.Warn("feed interest not shared: Redis not answering", "err", err)
		}
		return
	}
	c.lastSyms, c.lastWrite = syms, now
}

// readInterest, as owner, reads what the other replicas want and makes it
// part of what the upstream holds.
func (c *cluster) readInterest(ctx context.Context, now time.Time) {
	h := c.h
	all, err := c.rdb.HGetAll(ctx, c.interestKey).Result()
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("feed interest not read: Redis not answering", "err", err)
		}
		return
	}
	want := make(map[string]struct{})
	var expired []string
	for id, v := range all {
		if id == c.id {
			continue
		}
		var in interest
		if json.Unmarshal([]byte(v), &in) != nil || in.Until < now.UnixMilli() {
			expired = append(expired, id)
			continue
		}
		for _, s := range in.Syms {
			want[s] = struct{}{}
		}
	}
	if len(expired) > 0 {
		_ = c.rdb.HDel(ctx, c.interestKey, expired...).Err()
	}
	c.remote.Store(&want)
	h.setRemote(want, now)
}

// see records fencing token tok; it reports whether tok is a new owner's
// (one seen before). Called with c.mu held.
func (c *cluster) see(tok uint64) bool {
	if tok <= c.seen {
		return false
	}
	moved := c.seen != 0
	c.seen = tok
	return moved
}

// followState sets a follower's feed state from the owner's last status:
// reconnecting when the owner went silent.
func (c *cluster) followState(now time.Time) {
	c.mu.Lock()
	last, st := c.lastStatus, c.ownerState
	c.mu.Unlock()
	switch {
	case !last.IsZero() && now.Sub(last) <= c.ttl:
	case last.IsZero() && now.Sub(c.started) < c.ttl:
		return // no owner heard from yet
	default:
		st = stateReconnecting
	}
	c.follow(st)
}

// follow makes st, the owner's feed state, this follower's. Called
// without h.mu.
func (c *cluster) follow(st hubState) {
	if st == stateDormant {
		st = stateConnected
	}
	h := c.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.follower || h.state == stateIdle {
		return
	}
	if st == stateConnecting && (h.state == stateConnected || h.state == stateReconnecting) {
		st = stateReconnecting
	}
	h.moveState(st)
}

// publish queues the data messages other replicas want, as owner.
// Called on the upstream's read goroutine.
func (c *cluster) publish(msgs []vendorMsg) {
	tok := c.token.Load()
	rem := c.remote.Load()
	if tok == 0 || rem == nil || len(*rem) == 0 {
		return
	}
	var b []byte
	for _, m := range msgs {
		if _, ok := (*rem)[string(m.sym)]; !ok {
			continue
		}
		if b == nil {
			b = header(kindData, tok)
		}
		b = binary.AppendUvarint(b, uint64(len(m.sym)))
		b = append(b, m.sym...)
		b = binary.AppendUvarint(b, uint64(len(m.raw)))
		b = append(b, m.raw...)
	}
	if b != nil {
		c.enqueue(b)
	}
}

// enqueue hands b to the publisher; when Redis cannot keep up the
// payload is dropped, counted and logged.
func (c *cluster) enqueue(b []byte) {
	select {
	case c.out <- b:
	default:
		if n := c.dropped.Add(1); n&(n-1) == 0 { // 1, 2, 4, 8…: bounded logging
			c.h.log.Warn("feed messages not shared: Redis publish queue full", "dropped_total", n)
		}
		c.h.mSlow.Inc()
	}
}

func (c *cluster) send(ctx context.Context, b []byte) {
	pctx, cancel := context.WithTimeout(ctx, c.h.r.cfg.WriteTimeout)
	defer cancel()
	if err := c.rdb.Publish(pctx, c.ch, b).Err(); err != nil && ctx.Err() == nil {
		if n := c.dropped.Add(1); n&(n-1) == 0 {
			c.h.log.Warn("feed messages not shared: Redis publish failed", "err", err, "dropped_total", n)
		}
	}
}

// receive handles a message of the feed's channel.
func (c *cluster) receive(b []byte) {
	if len(b) == 1 && b[0] == kindInterest {
		if c.token.Load() != 0 {
			c.kick()
		}
		return
	}
	if len(b) < headerLen || (b[0] != kindData && b[0] != kindStatus) {
		c.h.mUnroutable.Inc()
		c.h.log.Debug("feed channel message malformed: dropped", "bytes", len(b))
		return
	}
	tok := binary.BigEndian.Uint64(b[1:headerLen])
	if c.token.Load() != 0 {
		return // ours, or a stale owner's: the lease decides
	}
	now := time.Now()
	c.mu.Lock()
	if tok < c.seen {
		c.mu.Unlock()
		return // from an owner that lost the lease
	}
	if c.see(tok) {
		// A new owner: however its predecessor's last status fared,
		// browsers learn that the upstream was re-established.
		c.mu.Unlock()
		c.follow(stateReconnecting)
		c.mu.Lock()
	}
	if b[0] == kindStatus {
		if len(b) != headerLen+1 || hubState(b[headerLen]) > stateDormant {
			c.mu.Unlock()
			c.h.mUnroutable.Inc()
			return
		}
		st := hubState(b[headerLen])
		c.lastStatus, c.ownerState = now, st
		c.mu.Unlock()
		c.follow(st) // in order: every change reaches the browsers
		return
	}
	c.mu.Unlock()
	msgs, ok := decodeData(b[headerLen:])
	if !ok {
		c.h.mUnroutable.Inc()
		c.h.log.Debug("feed channel data malformed: dropped", "bytes", len(b))
		return
	}
	c.h.dispatch(msgs, now)
}

// decodeData splits a data payload into its messages (slices of b).
func decodeData(b []byte) ([]vendorMsg, bool) {
	var msgs []vendorMsg
	next := func() ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, false
		}
		v := b[k : k+int(n)]
		b = b[k+int(n):]
		return v, true
	}
	for len(b) > 0 {
		sym, ok1 := next()
		raw, ok2 := next()
		if !ok1 || !ok2 || len(sym) == 0 {
			return nil, false
		}
		msgs = append(msgs, vendorMsg{raw: raw, sym: sym, object: true})
	}
	return msgs, len(msgs) > 0
}

func errText(err error) string {
	if err == nil {
		return "held by another replica"
	}
	return err.Error()
}

// setRemote makes want the symbols other replicas want, as owner: new
// ones are assigned upstream, dropped ones linger. Called without h.mu.
func (h *hub) setRemote(want map[string]struct{}, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.follower {
		return
	}
	changed := false
	for s := range h.remote {
		if _, ok := want[s]; !ok && h.subs[s] == nil {
			changed = true
			if h.r.cfg.Linger > 0 {
				h.linger[s] = now.Add(h.r.cfg.Linger)
			}
		}
	}
	kept := make(map[string]struct{}, len(want))
	for _, s := range slices.Sorted(mapKeys(want)) {
		if _, ok := h.remote[s]; !ok && h.subs[s] == nil && h.slotOf[s] == nil {
			if len(h.slotOf) >= h.feedCap {
				h.log.Warn("feed symbol cap reached: a symbol wanted by another replica is not subscribed", "limit", h.feedCap)
				continue
			}
			delete(h.linger, s)
			h.assign(s)
			changed = true
		}
		kept[s] = struct{}{}
	}
	h.remote = kept
	if changed {
		for _, sl := range h.slots {
			select {
			case sl.kick <- struct{}{}:
			default:
			}
		}
	}
}

// wants reports whether a browser here or, as owner, on another replica
// wants s. Called with h.mu held.
func (h *hub) wants(s string) bool {
	if h.subs[s] != nil {
		return true
	}
	_, ok := h.remote[s]
	return ok
}
