package app

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/frontend"
	"github.com/tickgate/tickgate/session/oidc"
)

// OIDC login routes (package session/oidc). The callback's path is fixed,
// since it is registered at the provider (TICKGATE_OIDC_REDIRECT_URL).
const (
	OIDCLoginPath    = "/auth/oidc/login"
	OIDCCallbackPath = config.OIDCCallbackPath
)

// NewOIDCFunc builds the OpenID Connect login once the session Manager
// exists: sessions is what the Login starts sessions with. cmd/tickgate
// discovers the provider in it, within a bounded time.
type NewOIDCFunc func(sessions oidc.Sessions) (*oidc.Login, error)

// setupOIDC builds the OIDC login when Config.NewOIDC is set.
func (a *App) setupOIDC() error {
	if a.cfg.NewOIDC == nil {
		return nil
	}
	l, err := a.cfg.NewOIDC(a.sessions)
	if err != nil {
		return err
	}
	if l == nil {
		return errors.New("app: NewOIDC returned no login")
	}
	a.oidc = l
	return nil
}

// oidcRoutes mounts GET /auth/oidc/login and /auth/oidc/callback on the
// /auth group, so they pass the same per-IP limit, session loading and
// route limits as POST /auth/login. They are GET navigations (the
// provider redirects the browser back), so they take no X-CSRF header:
// the callback's login CSRF defence is the state bound to the browser's
// sealed state cookie. Without OIDC they do not exist (404).
func (a *App) oidcRoutes(auth *echo.Group) {
	if a.oidc == nil {
		return
	}
	auth.Any("/oidc/login", echo.WrapHandler(http.HandlerFunc(a.oidc.Start)))
	auth.Any("/oidc/callback", echo.WrapHandler(http.HandlerFunc(a.oidc.Callback)))
}

// closeOIDC releases the OIDC login's provider connections.
func (a *App) closeOIDC() {
	if a.oidc != nil {
		a.oidc.Close()
	}
}

// page is the demo frontend, told this server's feeds and quote route
// (pageOptions) and whether to offer "Sign in with SSO".
func (a *App) page() http.Handler {
	opts := pageOptions(a.cfg.File)
	if a.oidc != nil {
		opts.SSOLoginPath = OIDCLoginPath
	}
	return frontend.HandlerWith(opts)
}
