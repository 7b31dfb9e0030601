package relay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/tickgate/tickgate/secrets"
)

const (
	// stableAfter is how long a connection must last for the reconnect
	// backoff to start again from ReconnectMin.
	stableAfter = 10 * time.Second
	// busySteps starts the backoff after a vendor's "too many
	// connections" 8× higher: another holder of the key is connected, and
	// hammering would only evict it or be refused again.
	busySteps = 3
	// minGuardLen is the shortest key searched for in vendor frames
	// (shorter strings would match ordinary data).
	minGuardLen = 8
	// maxLoggedStatus bounds a vendor status message in the debug log.
	maxLoggedStatus = 200
)

// errRetired ends a connection that holds no symbol while another
// connection of the feed exists.
var errRetired = errors.New("relay: upstream connection no longer needed")

// errLifetime ends a connection at the adapter's max_lifetime.
var errLifetime = errors.New("relay: upstream connection reached its max lifetime")

// run keeps upstream connection sl up until the relay closes or sl is
// retired: connect, authenticate, subscribe what browsers want, relay,
// and on loss reconnect with exponential backoff and jitter.
func (h *hub) run(sl *slot) {
	defer h.wg.Done()
	defer close(sl.done)
	ctx := sl.ctx
	attempt := 0
	retried := false // a re-read key was tried since the last sleep
	for first := true; ; first = false {
		if !first {
			if h.retireIdle(sl) {
				h.log.Info("upstream connection dropped: no longer needed", "path", h.path, "connection", sl.idx)
				return
			}
			h.mReconnects.Inc()
		}
		var delay, up time.Duration
		key, err := h.secret(ctx)
		if err == nil {
			up, err = h.connect(ctx, sl, key)
			if up >= stableAfter {
				attempt = 0
			}
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errRetired) {
			h.log.Info("upstream connection closed: no longer needed", "path", h.path, "connection", sl.idx)
			return
		}
		switch {
		case errors.Is(err, errLifetime):
			h.log.Info("upstream connection renewed at its max lifetime", "path", h.path, "connection", sl.idx)
			h.setState(sl, stateReconnecting)
			if up >= stableAfter {
				continue // at once; a short max_lifetime still backs off
			}
			delay = h.backoff(attempt, 0)
		case errors.Is(err, errNoKey):
			delay = h.backoff(attempt, 0)
			h.log.Error("upstream key unavailable: feed closed to browsers", "secret", h.feed.Key.Secret, "err", err, "retry_in", delay.String())
			h.setState(sl, stateFailed)
		case errors.Is(err, ErrAuthFailed):
			// Every refusal invalidates (the cache bounds how often that
			// re-reads the provider); a different key is tried at once,
			// but only once between two backoff sleeps.
			if h.ad.authMode != authNone {
				fresh, ierr := h.r.cfg.Secrets.Invalidate(ctx, h.feed.Key.Secret, key)
				if ierr == nil && !fresh.IsZero() && !fresh.Equal(key) && !retried {
					retried = true
					h.log.Warn("upstream refused the key; retrying with the re-read key", "path", h.path)
					continue
				}
			}
			delay = h.backoff(attempt, 0)
			h.log.Error("upstream refused the key: feed closed to browsers until it changes", "path", h.path, "secret", h.feed.Key.Secret, "err", err, "retry_in", delay.String())
			h.setState(sl, stateFailed)
		case errors.Is(err, ErrBusy):
			delay = h.backoff(attempt, busySteps)
			h.log.Warn("upstream refused: too many connections for this key", "path", h.path, "retry_in", delay.String())
			h.setState(sl, stateReconnecting)
		case up > 0 && h.retireIdle(sl):
			h.log.Info("upstream connection lost while not needed", "path", h.path, "connection", sl.idx)
			return
		case up > 0 && h.goDormant(sl):
			h.log.Info("upstream connection closed while no symbol is wanted; reconnecting on the next subscribe", "path", h.path, "connection", sl.idx, "err", err)
			if !h.awaitWanted(ctx, sl) {
				return
			}
			attempt, retried = 0, false
			continue
		default:
			delay = h.backoff(attempt, 0)
			h.log.Warn("upstream connection lost; reconnecting", "path", h.path, "err", err, "retry_in", delay.String())
			h.setState(sl, stateReconnecting)
		}
		attempt++
		retried = false
		if !h.sleep(ctx, delay) {
			return
		}
	}
}

// secret returns the feed's key; the zero Value for auth mode none.
func (h *hub) secret(ctx context.Context) (secrets.Value, error) {
	if h.ad.authMode == authNone {
		return secrets.Value{}, nil
	}
	v, err := h.r.cfg.Secrets.Get(ctx, h.feed.Key.Secret)
	if err == nil && v.IsZero() {
		err = secrets.ErrEmpty
	}
	if err != nil {
		return v, fmt.Errorf("%w: %w", errNoKey, err)
	}
	return v, nil
}

// backoff is ReconnectMin·2^(attempt+steps), at most ReconnectMax, with
// jitter over its upper half.
func (h *hub) backoff(attempt, steps int) time.Duration {
	lo, hi := h.r.cfg.ReconnectMin, h.r.cfg.ReconnectMax
	d := lo
	for i := 0; i < attempt+steps && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// endpoint is where to dial, and the handshake headers, for key.
func (h *hub) endpoint(key string) (string, http.Header) {
	hdr := http.Header{}
	switch h.ad.authMode {
	case authQuery:
		u := *h.url
		q := u.Query()
		q.Set(h.ad.authParam, key)
		u.RawQuery = q.Encode()
		return u.String(), hdr
	case authHeader:
		hdr.Set(h.ad.authParam, key)
	}
	return h.feed.URL, hdr
}

// upstream is one connection to the vendor.
type upstream struct {
	h       *hub
	sl      *slot
	conn    *websocket.Conn
	key     string // the revealed key; "" for auth mode none
	target  string // the dialled URL (it may hold the key)
	bucket  bucket
	busy    atomic.Bool // the vendor said: too many connections
	refused atomic.Bool // the vendor said: auth failed
}

// connect dials, authenticates and serves one connection. It returns how
// long the connection was authenticated (0 if never) and why it ended.
func (h *hub) connect(ctx context.Context, sl *slot, key secrets.Value) (time.Duration, error) {
	k := key.Reveal()
	target, hdr := h.endpoint(k)
	dctx, cancel := context.WithTimeout(ctx, h.r.cfg.DialTimeout)
	defer cancel()
	h.log.Debug("upstream dial", "path", h.path)
	conn, resp, err := h.r.dial(dctx, target, &websocket.DialOptions{HTTPClient: h.r.client, HTTPHeader: hdr})
	if err != nil {
		if resp != nil {
			switch resp.StatusCode {
			case http.StatusUnauthorized, http.StatusForbidden:
				return 0, fmt.Errorf("%w: handshake answered %d", ErrAuthFailed, resp.StatusCode)
			case http.StatusTooManyRequests:
				return 0, fmt.Errorf("%w: handshake answered %d", ErrBusy, resp.StatusCode)
			}
		}
		return 0, fmt.Errorf("%w: dial %s: %s", ErrUpstreamLost, h.path, redact(err.Error(), k, target))
	}
	conn.SetReadLimit(h.r.cfg.UpstreamReadLimit)
	u := &upstream{h: h, sl: sl, conn: conn, key: k, target: target, bucket: newBucket(h.ad.rate, time.Now())}
	if err := u.authenticate(dctx); err != nil {
		_ = conn.CloseNow()
		return 0, err
	}
	cancel()
	h.log.Info("upstream connected", "path", h.path, "connection", sl.idx)
	h.mUpstream.Inc()
	h.setState(sl, stateConnected)
	start := time.Now()
	err = u.serve(ctx)
	h.mUpstream.Dec()
	return max(time.Since(start), 1), err
}

// authenticate sends the auth message (mode message) and waits for the
// adapter's success answer when it has one.
func (u *upstream) authenticate(ctx context.Context) error {
	ad := u.h.ad
	if ad.authMode == authMessage {
		u.bucket.reserve(time.Now())
		if err := u.conn.Write(ctx, websocket.MessageText, ad.authMsg.render(u.key, ad.keyID, nil)[0]); err != nil {
			return fmt.Errorf("%w: send auth: %s", ErrUpstreamLost, u.redact(err))
		}
	}
	if len(ad.success) == 0 {
		return nil
	}
	var msgs []vendorMsg
	for {
		_, frame, err := u.conn.Read(ctx)
		if err != nil {
			switch {
			case u.busy.Load():
				return ErrBusy
			case errors.Is(ctx.Err(), context.DeadlineExceeded):
				return ErrAuthTimeout
			}
			return fmt.Errorf("%w: during auth: %s", ErrUpstreamLost, u.redact(err))
		}
		msgs, _ = ad.scan.split(msgs[:0], frame)
		ok := false
		for _, m := range msgs {
			switch {
			case ad.busy.matches(m.raw):
				u.busy.Store(true)
				return ErrBusy
			case ad.failure.matches(m.raw):
				return ErrAuthFailed
			case ad.success.matches(m.raw):
				ok = true
			}
		}
		if ok {
			return nil
		}
	}
}

// serve reads vendor frames on a goroutine and, on this one, keeps the
// vendor's subscriptions equal to what browsers want and pings, until the
// connection fails or ctx ends.
func (u *upstream) serve(ctx context.Context) error {
	h := u.h
	connCtx, cut := context.WithCancel(context.Background())
	defer cut()
	readErr := make(chan error, 1)
	go func() { readErr <- u.readLoop(connCtx) }()

	sent := make(map[string]struct{}) // what the vendor was asked for
	defer func() { h.mSubs.Sub(float64(len(sent))) }()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	ping := time.NewTicker(h.r.cfg.PingInterval)
	defer ping.Stop()
	pingErr := make(chan error, 1)
	pinging := false
	var heartbeat, lifetime <-chan time.Time
	var hbMsg []byte
	if h.ad.hbEvery > 0 {
		t := time.NewTicker(h.ad.hbEvery)
		defer t.Stop()
		heartbeat = t.C
		// Its text never changes for a connection: render it once.
		hbMsg = h.ad.heartbeat.render(u.key, h.ad.keyID, nil)[0]
	}
	if h.ad.lifetime > 0 {
		t := time.NewTimer(h.ad.lifetime)
		defer t.Stop()
		lifetime = t.C
	}

	var err error
loop:
	for {
		wait, rerr := u.reconcile(ctx, sent)
		if errors.Is(rerr, errRetired) {
			t := time.AfterFunc(closeTimeout, cut)
			_ = u.conn.Close(websocket.StatusNormalClosure, "")
			t.Stop()
		}
		if rerr != nil {
			err = rerr
			break
		}
		if wait > 0 {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			t := time.AfterFunc(closeTimeout, cut)
			_ = u.conn.Close(websocket.StatusGoingAway, "")
			t.Stop()
			err = ctx.Err()
			break loop
		case <-u.sl.kick:
		case <-timer.C:
		case <-heartbeat:
			u.bucket.reserve(time.Now()) // counted; a heartbeat is never late
			wctx, cancel := context.WithTimeout(ctx, h.r.cfg.WriteTimeout)
			werr := u.conn.Write(wctx, websocket.MessageText, hbMsg)
			cancel()
			if werr != nil {
				err = fmt.Errorf("%w: send heartbeat: %s", ErrUpstreamLost, u.redact(werr))
				break loop
			}
		case <-lifetime:
			t := time.AfterFunc(closeTimeout, cut)
			_ = u.conn.Close(websocket.StatusNormalClosure, "")
			t.Stop()
			err = errLifetime
			break loop
		case <-ping.C:
			if !pinging {
				pinging = true
				go func() {
					pctx, cancel := context.WithTimeout(connCtx, h.r.cfg.PingInterval)
					defer cancel()
					pingErr <- u.conn.Ping(pctx)
				}()
			}
		case perr := <-pingErr:
			pinging = false
			if perr != nil {
				err = fmt.Errorf("%w: no pong within %s", ErrUpstreamLost, h.r.cfg.PingInterval)
				break loop
			}
		case rerr := <-readErr:
			readErr = nil
			err = rerr
			break loop
		}
	}
	cut()
	_ = u.conn.CloseNow()
	if readErr != nil {
		<-readErr
	}
	if pinging {
		<-pingErr
	}
	switch {
	case u.busy.Load():
		return ErrBusy
	case u.refused.Load():
		return ErrAuthFailed
	case errors.Is(err, ErrUpstreamLost), errors.Is(err, errRetired), errors.Is(err, errLifetime), ctx.Err() != nil:
		return err
	}
	return fmt.Errorf("%w: %s", ErrUpstreamLost, u.redact(err))
}

// reconcile sends the unsubscribe and subscribe messages that make the
// vendor's set equal to what browsers want, within the adapter's message
// rate. It returns when to run again (rate or linger), or 0.
func (u *upstream) reconcile(ctx context.Context, sent map[string]struct{}) (time.Duration, error) {
	h := u.h
	now := time.Now()
	before := len(sent)
	defer func() { h.mSubs.Add(float64(len(sent) - before)) }()
	want, refused, next, retire := h.wanted(u.sl, now)
	for s := range refused {
		delete(sent, s)
	}
	if retire {
		return 0, errRetired
	}
	var drop, add []string
	for s := range sent {
		if _, ok := want[s]; !ok {
			drop = append(drop, s)
		}
	}
	for s := range want {
		if _, ok := sent[s]; !ok {
			add = append(add, s)
		}
	}
	var wait time.Duration
	if !next.IsZero() {
		wait = max(next.Sub(now), time.Millisecond)
	}
	if len(drop) == 0 && len(add) == 0 {
		return wait, nil
	}
	slices.Sort(drop)
	slices.Sort(add)
	steps := [...]struct {
		t     template
		syms  []string
		sub   bool
		event string
	}{{h.ad.unsub, drop, false, "upstream unsubscribe"}, {h.ad.subscribe, add, true, "upstream subscribe"}}
	for _, st := range steps {
		for _, batch := range st.t.batches(st.syms) {
			msgs := st.t.render(u.key, h.ad.keyID, h.ad.vendorSyms(batch))
			if w := u.bucket.reserveN(now, len(msgs)); w > 0 {
				if wait == 0 || w < wait {
					wait = w
				}
				return wait, nil
			}
			for _, msg := range msgs {
				wctx, cancel := context.WithTimeout(ctx, h.r.cfg.WriteTimeout)
				err := u.conn.Write(wctx, websocket.MessageText, msg)
				cancel()
				if err != nil {
					return 0, fmt.Errorf("%w: send subscription: %s", ErrUpstreamLost, u.redact(err))
				}
			}
			for _, s := range batch {
				if st.sub {
					sent[s] = struct{}{}
				} else {
					delete(sent, s)
				}
			}
			h.log.Debug(st.event, "symbols", batch)
		}
	}
	return wait, nil
}

// readLoop reads vendor frames until the connection fails.
func (u *upstream) readLoop(ctx context.Context) error {
	var guard [][]byte
	if len(u.key) >= minGuardLen {
		for _, f := range secrets.Spellings(secrets.NewValue(u.key)) {
			guard = append(guard, []byte(f))
		}
	}
	var msgs []vendorMsg
	for {
		_, frame, err := u.conn.Read(ctx)
		if err != nil {
			return err
		}
		msgs = u.handleFrame(frame, msgs[:0], guard)
	}
}

// handleFrame parses a vendor frame once and fans its data messages out.
// Control messages are never relayed; a frame holding the key is dropped
// whole.
func (u *upstream) handleFrame(frame []byte, msgs []vendorMsg, guard [][]byte) []vendorMsg {
	h := u.h
	if holdsKey(frame, guard) {
		h.mGuards.Inc()
		h.log.Warn("upstream frame contained the key: dropped", "bytes", len(frame))
		return msgs
	}
	msgs, ok := h.ad.scan.split(msgs, frame)
	if !ok {
		h.mUnroutable.Inc()
		h.log.Debug("upstream frame is not JSON: dropped", "bytes", len(frame))
		return msgs
	}
	n, unroutable := 0, 0
	for _, m := range msgs {
		switch {
		case m.control:
			u.onControl(m)
		case m.sym == nil:
			// Not data: it may still be the vendor's status (vendors
			// whose status messages no single control match describes).
			if !u.onStatus(m) {
				unroutable++
			}
		default:
			msgs[n] = m
			n++
		}
	}
	if unroutable > 0 {
		h.mUnroutable.Add(float64(unroutable))
	}
	if n > 0 {
		h.mIn.Add(float64(n))
		detach(msgs[:n], frame)
		h.dispatch(msgs[:n], time.Now())
		if h.cl != nil {
			h.cl.publish(msgs[:n])
		}
	}
	return msgs
}

// onStatus acts on a vendor answer that matters: busy or auth failure
// ends the connection, a refusal of symbols is told to their browsers.
// It reports whether m was one of them.
func (u *upstream) onStatus(m vendorMsg) bool {
	ad := u.h.ad
	switch {
	case ad.busy.matches(m.raw):
		u.busy.Store(true)
		_ = u.conn.CloseNow()
	case ad.failure.matches(m.raw):
		u.refused.Store(true)
		_ = u.conn.CloseNow()
	case ad.rejected.matches(m.raw):
		if syms := listedSymbols(m.raw, ad.rejField, ad.scan.symbolField, ad.browserSym); len(syms) > 0 {
			u.h.reject(syms, time.Now())
		}
	default:
		return false
	}
	return true
}

// onControl handles a vendor status message (onStatus); others are
// logged at debug level.
func (u *upstream) onControl(m vendorMsg) {
	if !u.onStatus(m) {
		s := redact(string(m.raw), u.key, u.target)
		if len(s) > maxLoggedStatus {
			s = strings.ToValidUTF8(s[:maxLoggedStatus], "") + "…"
		}
		u.h.log.Debug("upstream status", "message", s)
	}
}

func (u *upstream) redact(err error) string {
	if err == nil {
		return "closed"
	}
	return redact(err.Error(), u.key, u.target)
}

// redact removes the key, the dialled URL and any URL query from s, for
// logs and errors (Go's *url.Error text holds the whole URL).
func redact(s, key, target string) string {
	if target != "" {
		s = strings.ReplaceAll(s, target, "<feed url>")
	}
	if key != "" {
		for _, f := range secrets.Spellings(secrets.NewValue(key)) {
			s = strings.ReplaceAll(s, f, "[redacted]")
		}
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '?')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString("?[redacted]")
		j := strings.IndexAny(s[i:], " \t\n\"'")
		if j < 0 {
			return b.String()
		}
		s = s[i+j:]
	}
}

// bucket paces messages to the vendor: rate per second, burst rate/2.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate int, now time.Time) bucket {
	burst := max(1, float64((rate+1)/2))
	return bucket{rate: float64(rate), burst: burst, tokens: burst, last: now}
}

// reserveN takes n tokens (at most a burst) and returns 0, or returns how
// long until they are available.
func (b *bucket) reserveN(now time.Time, n int) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	need := min(float64(n), b.burst)
	if now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	if b.tokens >= need {
		b.tokens -= need
		return 0
	}
	return time.Duration((need-b.tokens)/b.rate*float64(time.Second)) + time.Millisecond
}

// reserve takes a token and returns 0, or returns how long until one is
// available.
func (b *bucket) reserve(now time.Time) time.Duration { return b.reserveN(now, 1) }
