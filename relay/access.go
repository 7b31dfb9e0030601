package relay

import (
	"log/slog"
	"strconv"

	"github.com/tickgate/tickgate/logging"
	"github.com/tickgate/tickgate/session"
)

// codeForbiddenSymbol: the session's roles do not allow a symbol on this
// feed (config.FeedRole.Symbols); nothing was subscribed.
const codeForbiddenSymbol = "forbidden_symbol"

// setAccess fixes the socket's symbol limit and allowlist from
// Config.Access, once, before the socket is served. Roles live in the
// session record and do not change during a session.
func (c *client) setAccess(s *session.Session, feed string) {
	if c.r.cfg.Access != nil {
		c.access = c.r.cfg.Access(s, feed)
	}
}

// symbolLimit is the socket's session limit on the feed: the feed's, or
// the lower one of the session's roles.
func (c *client) symbolLimit(feedLimit int) int {
	if m := c.access.MaxSymbols; m > 0 && m < feedLimit {
		return m
	}
	return feedLimit
}

// readyMessage is the hub's ready message, or one carrying the session's
// own lower limit.
func (c *client) readyMessage(h *hub) []byte {
	if limit := c.symbolLimit(h.maxSymbols); limit != h.maxSymbols {
		return readyMessage(h.name, limit)
	}
	return h.readyMsg
}

// forbiddenSymbols returns a forbidden_symbol error naming the symbols
// outside the session's allowlist (they passed the syntax check, so
// naming them echoes nothing unchecked), after logging and counting the
// denial; nil when every symbol is allowed.
func (c *client) forbiddenSymbols(syms []string) *protoError {
	if c.access.Symbols == nil {
		return nil
	}
	var denied []string
	for _, s := range syms {
		if !c.access.Symbols[s] {
			denied = append(denied, s)
		}
	}
	if len(denied) == 0 {
		return nil
	}
	c.r.cfg.Metrics.GuardDenials.WithLabelValues("symbol", codeForbiddenSymbol).Inc()
	c.h.log.LogAttrs(c.logCtx, slog.LevelWarn, "ws symbols denied by role", logging.Audit(),
		slog.String("user", c.user), slog.Any("symbols", denied), slog.String("code", codeForbiddenSymbol))
	return &protoError{
		code:    codeForbiddenSymbol,
		message: strconv.Itoa(len(denied)) + " symbol(s) are not in your plan on this feed; nothing was subscribed",
		symbols: denied,
	}
}
