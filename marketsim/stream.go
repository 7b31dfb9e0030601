package marketsim

import (
	"context"
	"fmt"
	"net/http"

	"github.com/coder/websocket"
)

// serveStream upgrades /v1/stream and runs the connection until it ends.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	if !s.inject(w, r) {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.writeError(w, r, http.StatusServiceUnavailable, "server shutting down", nil)
		return
	}
	s.wsWG.Add(1)
	s.mu.Unlock()
	defer s.wsWG.Done()

	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// A vendor API serves any origin: authentication is by key.
		OriginPatterns:  []string{"*"},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		s.log.Debug("marketsim: websocket upgrade failed", "err", err)
		return // Accept has answered
	}
	ws.SetReadLimit(wsReadLimit)
	c := s.newConn(ws)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	s.nextID++
	c.id = s.nextID
	s.conns[c.id] = c
	s.mu.Unlock()
	s.stats.wsTotal.Add(1)
	s.log.Debug("marketsim: stream opened", "conn", c.id)

	c.sendStatus(StatusConnected, "", nil)
	go c.writeLoop()
	if s.opts.PingInterval > 0 {
		go c.pingLoop()
	} else {
		close(c.pingerDone)
	}
	c.readLoop()
	c.shutdown(closePeer) // no-op when the server started the close
	<-c.writerDone
	<-c.pingerDone
	s.unregister(c)
}

// unregister forgets a finished connection.
func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c.id)
	if c.key != "" {
		list := s.byKey[c.key]
		for i, o := range list {
			if o == c {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(s.byKey, c.key)
		} else {
			s.byKey[c.key] = list
		}
	}
	attrs := []any{"conn", c.id, "reason", c.kind.String()}
	if c.key != "" {
		attrs = append(attrs, "key_id", keyTag(c.key))
	}
	s.log.Debug("marketsim: stream closed", attrs...)
}

// readLoop reads client messages until the socket closes. Messages that
// arrive while the connection is closing are ignored.
func (c *conn) readLoop() {
	for {
		// No deadline here: the writer closes the socket on every path,
		// which ends this Read (a cancelled Read context would drop the
		// socket without a close frame).
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			return
		}
		if c.isClosing() {
			continue
		}
		if !c.allowMessage(c.srv.now()) {
			c.shutdown(closeRate)
			continue
		}
		c.handle(typ, data)
	}
}

func (c *conn) handle(typ websocket.MessageType, data []byte) {
	if typ != websocket.MessageText {
		c.sendStatus(StatusError, "binary frames are not supported", nil)
		return
	}
	m, err := parseClientMessage(data)
	if err != nil {
		c.sendStatus(StatusError, err.Error(), nil)
		return
	}
	switch m.Action {
	case "auth":
		c.auth(m.Key)
	case "subscribe":
		c.subscribe(m.Symbols, true)
	case "unsubscribe":
		c.subscribe(m.Symbols, false)
	default:
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.authed {
			c.sendLocked(statusFrame(StatusError, "not authenticated", nil))
			return
		}
		c.sendLocked(statusFrame(StatusError, "unknown action", nil))
	}
}

// auth checks key and applies the per-key connection cap.
func (c *conn) auth(key string) {
	s := c.srv
	c.mu.Lock()
	authed := c.authed
	c.mu.Unlock()
	if authed {
		c.sendStatus(StatusError, "already authenticated", nil)
		return
	}
	if !s.validKey(key) {
		s.log.Info("marketsim: stream auth failed", "conn", c.id)
		c.shutdown(closeAuthFailed)
		return
	}

	s.mu.Lock()
	live := make([]*conn, 0, len(s.byKey[key])+1)
	for _, o := range s.byKey[key] {
		if !o.isClosing() {
			live = append(live, o)
		}
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		s.mu.Unlock()
		return
	}
	var victims []*conn
	if capN := s.opts.ConnCap; capN > 0 && len(live) >= capN {
		if s.opts.CapPolicy == RefuseNew {
			c.markClosingLocked(closeRefused)
			c.mu.Unlock()
			s.mu.Unlock()
			s.log.Info("marketsim: stream refused, connection cap reached", "conn", c.id, "key_id", keyTag(key))
			return
		}
		victims = live[:len(live)-capN+1]
		live = live[len(live)-capN+1:]
	}
	c.authed = true
	c.key = key
	c.sendLocked(statusFrame(StatusAuthSuccess, "authenticated", nil))
	c.mu.Unlock()
	s.byKey[key] = append(live, c)
	s.mu.Unlock()
	s.log.Debug("marketsim: stream authenticated", "conn", c.id, "key_id", keyTag(key))
	for _, v := range victims {
		if v.shutdown(closeEvicted) {
			s.log.Info("marketsim: stream evicted, connection cap reached", "conn", v.id, "key_id", keyTag(key))
		}
	}
}

// subscribe adds (or with add false removes) symbols. Unknown symbols are
// named in an error frame; a subscription that would pass
// MaxSymbolsPerConn changes nothing and answers symbol_limit.
func (c *conn) subscribe(names []string, add bool) {
	s := c.srv
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.authed {
		c.sendLocked(statusFrame(StatusError, "not authenticated", nil))
		return
	}
	if add {
		s.stats.subscribes.Add(1)
	} else {
		s.stats.unsubscribes.Add(1)
	}
	known := make([]*symbol, 0, len(names))
	var unknown []string
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if sym := s.bySym[n]; sym != nil {
			known = append(known, sym)
		} else if len(unknown) < maxEchoedSymbols {
			unknown = append(unknown, truncate(n, maxSymbolLen))
		}
	}
	if add {
		total := c.nsubs
		for _, sym := range known {
			if !c.has(int32(sym.idx)) {
				total++
			}
		}
		if limit := s.opts.MaxSymbolsPerConn; limit > 0 && total > limit {
			s.stats.symbolLimit.Add(1)
			c.sendLocked(statusFrame(StatusSymbolLimit,
				fmt.Sprintf("at most %d symbols per connection; nothing changed", limit), nil))
			return
		}
	}
	acked := make([]string, 0, len(known))
	for _, sym := range known {
		i := int32(sym.idx)
		switch {
		case add && !c.has(i):
			c.subs[i>>6] |= 1 << (uint(i) & 63)
			c.nsubs++
			s.ref(sym.idx, 1)
		case !add && c.has(i):
			c.subs[i>>6] &^= 1 << (uint(i) & 63)
			c.nsubs--
			s.ref(sym.idx, -1)
		}
		acked = append(acked, sym.name)
	}
	if len(acked) > 0 {
		st := StatusSubscribed
		if !add {
			st = StatusUnsubscribed
		}
		c.sendLocked(statusFrame(st, "", acked))
	}
	if len(unknown) > 0 {
		c.sendLocked(statusFrame(StatusError, "unknown symbol", unknown))
	}
}
