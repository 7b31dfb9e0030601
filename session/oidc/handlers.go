package oidc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tickgate/tickgate/apierr"
	"github.com/tickgate/tickgate/session"
)

// State cookie names. The __Host- prefix (HTTPS only) makes browsers refuse
// the cookie unless it is Secure, has Path=/ and no Domain, so a sibling
// subdomain cannot plant one (RFC 6265bis §4.1.3.2).
const (
	StateCookieName       = "tickgate-oidc"
	SecureStateCookieName = "__Host-tickgate-oidc"
)

// LandingPath is where Callback sends the browser after a login: always
// this fixed local path, never a URL taken from the request (open redirect).
const LandingPath = "/"

// Error codes of the JSON error bodies (DESIGN 1.4 shape).
const (
	CodeState     = "oidc_state"     // 400: state cookie or parameter missing, forged, expired or used
	CodeFailed    = "oidc_failed"    // 401: code exchange or ID token verification failed
	CodeForbidden = "oidc_forbidden" // 403: the provider's user may not use tickgate
)

// response gives the status and fixed client message of an error code.
func response(code string) (int, string) {
	switch code {
	case CodeState:
		return http.StatusBadRequest, "the login attempt is invalid, expired or already used; start the login again"
	case CodeForbidden:
		return http.StatusForbidden, "this account is not allowed to use this service"
	default:
		return http.StatusUnauthorized, "the login with the identity provider could not be completed; try again"
	}
}

// Start handles GET /auth/oidc/login: it begins an authorization code flow
// with PKCE (S256, RFC 7636), a random state and a random nonce, seals them
// with the PKCE verifier into a short-lived state cookie bound to this
// browser, and redirects (302) to the provider's authorization endpoint.
func (l *Login) Start(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		apierr.Respond(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	f := newFlow(l.now())
	http.SetCookie(w, l.stateCookie(r, l.sealer.seal(f), int(stateTTL/time.Second)))
	u := l.oauth.AuthCodeURL(f.stateParam(),
		gooidc.Nonce(f.nonceParam()),
		oauth2.S256ChallengeOption(f.verifierParam()))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusFound)
}

// Callback handles GET /auth/oidc/callback, where the provider sends the
// browser back. In order: the state cookie must open (sealed by us, for
// this configuration, not expired) and its state must equal the state
// parameter (constant time) and be unused; the code is exchanged with the
// PKCE verifier; the ID token is verified (signature, issuer, audience,
// expiry) and its nonce must be the cookie's; the user name claim must be
// valid and allowed. Then Sessions.Establish starts the session and the
// browser is redirected (302) to LandingPath.
//
// Failures answer 400 oidc_state, 401 oidc_failed or 403 oidc_forbidden
// (the session store's 503 session_store_unavailable passes through) and
// write an audit line with a reason; no token, code, state or secret is
// ever logged or sent. The state cookie is cleared whatever the outcome.
func (l *Login) Callback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		apierr.Respond(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	// One callback per Start: the cookie goes whatever happens next.
	http.SetCookie(w, l.stateCookie(r, "", -1))

	c, err := r.Cookie(l.cookieName(r))
	if err != nil {
		l.fail(w, r, CodeState, "missing_cookie")
		return
	}
	f, err := l.sealer.open(c.Value)
	if err != nil {
		l.fail(w, r, CodeState, "bad_cookie")
		return
	}
	now := l.now()
	if !now.Before(f.expires) {
		l.fail(w, r, CodeState, "expired")
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		l.fail(w, r, CodeState, "bad_query")
		return
	}
	if s := q["state"]; len(s) != 1 || subtle.ConstantTimeCompare([]byte(s[0]), []byte(f.stateParam())) != 1 {
		l.fail(w, r, CodeState, "state_mismatch")
		return
	}
	if !l.used.claim(f.state, f.expires, now) {
		l.fail(w, r, CodeState, "replayed")
		return
	}

	// RFC 6749 §4.1.2.1: the provider may send the user back with an
	// error instead of a code (the user declined, say).
	if e := q["error"]; len(e) > 0 {
		l.used.release(f.state)
		code := CodeFailed
		if e[0] == "access_denied" {
			code = CodeForbidden
		}
		l.fail(w, r, code, "provider_error", slog.String("provider_error", safeCode(e[0])))
		return
	}
	codes := q["code"]
	if len(codes) != 1 || codes[0] == "" {
		l.used.release(f.state)
		l.fail(w, r, CodeFailed, "missing_code")
		return
	}

	ctx := l.ctx(r.Context())
	tok, err := l.oauth.Exchange(ctx, codes[0], oauth2.VerifierOption(f.verifierParam()))
	if err != nil {
		l.used.release(f.state)
		l.fail(w, r, CodeFailed, "exchange_failed", slog.String("detail", exchangeDetail(err)))
		return
	}
	// The tokens stay in this function: tickgate calls no provider API on
	// the user's behalf, so it keeps none of them (see doc.go).
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		l.fail(w, r, CodeFailed, "no_id_token")
		return
	}
	idt, err := l.verifier.Verify(ctx, raw)
	if err != nil {
		l.fail(w, r, CodeFailed, "id_token_invalid", slog.String("detail", verifyDetail(err)))
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.nonceParam())) != 1 {
		l.fail(w, r, CodeFailed, "nonce_mismatch", slog.String("subject", bounded(idt.Subject)))
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		l.fail(w, r, CodeFailed, "claims_unreadable", slog.String("subject", bounded(idt.Subject)))
		return
	}
	// OIDC Core §3.1.3.7: with several audiences, azp names the client
	// the token was issued to; it must be us.
	if azp, ok := claims["azp"]; ok || len(idt.Audience) > 1 {
		if s, _ := azp.(string); s != l.clientID {
			l.fail(w, r, CodeFailed, "azp_mismatch", slog.String("subject", bounded(idt.Subject)))
			return
		}
	}
	user, reason := l.identify(claims)
	if reason != "" {
		attrs := []slog.Attr{slog.String("subject", bounded(idt.Subject))}
		if user != "" {
			attrs = append(attrs, slog.String("user", user))
		}
		l.fail(w, r, CodeForbidden, reason, attrs...)
		return
	}

	if rs, ok := l.sessions.(RoleSessions); ok && l.rolesClaim != "" {
		roles, ignored := l.roles(claims)
		if ignored > 0 {
			l.log.LogAttrs(r.Context(), slog.LevelInfo, "oidc: role claim values ignored (not role names)",
				slog.String("user", user), slog.Int("ignored", ignored))
		}
		_, err = rs.EstablishWithRoles(w, r, user, "oidc", roles)
	} else {
		_, err = l.sessions.Establish(w, r, user, "oidc")
	}
	if err != nil {
		if errors.Is(err, session.ErrInvalidUsername) {
			l.fail(w, r, CodeForbidden, "invalid_username", slog.String("subject", bounded(idt.Subject)))
			return
		}
		l.log.WarnContext(r.Context(), "oidc: session not established", "user", user, "err", err)
		apierr.Write(w, err)
		return
	}
	http.Redirect(w, r, LandingPath, http.StatusFound)
}

// fail answers with code's status and fixed message, counts it and writes
// the audit line.
func (l *Login) fail(w http.ResponseWriter, r *http.Request, code, reason string, attrs ...slog.Attr) {
	l.met.Logins.WithLabelValues(code).Inc()
	attrs = append([]slog.Attr{
		slog.Bool("audit", true), slog.String("method", "oidc"),
		slog.String("result", code), slog.String("reason", reason),
		slog.String("client_ip", l.sessions.ClientIP(r)),
	}, attrs...)
	l.log.LogAttrs(r.Context(), slog.LevelWarn, "login failed", attrs...)
	status, msg := response(code)
	apierr.Respond(w, status, code, msg)
}

func (l *Login) cookieName(r *http.Request) string {
	if l.sessions.IsSecure(r) {
		return SecureStateCookieName
	}
	return StateCookieName
}

// stateCookie builds the state cookie; maxAge < 0 clears it. SameSite=Lax,
// not Strict: the provider's redirect back is a cross-site top-level GET,
// on which browsers send Lax cookies but not Strict ones.
func (l *Login) stateCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	secure := l.sessions.IsSecure(r)
	name := StateCookieName
	if secure {
		name = SecureStateCookieName
	}
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// exchangeDetail describes a failed code exchange for the log. The token
// endpoint's error_description and body are left out: providers echo the
// code or the client secret there.
func exchangeDetail(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		s := "token endpoint refused"
		if re.Response != nil {
			s += ": HTTP " + strconv.Itoa(re.Response.StatusCode)
		}
		if re.ErrorCode != "" {
			s += " " + safeCode(re.ErrorCode)
		}
		return s
	}
	var ue *url.Error
	if errors.As(err, &ue) { // the token URL holds no secret; the body is not in the error
		return "token endpoint unreachable: " + bounded(ue.Err.Error())
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "token exchange: " + err.Error()
	}
	return fmt.Sprintf("token response unusable (%T)", err)
}

// verifyDetail describes an ID token verification failure for the log.
// go-oidc's messages name claims (issuer, audience, expiry), never the
// token itself; they are bounded anyway.
func verifyDetail(err error) string {
	var exp *gooidc.TokenExpiredError
	if errors.As(err, &exp) {
		return "id token expired"
	}
	return bounded(err.Error())
}

// safeCode returns an OAuth error code if it looks like one (RFC 6749
// §4.1.2.1: a short snake_case token), else "other".
func safeCode(s string) string {
	if s == "" || len(s) > 64 {
		return "other"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && c != '_' {
			return "other"
		}
	}
	return s
}

// bounded truncates log text to 200 bytes.
func bounded(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
