// Package relay relays market-data WebSocket feeds to browsers without
// ever giving them the vendor key: browser ↔ tickgate ↔ vendor, with one
// shared, server-authenticated upstream connection per feed.
//
// A [Relay] serves GET /ws/{feed} (DESIGN 1.5 and 5). Every browser socket
// of a feed is multiplexed onto the feed's one upstream connection, because
// vendors cap connections per key (marketsim and Polygon refuse a second
// one; others evict the first): opening one upstream per browser breaks at
// the second browser.
//
// # Upgrade
//
// Before the upgrade, [Relay.ServeHTTP] answers with a JSON error body:
// 401 no_session when the session middleware put no session in the request
// context, 403 origin when the Origin header is missing or not one of
// Config.AllowedOrigins (cross-site WebSocket hijacking: cookies ride along
// on a cross-site upgrade), 404 not_found for an unknown feed, 426
// upgrade_required for a plain request and 503 shutting_down after Close.
// coder/websocket's OriginPatterns repeat the origin check as defence in
// depth; InsecureSkipVerify is never set.
//
// A session may hold Config.MaxConns sockets across feeds. One more is
// upgraded and closed at once with 4008 rather than refused with 429: a
// browser's WebSocket API cannot see the status of a refused upgrade, but
// it can read a close code, and the contract lists 4008 for the connection
// limit.
//
// # Browser protocol
//
// Text frames, one JSON object each. After the upgrade the browser gets
//
//	{"type":"ready","feed":"demo","limits":{"max_symbols":50}}
//
// and may send {"action":"subscribe","symbols":[...]},
// {"action":"unsubscribe","symbols":[...]} and {"action":"ping"}, answered
// by {"type":"subscribed","symbols":[...]}, {"type":"unsubscribed",...} and
// {"type":"pong"}. An acknowledgement lists the symbols as the relay holds
// them and is sent before any data for them; after an unsubscribed
// acknowledgement no data for those symbols follows. Data arrives as
//
//	{"type":"data","feed":"demo","messages":[<vendor messages, byte for byte>]}
//
// batched per browser over the feed's batch window (default 25ms). When the
// upstream is lost every browser gets {"type":"status","upstream":
// "reconnecting"}, and {"type":"status","upstream":"connected"} when it is
// back; a browser joining during an outage gets the reconnecting status
// right after ready.
//
// Symbols are upper-cased and must match ^[A-Z0-9][A-Z0-9./:_-]{0,31}$, so
// "aapl" and "AAPL" are one subscription; vendor symbols are upper-cased
// (ASCII) the same way before routing. A request is applied whole or not
// at all. Recoverable problems answer {"type":"error","code":...,
// "message":...} and keep the socket open: bad_message (not a text frame,
// invalid UTF-8, not a JSON object, unknown action, symbols not a
// non-empty array of strings), invalid_symbol, too_many_symbols (more
// than MaxSymbols distinct symbols for the session on the feed across its
// sockets, more than twice that for one user across all of the user's
// sessions, or more than the feed's cap for all sessions together:
// MaxFeedSymbols, or the adapter's max_connections ×
// max_symbols_per_connection when lower), and unknown_symbol with a
// "symbols" list: the vendor refused them (Adapter.Rejected); their
// subscribers lose them, and for a minute a subscribe naming them is
// answered at once without asking the vendor; forbidden_symbol with a
// "symbols" list: outside the session's allowlist on the feed
// (Config.Access, from its roles; its MaxSymbols lowers the limit above
// and the ready message's). Messages never echo what the browser sent
// unchecked.
//
// Close codes: 4001 the session ended (Sessions.Watch fired, or Touch said
// the session is gone), 4008 policy violation (more than ControlRate
// frames per second for the session across its sockets, over MaxConns, or
// a slow client), 1009 a frame over
// ReadLimit, 1013 the feed cannot be served now (its key is missing or the
// vendor refuses it even after re-reading it), 1001 shutdown.
//
// Subscribe, unsubscribe and ping count as session activity
// (Sessions.Touch, in the background, at most once a second per socket);
// pushed data does not.
//
// # Hub
//
// One hub per feed keeps symbol → subscribers, reference counted per
// socket and per session. One mutex guards its maps and nothing blocks or
// does I/O under it: fan-out only appends to each browser's queue. A vendor
// frame (a JSON array of messages, one message, or with
// Adapter.MessagesField an object wrapping an array of them) is parsed
// once; each message's symbol is read from Adapter.SymbolField (a dotted
// path reaches into objects); messages matching Adapter.Control or
// Adapter.Rejected are vendor status and are never relayed, and a frame
// that contains the key, in any spelling (URL-encoded, or behind JSON
// escapes a browser's JSON.parse would undo), is dropped whole. Messages without a symbol are
// still checked for the busy, auth failure and refusal answers (vendors
// whose status no single control match describes). Subscribe messages
// carry symbols in the vendor's form (SymbolPrefixes, SymbolSuffix,
// SymbolCase); an adapter may send a Heartbeat and renew its connection
// at MaxLifetime (browsers see reconnecting, then connected).
//
// Slow browsers never slow the hub. Each browser's queue holds QueueSize
// messages; past that it conflates, keeping the latest message per symbol
// (counted as tickgate_ws_dropped_total{reason="conflated"}), so it never
// holds more than max(QueueSize, the browser's symbols). At most
// SendWindow bytes are on the way to a browser unconfirmed: a ping sent
// after them confirms them when its pong returns (browsers answer pings as
// they read). Past the window data waits, conflating; a browser that
// confirms nothing for WriteTimeout is closed with 4008, and because its
// unread bytes are bounded the close frame still fits in the socket
// buffers: it reads 4008 after its data, not an abnormal closure. Every
// socket write also has WriteTimeout; a write that times out cuts the
// connection.
//
// # Upstream
//
// The upstream connection opens when the first browser connects to the
// feed (not at start-up, so an unused feed costs the vendor nothing) and
// then stays up, idle when no one subscribes, until Close; if the vendor
// drops it while no symbol is wanted (Coinbase closes a connection left
// without a subscription), it comes back on the next subscribe, with no
// reconnect loop and no status to browsers. Where the
// adapter allows several connections per key (max_connections) with a
// symbol cap per connection, a new symbol goes to the fullest connection
// with room, else takes the place of a symbol no browser wants any more,
// else opens another connection; a connection left with no symbol closes
// while another remains. Browsers see one upstream state: reconnecting
// while any connection is lost, connected when all are back. It
// authenticates per adapter: an auth message ({{key}} JSON-escaped) whose
// answer must match Auth.Success, the key in a query parameter or a header,
// or none. The vendor is subscribed on first interest and unsubscribed
// Linger (default 2s) after the last subscriber leaves, so a page reload
// costs nothing; subscription changes are batched and paced under the
// adapter's MaxMessageRate (marketsim closes a connection that sends more
// than 10 messages a second).
//
// On loss the relay reconnects with exponential backoff and jitter
// (ReconnectMin to ReconnectMax), re-authenticates and re-subscribes every
// live symbol. Frames that are not JSON (including invalid UTF-8, which
// browsers would fail the socket on) or hold no routable message are
// counted (tickgate_ws_dropped_total{reason="unroutable"}) and dropped;
// they never end the connection. When the vendor refuses the key, the relay calls
// Secrets.Invalidate and retries once at once if that returns a different
// key (a rotated key takes effect with no restart); otherwise the feed is
// unavailable (1013) and retried with growing backoff, never looping on an
// old key. A vendor "too many connections" answer (Adapter.Busy) starts
// the backoff eight times higher: another holder of the key is connected.
//
// With Config.Sharing several replicas share each feed's upstream through
// Redis (cluster.go): the replica holding the feed's lease (SET NX PX,
// renewed and released by compare-and-set scripts, with a fencing token
// incremented on every take-over) runs the connections above for the
// union of the symbols every replica's browsers want (each replica keeps
// its set in a hash entry with an expiry), and publishes the data other
// replicas want on one channel per feed. Followers relay it to their
// browsers, drop messages carrying an older token, and follow the owner's
// status; when it goes silent they say reconnecting and one takes over.
//
// Nothing the relay logs or returns holds the key, the session key or a
// URL with its query: Go's *url.Error text includes the whole URL, so
// upstream errors are redacted and logs name the vendor path only.
//
// # Example
//
//	rl, err := relay.New(relay.Config{
//		Feeds:          file.Feeds,
//		Secrets:        secretCache,   // *secrets.Cache
//		Sessions:       sessionManager, // *session.Manager
//		AllowedOrigins: []string{"https://app.example.com"},
//		Logger:         logger,
//		Metrics:        m,
//	})
//	if err != nil {
//		return err
//	}
//	defer rl.Close() // after the HTTP server stopped accepting
//	e.GET("/ws/:feed", echo.WrapHandler(rl), sessionMiddleware)
package relay
