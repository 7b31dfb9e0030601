package session

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/tickgate/tickgate/apierr"
)

// maxLoginBody bounds the login request body.
const maxLoginBody = 4 << 10

// maxLoginField bounds the user name and password as received; longer ones
// are a bad request rather than an argon2 input.
const maxLoginField = 1024

// info is the body of Login and Info (DESIGN 1.4).
type info struct {
	User          string   `json:"user"`
	Roles         []string `json:"roles,omitempty"`
	IdleExpiresAt string   `json:"idle_expires_at"`
	ExpiresAt     string   `json:"expires_at"`
}

func sessionInfo(s *Session) info {
	return info{
		User:          s.User,
		Roles:         s.Roles,
		IdleExpiresAt: s.IdleExpiresAt.UTC().Format(time.RFC3339),
		ExpiresAt:     s.ExpiresAt.UTC().Format(time.RFC3339),
	}
}

// Login handles POST /auth/login with a JSON body {"username","password"}.
//
// It checks CSRF itself as well (defence in depth, in case a route is
// mounted without RequireCSRF), then the login limiter (429
// too_many_attempts), then the password. Unknown users and wrong passwords
// get the same 401 invalid_credentials after the same argon2id work. On
// success it issues a new 256-bit session id, deletes any session the
// request's cookie named (session fixation), stores only the id's SHA-256,
// sets the cookie for the absolute lifetime and answers 200
// {"user","idle_expires_at","expires_at"}.
func (m *Manager) Login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ip := m.clientIP(r)
	fail := func(result, reason, user string, e *apierr.Error) {
		m.met.Logins.WithLabelValues(result).Inc()
		attrs := []slog.Attr{
			slog.Bool("audit", true), slog.String("result", result),
			slog.String("reason", reason), slog.String("client_ip", ip),
		}
		if user != "" {
			attrs = append(attrs, slog.String("user", user))
		}
		m.log.LogAttrs(ctx, slog.LevelWarn, "login failed", attrs...)
		apierr.Write(w, e)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		apierr.Respond(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	if !m.csrfOK(r) {
		m.met.Logins.WithLabelValues("csrf").Inc()
		writeCSRF(w)
		return
	}

	var body struct {
		Username *string `json:"username"`
		Password *string `json:"password"`
	}
	if r.Body == nil { // only a handler called directly sees this
		r.Body = http.NoBody
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLoginBody))
	err := dec.Decode(&body)
	if err == nil {
		if dec.Decode(&struct{}{}) != io.EOF {
			err = errors.New("data after the JSON object")
		}
	}
	if maxErr := (*http.MaxBytesError)(nil); errors.As(err, &maxErr) {
		fail("bad_request", "body_too_large", "", apierr.New(http.StatusRequestEntityTooLarge,
			"request_too_large", "the login request must be at most 4 KiB"))
		return
	}
	if err != nil || body.Username == nil || body.Password == nil || *body.Username == "" || *body.Password == "" ||
		len(*body.Username) > maxLoginField || len(*body.Password) > maxLoginField {
		fail("bad_request", "bad_request", "", apierr.New(http.StatusBadRequest,
			"bad_request", `the body must be JSON {"username":"...","password":"..."} with both fields non-empty`))
		return
	}
	user, pw := *body.Username, *body.Password

	// The growing delay after failures (backoff.go): answered before any
	// password work, the same way for known and unknown names, and before
	// the limiter, so a too-early retry does not spend a window attempt.
	if d := m.backoff.wait(ip, user, m.now()); d > 0 {
		e := apierr.New(http.StatusTooManyRequests, "too_many_attempts", "too many login attempts; try again later")
		e.RetryAfter = max(1, int(math.Ceil(d.Seconds())))
		fail("limited", "backoff", loggableUser(m.users, user), e)
		return
	}
	if m.limiter != nil {
		if ok, retry := m.limiter.AllowLogin(ctx, ip, user); !ok {
			e := apierr.New(http.StatusTooManyRequests, "too_many_attempts", "too many login attempts; try again later")
			e.RetryAfter = max(1, int(math.Ceil(retry.Seconds())))
			fail("limited", "rate_limited", loggableUser(m.users, user), e)
			return
		}
	}

	// Bound concurrent argon2id runs (memory); wait for a slot.
	select {
	case m.loginSem <- struct{}{}:
	case <-ctx.Done():
		apierr.Respond(w, http.StatusServiceUnavailable, "unavailable", "the request was cancelled")
		return
	}
	valid := CheckUsername(user) == nil
	ok := m.users.Verify(user, pw) && valid
	<-m.loginSem
	if !ok {
		m.backoff.fail(ip, user, m.now())
		reason := "bad_password"
		switch {
		case !valid:
			reason = "invalid_username"
		case !m.users.has(user):
			reason = "unknown_user"
		}
		fail("invalid_credentials", reason, loggableUser(m.users, user), apierr.New(http.StatusUnauthorized,
			"invalid_credentials", "invalid username or password"))
		return
	}

	// The same session start as every other login method: the session
	// the browser presented ends (fixation), a new id is issued, only its
	// hash is stored, the login is audited and the cookie set.
	sess, err := m.EstablishWithRoles(w, r, user, "password", m.users.Roles(user))
	if err != nil {
		apierr.Write(w, err)
		return
	}
	m.backoff.succeed(user)
	writeJSON(w, http.StatusOK, sessionInfo(sess))
}

// loggableUser returns name when it is a known user, else "": a name that
// is not a user may be a password typed in the wrong field.
func loggableUser(u *Users, name string) string {
	if u.has(name) {
		return name
	}
	return ""
}

// Info handles GET /auth/session: 200 {"user","idle_expires_at",
// "expires_at"} for the request's session, or 401 no_session. It must run
// behind Middleware. Reading the session info is not activity (Config
// Passive): the frontend polls it to show the expiry, and polling must not
// keep an idle session alive.
func (m *Manager) Info(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		apierr.Respond(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	s, ok := FromContext(r.Context())
	if !ok {
		writeNoSession(w)
		return
	}
	writeJSON(w, http.StatusOK, sessionInfo(s))
}

// Logout handles POST /auth/logout: it checks CSRF (as Login does),
// deletes the session server-side, fires its watchers (its WebSockets
// close with 4001), clears the cookie and answers 204 — also when there was
// no session. If the store cannot delete the session it answers 503 and
// keeps the cookie, since the session would still be valid.
func (m *Manager) Logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		apierr.Respond(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	if !m.csrfOK(r) {
		writeCSRF(w)
		return
	}
	ctx := r.Context()
	key, ok := "", false
	user := ""
	if s, found := FromContext(ctx); found {
		key, ok, user = s.Key, true, s.User
	} else {
		key, ok = m.requestKey(r) // expired or unknown: delete anyway
	}
	if ok {
		if err := m.Revoke(ctx, key); err != nil {
			m.storeUnavailable(w, r, err)
			return
		}
	}
	if user != "" {
		m.log.LogAttrs(ctx, slog.LevelInfo, "logout",
			slog.Bool("audit", true), slog.String("user", user), slog.String("client_ip", m.clientIP(r)))
	}
	http.SetCookie(w, m.cookie(r, "", -1))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
