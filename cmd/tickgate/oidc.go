package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/tickgate/tickgate/app"
	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/metrics"
	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/oidc"
)

// oidcDiscoveryTimeout bounds the provider discovery at start-up (and in
// check-config): an unreachable issuer is a one-line start-up error, not
// a hang.
const oidcDiscoveryTimeout = 10 * time.Second

// loadOIDCSecret reads the OIDC client secret named by
// TICKGATE_OIDC_CLIENT_SECRET through the secrets cache, so a missing one
// is reported with the other start-up problems, naming the setting and
// the secret, never a value.
func loadOIDCSecret(ctx context.Context, s config.Settings, cache *secrets.Cache) error {
	if !s.OIDC.Enabled() || s.OIDC.ClientSecret == "" || cache == nil {
		return nil
	}
	if _, err := cache.Get(ctx, s.OIDC.ClientSecret); err != nil {
		return fmt.Errorf("TICKGATE_OIDC_CLIENT_SECRET: %w", err)
	}
	return nil
}

// oidcLogin returns what app.New calls to build the OIDC login, or nil
// when TICKGATE_OIDC_ISSUER is unset. s must be the settings after
// WithListenAddr, so that a derived redirect URL has the real port.
func oidcLogin(ctx context.Context, s config.Settings, cache *secrets.Cache, log *slog.Logger, m *metrics.Metrics) app.NewOIDCFunc {
	if !s.OIDC.Enabled() {
		return nil
	}
	return func(sessions oidc.Sessions) (*oidc.Login, error) {
		return newOIDCLogin(ctx, s, cache, sessions, log, m)
	}
}

// newOIDCLogin discovers the provider and builds the Login.
func newOIDCLogin(ctx context.Context, s config.Settings, cache *secrets.Cache, sessions oidc.Sessions, log *slog.Logger, m *metrics.Metrics) (*oidc.Login, error) {
	secret, err := cache.Get(ctx, s.OIDC.ClientSecret)
	if err != nil {
		return nil, fmt.Errorf("TICKGATE_OIDC_CLIENT_SECRET: %w", err)
	}
	dctx, cancel := context.WithTimeout(ctx, oidcDiscoveryTimeout)
	defer cancel()
	l, err := oidc.New(dctx, oidc.Config{
		IssuerURL:      s.OIDC.Issuer,
		ClientID:       s.OIDC.ClientID,
		ClientSecret:   secret,
		RedirectURL:    s.OIDCRedirectURL(),
		Scopes:         s.OIDC.Scopes,
		UsernameClaim:  s.OIDC.UsernameClaim,
		RolesClaim:     s.OIDC.RolesClaim,
		AllowedUsers:   s.OIDC.AllowedUsers,
		AllowedDomains: s.OIDC.AllowedDomains,
		AllowAnyUser:   s.OIDC.AllowAnyUser,
		Sessions:       sessions,
		Logger:         log,
		Metrics:        m,
	})
	switch {
	case errors.Is(err, oidc.ErrDiscovery):
		if dctx.Err() != nil {
			return nil, fmt.Errorf("TICKGATE_OIDC_ISSUER: the provider %s did not answer its discovery request within %s", s.OIDC.Issuer, oidcDiscoveryTimeout)
		}
		return nil, fmt.Errorf("TICKGATE_OIDC_ISSUER: %w", err)
	case err != nil:
		return nil, fmt.Errorf("OIDC login: %w", err)
	}
	log.Info("oidc login enabled", "issuer", s.OIDC.Issuer, "client_id", s.OIDC.ClientID,
		"redirect_url", s.OIDCRedirectURL(), "username_claim", cmp.Or(s.OIDC.UsernameClaim, oidc.DefaultUsernameClaim))
	return l, nil
}

// checkOIDC is check-config's OIDC check: the provider's discovery
// document is read and the whole configuration validated as at start-up.
// It returns "" when OIDC is off, else a line for the report.
func checkOIDC(ctx context.Context, st *setup, log *slog.Logger) (string, error) {
	if !st.settings.OIDC.Enabled() {
		return "", nil
	}
	l, err := newOIDCLogin(ctx, st.settings, st.cache, checkSessions{}, log, metrics.Discard())
	if err != nil {
		return "", err
	}
	l.Close()
	return fmt.Sprintf("ok: OIDC login through %s (client %s)", st.settings.OIDC.Issuer, st.settings.OIDC.ClientID), nil
}

// checkSessions stands in for the session Manager in check-config, which
// builds the Login only to validate it and never serves a login.
type checkSessions struct{}

func (checkSessions) Establish(http.ResponseWriter, *http.Request, string, string) (*session.Session, error) {
	return nil, errors.New("check-config: no sessions")
}
func (checkSessions) IsSecure(r *http.Request) bool   { return r.TLS != nil }
func (checkSessions) ClientIP(r *http.Request) string { return r.RemoteAddr }
