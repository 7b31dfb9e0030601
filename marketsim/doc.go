// Package marketsim is a simulated market-data vendor for demo mode, tests
// and benchmarks. It behaves like a real vendor, including the parts that
// break naive proxies: the key in a query parameter, error bodies and
// redirects that echo the key, absolute pagination links carrying the key,
// a per-key budget, one WebSocket connection per key, auth by message,
// batched arrays mixing symbols and event types, server pings, and faults
// on demand. The protocol is specified in shared/VENDORS.md, section 1.
//
// Prices are a seeded random walk per symbol, shared by every connection
// and REST request; data for a tick is encoded once and copied into each
// subscriber's frame, so thousands of events per second cost little.
//
// # REST
//
// Every route takes the key as ?apikey=K and answers JSON:
//
//	GET /v1/quote/{SYM}         {"symbol":"AAPL","bid":..,"ask":..,"last":..,"ts":<unix ms>}
//	GET /v1/quotes?symbols=A,B  [quote, ...]
//	GET /v1/symbols?cursor=C    {"results":[{"symbol":"AAPL","type":"stock"},..],"next_url":"http://host/v1/symbols?apikey=K&cursor=..&limit=20"}
//	GET /v1/last/{SYM}          302 Location: http://host/v1/quote/{SYM}?apikey=K
//
// A wrong or missing key gets 401 {"status":"error","code":401,"message":
// "invalid api key","request":"<full URL, key included>"} and the same URL
// in X-Request-Url. Past the per-key budget (20/s, burst 40) the answer is
// 429 with Retry-After, X-RateLimit-Limit/Remaining/Reset (Unix seconds)
// and a message naming the key. An unknown symbol gets 404 "unknown
// symbol", other paths 404 "not found", bad parameters 400. In "errors in
// 200" mode every 4xx is sent as HTTP 200 with the real code in the body.
// Latency, 503s and connection resets can be injected; they apply to the
// WebSocket upgrade as well.
//
// # WebSocket
//
// GET /v1/stream. Every server frame is a JSON array. The server sends
// [{"ev":"status","status":"connected"}]; the client must send
// {"action":"auth","key":"K"} within AuthTimeout (auth_success; otherwise
// auth_failed and close 4001, or auth_timeout and close 4002). Other
// messages before auth get {"ev":"status","status":"error"}. ConnCap
// authenticated connections are allowed per key: with RefuseNew the
// newcomer gets max_connections and close 4003, with EvictOld the oldest
// connection does.
//
// {"action":"subscribe","symbols":["AAPL","MSFT"]} (or "AAPL,MSFT") is
// acknowledged with {"ev":"status","status":"subscribed","symbols":[..]},
// and unsubscribe alike; unknown symbols are named in an error status and
// the others still apply. A subscription that would take a connection past
// MaxSymbolsPerConn changes nothing and answers status symbol_limit. More
// than MaxClientMsgsPerSec client messages in one second close with 4008.
// An acknowledgement is queued before any data frame of its symbols, and
// no data of a symbol follows its unsubscribe acknowledgement.
//
// Data frames mix symbols and event types:
//
//	[{"ev":"T","sym":"AAPL","p":191.2,"s":100,"t":1733241600123},
//	 {"ev":"Q","sym":"MSFT","bp":410.1,"ap":410.3,"t":1733241600125}]
//
// at EventsPerSecond per subscribed symbol, batched per TickInterval and
// split at MaxFrameBytes. The server pings every PingInterval and closes
// with 4004 when a pong does not come within PongTimeout. A connection
// whose queue of OutQueue frames overflows gets slow_client and close
// 4005. MaxLifetime closes with 1001; DropAll drops every connection
// without a close frame. Close sends 1001.
//
// # Testing knobs
//
// Every Options field has a flag in cmd/marketsim. At run time, SetKeys
// rotates keys, SetErrorsIn200, SetLatency, SetFailRate, SetResetRate,
// SetEventsPerSecond and SetRESTLimit turn the other knobs, DropAll
// injects a network failure, and Stats reports what the vendor saw.
// Keys are never logged; logs carry a short fingerprint (key_id).
//
// # Example
//
//	sim, err := marketsim.New(marketsim.Options{Keys: []string{"K"}})
//	if err != nil { ... }
//	defer sim.Close()
//	base, err := sim.Start("127.0.0.1:0")
//	// GET base+"/v1/quote/AAPL?apikey=K"; dial sim.StreamURL()
package marketsim
