package oidc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/metrics"
	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/session"
)

// Defaults for zero Config fields.
const (
	DefaultUsernameClaim = "email"
	// DefaultHTTPTimeout bounds each call to the provider (discovery,
	// token exchange, keys) when Config.HTTPClient is nil.
	DefaultHTTPTimeout = 10 * time.Second
)

// DefaultScopes returns the scopes requested when Config.Scopes is empty.
func DefaultScopes() []string { return []string{gooidc.ScopeOpenID, "profile", "email"} }

// Sessions starts tickgate sessions for users the provider authenticated;
// *session.Manager implements it.
type Sessions interface {
	// Establish does what a successful password login does and sets the
	// session cookie; method ("oidc") goes to the audit line.
	Establish(w http.ResponseWriter, r *http.Request, user, method string) (*session.Session, error)
	// IsSecure reports whether the browser talks HTTPS to us, which picks
	// the state cookie's name and Secure attribute.
	IsSecure(r *http.Request) bool
	// ClientIP is the client address for audit lines.
	ClientIP(r *http.Request) string
}

// RoleSessions is implemented by Sessions that keep roles in the session
// (*session.Manager does). With Config.RolesClaim set, Callback starts
// the session through it.
type RoleSessions interface {
	EstablishWithRoles(w http.ResponseWriter, r *http.Request, user, method string, roles []string) (*session.Session, error)
}

var _ Sessions = (*session.Manager)(nil)

// Config configures a Login. IssuerURL, ClientID, ClientSecret, RedirectURL
// and Sessions are required; so is one of AllowedUsers, AllowedDomains or
// AllowAnyUser. Zero values of the other fields are the documented defaults.
type Config struct {
	// IssuerURL is the provider's issuer, exactly as its discovery
	// document and ID tokens spell it (e.g. https://login.example.com/realms/x).
	// It must be https, except on loopback.
	IssuerURL string
	// ClientID is the client registered at the provider for tickgate.
	ClientID string
	// ClientSecret is that client's secret, from the secrets provider. The
	// state cookie's sealing key is also derived from it (see doc.go).
	ClientSecret secrets.Value
	// RedirectURL is the absolute URL of the route serving Callback, as
	// registered at the provider: https://app.example.com/auth/oidc/callback.
	// It must be https, except on loopback.
	RedirectURL string
	// Scopes requested; default openid, profile, email. Must include openid.
	Scopes []string
	// UsernameClaim is the ID token claim that becomes the tickgate user
	// name (default "email"; "preferred_username" is common). Its value
	// must pass session.CheckUsername (1-64 characters of
	// [A-Za-z0-9._@-]); a user whose value does not is refused (403).
	// When it is "email", email_verified must be true.
	UsernameClaim string
	// RolesClaim, when set, is the ID token claim holding the user's
	// tickgate roles: a JSON array of strings, or one string of roles
	// separated by spaces or commas. A dotted name reaches into nested
	// objects (Keycloak's "realm_access.roles"). Values that are not role
	// names (config.ValidRole) are ignored; a missing claim gives no
	// roles. It takes effect when Sessions implement RoleSessions.
	RolesClaim string
	// AllowedUsers are user names (values of UsernameClaim, compared
	// case-insensitively) that may log in.
	AllowedUsers []string
	// AllowedDomains are email domains (example.com) whose users may log
	// in: the ID token's email claim, which must be verified, must end in
	// @domain. A user passes when in AllowedUsers or AllowedDomains.
	AllowedDomains []string
	// AllowAnyUser lets in every user the provider authenticates for this
	// client, with no AllowedUsers or AllowedDomains check. Set it only
	// when the provider itself limits who may use the client (a company
	// tenant), never for a public provider such as Google accounts.
	AllowAnyUser bool
	// InsecureAllowUnverifiedEmail accepts an email claim whose
	// email_verified is not true, for the user name and for
	// AllowedDomains. Anyone may be able to register any address at some
	// providers, so this lets them pick their tickgate user name.
	InsecureAllowUnverifiedEmail bool

	// Sessions starts the session after a successful login: the
	// *session.Manager.
	Sessions Sessions
	// HTTPClient calls the provider. Default: a client with a 10s timeout
	// on its own transport (Close releases its idle connections).
	HTTPClient *http.Client
	Logger     *slog.Logger     // default: discard
	Metrics    *metrics.Metrics // default: metrics.Discard()
	Now        func() time.Time // default: time.Now
}

// Login is the OpenID Connect login: the authorization code flow with PKCE
// against one provider. Its handlers are Start and Callback. It is safe for
// concurrent use.
type Login struct {
	oauth         oauth2.Config
	verifier      *gooidc.IDTokenVerifier
	endSession    string
	clientID      string
	usernameClaim string
	rolesClaim    string
	allowUsers    map[string]bool
	allowDomains  map[string]bool
	allowAny      bool
	allowUnverif  bool

	sealer *sealer
	used   *usedStates

	sessions  Sessions
	client    *http.Client
	ownClient bool
	log       *slog.Logger
	met       *metrics.Metrics
	now       func() time.Time
}

// New validates cfg, reads the provider's discovery document (so a wrong
// issuer fails at start-up, naming the issuer) and returns the Login. ctx
// bounds the discovery request.
func New(ctx context.Context, cfg Config) (*Login, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if err := checkURL(cfg.IssuerURL, false); err != nil {
		bad("IssuerURL: %v", err)
	}
	if cfg.ClientID == "" {
		bad("ClientID is required")
	}
	if cfg.ClientSecret.IsZero() {
		bad("ClientSecret is required")
	}
	if err := checkURL(cfg.RedirectURL, true); err != nil {
		bad("RedirectURL: %v", err)
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = DefaultScopes()
	}
	if !slices.Contains(cfg.Scopes, gooidc.ScopeOpenID) {
		bad("Scopes must include %q", gooidc.ScopeOpenID)
	}
	for _, s := range cfg.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			bad("Scopes: %q is not a scope token", s)
		}
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = DefaultUsernameClaim
	}
	if cfg.RolesClaim != "" {
		if strings.ContainsAny(cfg.RolesClaim, " \t\r\n") || strings.HasPrefix(cfg.RolesClaim, ".") || strings.HasSuffix(cfg.RolesClaim, ".") || strings.Contains(cfg.RolesClaim, "..") {
			bad("RolesClaim: %q is not a claim name", cfg.RolesClaim)
		}
	}
	allowUsers := map[string]bool{}
	for _, u := range cfg.AllowedUsers {
		u = strings.TrimSpace(u)
		if err := session.CheckUsername(u); err != nil {
			bad("AllowedUsers: %v", err)
			continue
		}
		allowUsers[strings.ToLower(u)] = true
	}
	allowDomains := map[string]bool{}
	for _, d := range cfg.AllowedDomains {
		d = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))
		if !validDomain(d) {
			bad("AllowedDomains: %q is not a domain like example.com", d)
			continue
		}
		allowDomains[d] = true
	}
	if len(allowUsers) == 0 && len(allowDomains) == 0 && !cfg.AllowAnyUser {
		bad("set AllowedUsers or AllowedDomains, or AllowAnyUser when the provider itself limits who may use the client")
	}
	if cfg.Sessions == nil {
		bad("Sessions is required")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.Discard()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	client, own := cfg.HTTPClient, false
	if client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		client, own = &http.Client{Timeout: DefaultHTTPTimeout, Transport: t}, true
	}

	provider, err := gooidc.NewProvider(gooidc.ClientContext(ctx, client), cfg.IssuerURL)
	if err != nil {
		if own {
			client.CloseIdleConnections()
		}
		return nil, fmt.Errorf("%w: issuer %s: %w", ErrDiscovery, cfg.IssuerURL, err)
	}
	var meta struct {
		CodeChallengeMethods []string `json:"code_challenge_methods_supported"`
		EndSession           string   `json:"end_session_endpoint"`
	}
	if err := provider.Claims(&meta); err != nil {
		if own {
			client.CloseIdleConnections()
		}
		return nil, fmt.Errorf("%w: issuer %s: %w", ErrDiscovery, cfg.IssuerURL, err)
	}
	// RFC 8414 §2: absent means the provider does not say; many support
	// S256 without advertising it. A list without S256 is a refusal.
	if meta.CodeChallengeMethods != nil && !slices.Contains(meta.CodeChallengeMethods, "S256") {
		if own {
			client.CloseIdleConnections()
		}
		return nil, fmt.Errorf("%w: issuer %s does not support PKCE with S256 (code_challenge_methods_supported: %q)",
			ErrDiscovery, cfg.IssuerURL, meta.CodeChallengeMethods)
	}
	endSession := ""
	if meta.EndSession != "" && checkURL(meta.EndSession, true) == nil {
		endSession = meta.EndSession
	}

	l := &Login{
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret.Reveal(),
			Endpoint:     provider.Endpoint(),
			RedirectURL:  cfg.RedirectURL,
			Scopes:       slices.Clone(cfg.Scopes),
		},
		verifier:      provider.Verifier(&gooidc.Config{ClientID: cfg.ClientID, Now: cfg.Now}),
		endSession:    endSession,
		clientID:      cfg.ClientID,
		usernameClaim: cfg.UsernameClaim,
		rolesClaim:    cfg.RolesClaim,
		allowUsers:    allowUsers,
		allowDomains:  allowDomains,
		allowAny:      cfg.AllowAnyUser,
		allowUnverif:  cfg.InsecureAllowUnverifiedEmail,
		sealer:        newSealer(cfg.ClientSecret, cfg.ClientID, cfg.RedirectURL),
		used:          newUsedStates(),
		sessions:      cfg.Sessions,
		client:        client,
		ownClient:     own,
		log:           cfg.Logger,
		met:           cfg.Metrics,
		now:           cfg.Now,
	}
	return l, nil
}

// EndSessionURL is the provider's end_session_endpoint (OpenID Connect
// RP-Initiated Logout), or "" when it advertises none. POST /auth/logout
// ends the tickgate session only; a frontend that also wants to end the
// provider's session navigates here afterwards. tickgate keeps no ID token,
// so it cannot add id_token_hint; providers then ask the user to confirm.
func (l *Login) EndSessionURL() string { return l.endSession }

// Close releases the idle connections of the HTTP client New made (not of
// Config.HTTPClient). Close is safe to call twice.
func (l *Login) Close() {
	if l.ownClient {
		l.client.CloseIdleConnections()
	}
}

// ctx returns ctx carrying the provider HTTP client for oauth2 and go-oidc.
func (l *Login) ctx(ctx context.Context) context.Context {
	return gooidc.ClientContext(ctx, l.client)
}

// checkURL accepts an absolute http(s) URL without user info, query or
// fragment; http only on loopback. withPath also requires a path.
func checkURL(raw string, withPath bool) error {
	if raw == "" {
		return errors.New("required")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch {
	case u.User != nil:
		return errors.New("must not contain user info")
	case u.RawQuery != "" || u.ForceQuery:
		return errors.New("must not have a query")
	case u.Fragment != "":
		return errors.New("must not have a fragment")
	case u.Scheme == "https":
	case u.Scheme == "http" && config.IsLoopbackHost(u.Hostname()):
	case u.Scheme == "http":
		return fmt.Errorf("%q must be https (http only on loopback)", raw)
	default:
		return fmt.Errorf("%q must be an https URL", raw)
	}
	if withPath && (u.Path == "" || u.Path == "/") {
		return fmt.Errorf("%q needs a path, like /auth/oidc/callback", raw)
	}
	return nil
}

// validDomain accepts lower-case DNS names with at least one dot.
func validDomain(d string) bool {
	if len(d) < 3 || len(d) > 253 || !strings.Contains(d, ".") || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}
