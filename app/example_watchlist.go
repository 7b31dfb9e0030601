package app

// This file is the day-one example of an app-owned route, written the way
// a team that clones tickgate should write its own (README "Add your own
// route"): one file, registered with one call in app.go behind the same
// middleware as /api (client-IP limit, session, per-user network check,
// per-session limit, guard.routes limits, CSRF for writes), its own
// stricter write limit, JSON errors with stable codes, validated input,
// an audit line for every change, and data kept per user in the session
// store (session.Values: memory, or Redis shared by replicas).
//
//	GET /app/watchlist   200 {"symbols":["AAPL","MSFT"]}  ([] when none)
//	PUT /app/watchlist   {"symbols":["aapl","MSFT"]} → 200 {"symbols":["AAPL","MSFT"]}

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/tickgate/tickgate/apierr"
	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/logging"
	"github.com/tickgate/tickgate/session"
)

const (
	// WatchlistMax is the most symbols a watchlist holds.
	WatchlistMax = 50
	// watchlistBody bounds a PUT body: 50 symbols of 32 characters fit.
	watchlistBody = 4 << 10
	// watchlistWrites limits PUTs per session, on top of the session's
	// general limit: saving a watchlist is a deliberate act, not a stream.
	watchlistWrites = "5/1s,300/1h"
	// watchlistKey prefixes the user's entry in the store's values.
	watchlistKey = "app:watchlist:"
)

// watchlist is the body of both methods.
type watchlist struct {
	Symbols []string `json:"symbols"`
}

// registerWatchlist adds GET and PUT /watchlist to g (mounted at /app
// with the session middleware). It needs a store that keeps values.
func (a *App) registerWatchlist(g *echo.Group) error {
	lim, err := config.ParseLimit(watchlistWrites)
	if err != nil {
		return err
	}
	writes, err := a.guard.Limiter("app_watchlist", lim)
	if err != nil {
		return err
	}
	limitWrites := a.limit(writes, "app_watchlist", func(r *http.Request) string {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return "" // reads take no write token
		}
		return sessionKey(r)
	})
	g.Any("/watchlist", a.watchlist, limitWrites)
	return nil
}

// watchlist serves GET (read) and PUT (replace) of the session user's
// watchlist.
func (a *App) watchlist(c echo.Context) error {
	w, r := c.Response(), c.Request()
	s, ok := session.FromContext(r.Context())
	if !ok { // the group requires a session; never trust a single guard
		apierr.Respond(w, http.StatusUnauthorized, "no_session", "no valid session; log in")
		return nil
	}
	vals, ok := a.cfg.Store.(session.Values)
	if !ok {
		apierr.Respond(w, http.StatusNotImplemented, "not_implemented", "this session store cannot keep app data")
		return nil
	}
	key := watchlistKey + s.User
	w.Header().Set("Cache-Control", "no-store")

	switch r.Method {
	case http.MethodGet, http.MethodHead:
		list := watchlist{Symbols: []string{}}
		raw, err := vals.GetValue(r.Context(), key)
		switch {
		case errors.Is(err, session.ErrNotFound):
		case err != nil:
			a.storeFailed(w, r, "read watchlist", err)
			return nil
		default:
			if err := json.Unmarshal(raw, &list); err != nil {
				// Stored by an older version, or damaged: say so in the
				// log, give the user an empty list they can overwrite.
				a.log.WarnContext(r.Context(), "watchlist: stored value unreadable", "user", s.User, "err", err)
				list.Symbols = []string{}
			}
		}
		return c.JSON(http.StatusOK, list)

	case http.MethodPut:
		list, perr := readWatchlist(w, r)
		if perr != nil {
			a.log.LogAttrs(r.Context(), slog.LevelInfo, "watchlist update refused",
				slog.String("user", s.User), slog.String("code", perr.Code))
			apierr.Write(w, perr)
			return nil
		}
		raw, err := json.Marshal(list)
		if err != nil {
			return apierr.Wrap(err, http.StatusInternalServerError, "internal", "internal error")
		}
		if err := vals.SetValue(r.Context(), key, raw, 0); err != nil {
			a.storeFailed(w, r, "write watchlist", err)
			return nil
		}
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "watchlist updated", logging.Audit(),
			slog.String("user", s.User), slog.Int("symbols", len(list.Symbols)))
		return c.JSON(http.StatusOK, list)

	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		apierr.Respond(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET or PUT")
		return nil
	}
}

// readWatchlist decodes and checks a PUT body: JSON {"symbols":[...]}
// and nothing else, at most WatchlistMax valid symbols. Symbols are
// upper-cased and duplicates dropped, keeping the first order. Errors
// never echo the input.
func readWatchlist(w http.ResponseWriter, r *http.Request) (watchlist, *apierr.Error) {
	ct := r.Header.Values("Content-Type")
	if len(ct) != 1 {
		return watchlist{}, apierr.New(http.StatusUnsupportedMediaType, "unsupported_media_type", "send one Content-Type: application/json")
	}
	if mt, _, err := mime.ParseMediaType(ct[0]); err != nil || mt != "application/json" {
		return watchlist{}, apierr.New(http.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, watchlistBody))
	dec.DisallowUnknownFields()
	var body struct {
		Symbols *[]string `json:"symbols"`
	}
	err := dec.Decode(&body)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("data after the JSON object")
	}
	if maxErr := (*http.MaxBytesError)(nil); errors.As(err, &maxErr) {
		return watchlist{}, apierr.New(http.StatusRequestEntityTooLarge, "request_too_large", "the body must be at most 4 KiB")
	}
	if err != nil || body.Symbols == nil {
		return watchlist{}, apierr.New(http.StatusBadRequest, "bad_request", `the body must be JSON {"symbols":["AAPL","MSFT"]}`)
	}
	out := watchlist{Symbols: make([]string, 0, len(*body.Symbols))}
	seen := map[string]bool{}
	for _, sym := range *body.Symbols {
		if !config.ValidSymbol(sym) {
			return watchlist{}, apierr.New(http.StatusBadRequest, "invalid_symbol",
				"a symbol is 1 to 32 characters: letters, digits and . - / : _ (starting with a letter or digit)")
		}
		sym = strings.ToUpper(sym)
		if !seen[sym] {
			seen[sym] = true
			out.Symbols = append(out.Symbols, sym)
		}
	}
	if len(out.Symbols) > WatchlistMax {
		return watchlist{}, apierr.New(http.StatusBadRequest, "too_many_symbols", "a watchlist holds at most 50 symbols")
	}
	return out, nil
}
