package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tickgate/tickgate/apierr"
	"github.com/tickgate/tickgate/logging"
	"github.com/tickgate/tickgate/session"
)

// WebSocket tickets (BRIEF section 6) let clients that cannot send the
// session cookie on a WebSocket handshake — mobile apps, or a page whose
// WebSocket goes to another host — open /ws/{feed}:
//
//  1. POST /auth/ws-ticket with the session (cookie) and X-CSRF: 1 answers
//     {"ticket":"...","expires_at":"..."}: 256 random bits, valid for
//     TicketTTL, bound to the session.
//  2. GET /ws/{feed}?ticket=... upgrades once; the ticket is spent on the
//     first attempt, whatever its outcome.
//
// Only the ticket's SHA-256 is stored, in the session store's values
// (session.Values: memory, or Redis so that any replica redeems it), and
// taken with one atomic get-and-delete, so a ticket opens one socket on
// one replica at most. Redeeming it loads the session it was issued for:
// a session that has ended since makes the ticket worthless. Browsers
// keep the Origin check: a handshake with an Origin header must carry an
// allowed one, ticket or not; one without an Origin header (not a
// browser) is upgraded only with a ticket. The ticket travels in the
// query string, which the access log never writes and the log redactor
// scrubs (ticket=...).

// TicketTTL is how long a WebSocket ticket stays valid.
const TicketTTL = 10 * time.Second

const (
	ticketBytes     = 32
	ticketLen       = (ticketBytes*8 + 5) / 6 // base64url, no padding
	ticketKeyPrefix = "wsticket:"
	ticketParam     = "ticket"
	codeBadTicket   = "invalid_ticket"
)

// ticketRecord is what the store keeps under the ticket's hash.
type ticketRecord struct {
	Session string `json:"s"` // the session's store key (never logged)
	Expires int64  `json:"e"` // Unix milliseconds
}

type ticketCtxKey struct{}

// fromTicket reports whether the request's session came from a ticket.
func fromTicket(r *http.Request) bool {
	v, _ := r.Context().Value(ticketCtxKey{}).(bool)
	return v
}

func ticketKey(ticket string) string {
	sum := sha256.Sum256([]byte(ticket))
	return ticketKeyPrefix + hex.EncodeToString(sum[:])
}

// ticketValues is the store's session.Values, or nil when it has none.
func (a *App) ticketValues() session.Values {
	v, _ := a.cfg.Store.(session.Values)
	return v
}

// issueTicket handles POST /auth/ws-ticket behind the session, per-session
// rate limit and CSRF middleware.
func (a *App) issueTicket(c echo.Context) error {
	w, r := c.Response(), c.Request()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		apierr.Respond(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return nil
	}
	s, ok := session.FromContext(r.Context())
	if !ok {
		apierr.Respond(w, http.StatusUnauthorized, "no_session", "no valid session; log in")
		return nil
	}
	vals := a.ticketValues()
	if vals == nil {
		apierr.Respond(w, http.StatusNotImplemented, "not_implemented", "this session store cannot keep WebSocket tickets")
		return nil
	}
	var raw [ticketBytes]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails (Go 1.24+)
	ticket := base64.RawURLEncoding.EncodeToString(raw[:])
	expires := time.Now().Add(TicketTTL)
	val, err := json.Marshal(ticketRecord{Session: s.Key, Expires: expires.UnixMilli()})
	if err != nil {
		return apierr.Wrap(err, http.StatusInternalServerError, "internal", "internal error")
	}
	if err := vals.SetValue(r.Context(), ticketKey(ticket), val, TicketTTL); err != nil {
		a.storeFailed(w, r, "issue ws ticket", err)
		return nil
	}
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "ws ticket issued", logging.Audit(),
		slog.String("user", s.User), slog.String("client_ip", a.ips.ClientIPString(r)))
	w.Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]string{
		"ticket":     ticket,
		"expires_at": expires.UTC().Format(time.RFC3339),
	})
}

// redeemTicket is the /ws/{feed} middleware that turns ?ticket=... into
// the session it was issued for. It runs after the cookie's session is
// loaded and replaces it: the ticket names the session explicitly. A
// request without the parameter passes untouched; any problem with a
// ticket is 401 invalid_ticket, with no upgrade.
func (a *App) redeemTicket(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		w, r := c.Response(), c.Request()
		q := r.URL.Query()
		if _, ok := q[ticketParam]; !ok {
			return next(c)
		}
		refuse := func(reason string) error {
			a.metrics.GuardDenials.WithLabelValues("ticket", codeBadTicket).Inc()
			a.log.LogAttrs(r.Context(), slog.LevelWarn, "ws ticket refused", logging.Audit(),
				slog.String("reason", reason), slog.String("client_ip", a.ips.ClientIPString(r)))
			apierr.Respond(w, http.StatusUnauthorized, codeBadTicket, "the WebSocket ticket is invalid, used or expired; ask POST /auth/ws-ticket for a new one")
			return nil
		}
		vals := a.ticketValues()
		tickets := q[ticketParam]
		switch {
		case vals == nil:
			return refuse("no_ticket_store")
		case len(tickets) != 1 || len(tickets[0]) != ticketLen:
			return refuse("malformed")
		}
		if _, err := base64.RawURLEncoding.DecodeString(tickets[0]); err != nil {
			return refuse("malformed")
		}
		raw, err := vals.TakeValue(r.Context(), ticketKey(tickets[0]))
		if errors.Is(err, session.ErrNotFound) {
			return refuse("unknown_or_used")
		}
		if err != nil {
			a.storeFailed(w, r, "redeem ws ticket", err)
			return nil
		}
		var rec ticketRecord
		if err := json.Unmarshal(raw, &rec); err != nil || rec.Session == "" {
			return refuse("malformed_record")
		}
		if time.Now().UnixMilli() >= rec.Expires {
			return refuse("expired")
		}
		s, err := a.sessions.SessionByKey(r.Context(), rec.Session)
		if errors.Is(err, session.ErrNotFound) {
			return refuse("session_ended")
		}
		if err != nil {
			a.storeFailed(w, r, "redeem ws ticket", err)
			return nil
		}
		if ri := infoFrom(r.Context()); ri != nil {
			ri.user = s.User
		}
		ctx := context.WithValue(session.NewContext(r.Context(), s), ticketCtxKey{}, true)
		c.SetRequest(r.WithContext(ctx))
		return next(c)
	}
}

// storeFailed answers 503 session_store_unavailable, as the session
// middleware does when the store fails.
func (a *App) storeFailed(w http.ResponseWriter, r *http.Request, op string, err error) {
	a.log.ErrorContext(r.Context(), "session store unavailable", "op", op, "err", err)
	apierr.Write(w, &apierr.Error{
		Status:     http.StatusServiceUnavailable,
		Code:       "session_store_unavailable",
		Message:    "the session store is unavailable; try again shortly",
		RetryAfter: 2,
		Err:        err,
	})
}
