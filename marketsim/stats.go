package marketsim

import (
	"sort"
	"sync/atomic"
)

// Route patterns of Stats.RESTByRoute.
const (
	RouteQuote   = "/v1/quote/{sym}"
	RouteQuotes  = "/v1/quotes"
	RouteSymbols = "/v1/symbols"
	RouteLast    = "/v1/last/{sym}"
	RouteOther   = "other" // any other path (answered 404)
)

// routeIDs index counters.byRoute.
const (
	rQuote = iota
	rQuotes
	rSymbols
	rLast
	rOther
	nRoutes
)

var routeNames = [nRoutes]string{RouteQuote, RouteQuotes, RouteSymbols, RouteLast, RouteOther}

// Stats are counters since New, for tests and benchmarks.
type Stats struct {
	RESTRequests     int64            // REST requests received (not /v1/stream upgrades)
	RESTByRoute      map[string]int64 // by Route* pattern
	Unauthorized     int64            // 401 answers (also when sent as 200)
	RateLimited      int64            // 429 answers (also when sent as 200)
	NotFound         int64            // 404 answers: unknown symbol or path
	InjectedFailures int64            // injected 503s
	InjectedResets   int64            // injected connection resets

	WSConnections       int   // WebSocket connections open now
	WSConnectionsTotal  int64 // WebSocket connections accepted
	WSAuthenticated     int   // open, authenticated and not closing now
	WSAuthFailures      int64 // auth_failed (close 4001)
	WSAuthTimeouts      int64 // auth_timeout (close 4002)
	WSRefusedByCap      int64 // newcomers refused with max_connections (refuse_new)
	WSEvicted           int64 // older connections evicted (evict_old)
	SubscribeMessages   int64 // subscribe messages received after auth
	UnsubscribeMessages int64 // unsubscribe messages received after auth
	SymbolLimitErrors   int64 // subscribe messages refused with symbol_limit
	SymbolsPerConn      []int // subscribed symbols of each open connection, oldest first
	Pings               int64 // pings answered by a pong
	PongTimeouts        int64 // close 4004
	SlowClients         int64 // close 4005
	RateViolations      int64 // close 4008
	LifetimeCloses      int64 // close 1001 after MaxLifetime
	Dropped             int64 // connections dropped by DropAll
	FramesSent          int64 // data and status frames written
	EventsSent          int64 // data events queued to connections
}

type counters struct {
	rest         atomic.Int64
	byRoute      [nRoutes]atomic.Int64
	unauthorized atomic.Int64
	rateLimited  atomic.Int64
	notFound     atomic.Int64
	failures     atomic.Int64
	resets       atomic.Int64

	wsTotal      atomic.Int64
	authFailures atomic.Int64
	authTimeouts atomic.Int64
	refused      atomic.Int64
	evicted      atomic.Int64
	subscribes   atomic.Int64
	unsubscribes atomic.Int64
	symbolLimit  atomic.Int64
	pings        atomic.Int64
	pongTimeouts atomic.Int64
	slow         atomic.Int64
	rateViol     atomic.Int64
	lifetime     atomic.Int64
	dropped      atomic.Int64
	frames       atomic.Int64
	events       atomic.Int64
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	st := Stats{
		RESTRequests:        c.rest.Load(),
		RESTByRoute:         make(map[string]int64, nRoutes),
		Unauthorized:        c.unauthorized.Load(),
		RateLimited:         c.rateLimited.Load(),
		NotFound:            c.notFound.Load(),
		InjectedFailures:    c.failures.Load(),
		InjectedResets:      c.resets.Load(),
		WSConnectionsTotal:  c.wsTotal.Load(),
		WSAuthFailures:      c.authFailures.Load(),
		WSAuthTimeouts:      c.authTimeouts.Load(),
		WSRefusedByCap:      c.refused.Load(),
		WSEvicted:           c.evicted.Load(),
		SubscribeMessages:   c.subscribes.Load(),
		UnsubscribeMessages: c.unsubscribes.Load(),
		SymbolLimitErrors:   c.symbolLimit.Load(),
		Pings:               c.pings.Load(),
		PongTimeouts:        c.pongTimeouts.Load(),
		SlowClients:         c.slow.Load(),
		RateViolations:      c.rateViol.Load(),
		LifetimeCloses:      c.lifetime.Load(),
		Dropped:             c.dropped.Load(),
		FramesSent:          c.frames.Load(),
		EventsSent:          c.events.Load(),
	}
	for i := range nRoutes {
		st.RESTByRoute[routeNames[i]] = c.byRoute[i].Load()
	}
	s.mu.Lock()
	conns := s.connList()
	for _, l := range s.byKey {
		for _, cn := range l {
			if !cn.isClosing() {
				st.WSAuthenticated++
			}
		}
	}
	s.mu.Unlock()
	st.WSConnections = len(conns)
	st.SymbolsPerConn = make([]int, 0, len(conns))
	for _, cn := range conns {
		cn.mu.Lock()
		st.SymbolsPerConn = append(st.SymbolsPerConn, cn.nsubs)
		cn.mu.Unlock()
	}
	return st
}

func sortConns(cs []*conn) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].id < cs[j].id })
}
