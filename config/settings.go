package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Settings are the deployment settings read from the environment. The
// defaults are the contract's (DESIGN 1.3).
type Settings struct {
	Addr           string         // TICKGATE_ADDR
	AdminAddr      string         // TICKGATE_ADMIN_ADDR; empty disables
	ConfigFile     string         // TICKGATE_CONFIG; empty means demo mode
	PublicOrigins  []string       // TICKGATE_PUBLIC_ORIGIN; derived from Addr when unset
	TLSCert        string         // TICKGATE_TLS_CERT
	TLSKey         string         // TICKGATE_TLS_KEY
	RedirectAddr   string         // TICKGATE_REDIRECT_ADDR
	TrustedProxies []netip.Prefix // TICKGATE_TRUSTED_PROXIES
	InsecureHTTP   bool           // TICKGATE_INSECURE_HTTP: plain HTTP on any address (development only)
	UpstreamCAFile string         // TICKGATE_UPSTREAM_CA_FILE: PEM CAs trusted for vendors, besides the system roots
	Secrets        string         // TICKGATE_SECRETS: env or aws
	AWSSecretID    string         // TICKGATE_AWS_SECRET_ID
	SecretRefresh  time.Duration  // TICKGATE_SECRET_REFRESH
	SecretMaxAge   time.Duration  // TICKGATE_SECRET_MAX_AGE: 0 disables the key-age warning
	SessionStore   string         // TICKGATE_SESSION_STORE: memory or redis
	RedisURL       string         // TICKGATE_REDIS_URL
	RedisPrefix    string         // TICKGATE_REDIS_PREFIX: starts every Redis key and channel
	LimitStore     string         // TICKGATE_LIMIT_STORE: memory or redis
	SessionIdle    time.Duration  // TICKGATE_SESSION_IDLE
	SessionMax     time.Duration  // TICKGATE_SESSION_MAX
	Users          string         // TICKGATE_USERS: name:hash pairs
	UsersFile      string         // TICKGATE_USERS_FILE
	LimitIP        Limit          // TICKGATE_LIMIT_IP
	LimitSession   Limit          // TICKGATE_LIMIT_SESSION
	LimitLogin     Limit          // TICKGATE_LIMIT_LOGIN
	WSMaxSymbols   int            // TICKGATE_WS_MAX_SYMBOLS
	WSMaxConns     int            // TICKGATE_WS_MAX_CONNS
	LogFormat      string         // TICKGATE_LOG_FORMAT: text or json; empty means decide by terminal
	LogLevel       string         // TICKGATE_LOG_LEVEL
	OIDC           OIDCSettings   // TICKGATE_OIDC_*: login through an OpenID Connect provider

	// UserNetworks are the per-user IP allowlists (TICKGATE_USER_NETWORKS):
	// user → networks its requests must come from. Users not listed are
	// not restricted.
	UserNetworks map[string][]netip.Prefix

	// Anomaly holds the thresholds of the anomaly signals (TICKGATE_ANOMALY_*).
	Anomaly AnomalySettings

	DemoPassword  string // TICKGATE_DEMO_PASSWORD (a credential: never log it)
	DemoVendorURL string // TICKGATE_DEMO_VENDOR_URL
	DemoPublic    bool   // TICKGATE_DEMO_PUBLIC: demo mode on a non-loopback address

	originsDerived bool
}

// Variable describes one environment variable for .env.example and docs.
type Variable struct {
	Name, Default, Meaning string
}

// Variables lists every variable FromEnv reads, with its default.
var variables = []Variable{
	{"TICKGATE_ADDR", "127.0.0.1:8080", "listen address"},
	{"TICKGATE_ADMIN_ADDR", "127.0.0.1:9090", "metrics / pprof listener; empty disables"},
	{"TICKGATE_CONFIG", "", "upstream/feed/limits YAML file; unset means demo mode"},
	{"TICKGATE_PUBLIC_ORIGIN", "", "origin(s) browsers use, comma separated; derived from TICKGATE_ADDR when unset"},
	{"TICKGATE_TLS_CERT", "", "PEM certificate file; with TICKGATE_TLS_KEY serves HTTPS"},
	{"TICKGATE_TLS_KEY", "", "PEM key file"},
	{"TICKGATE_REDIRECT_ADDR", "", "also listen here and redirect HTTP to HTTPS"},
	{"TICKGATE_TRUSTED_PROXIES", "", "CIDRs whose X-Forwarded-For / -Proto are believed"},
	{"TICKGATE_INSECURE_HTTP", "0", "1 allows plain HTTP on a non-loopback address without a TLS proxy: local network development only, logged loudly"},
	{"TICKGATE_UPSTREAM_CA_FILE", "", "PEM file of CA certificates trusted for vendor connections in addition to the system roots (a TLS-inspecting corporate proxy)"},
	{"TICKGATE_SECRETS", "env", "secrets provider: env or aws"},
	{"TICKGATE_AWS_SECRET_ID", "", "Secrets Manager secret (JSON name -> value) when TICKGATE_SECRETS=aws"},
	{"TICKGATE_SECRET_REFRESH", "5m", "how often secrets are re-read"},
	{"TICKGATE_SECRET_MAX_AGE", "90d", "warn (log, /readyz detail) when a Secrets Manager key version is older than this, or within 14 days of it; Nd or a Go duration, 0 disables"},
	{"TICKGATE_SESSION_STORE", "memory", "session store: memory or redis"},
	{"TICKGATE_REDIS_URL", "", "e.g. redis://127.0.0.1:6379/0"},
	{"TICKGATE_REDIS_PREFIX", "tickgate:", "starts every Redis key and pub/sub channel; distinct per deployment sharing a Redis server"},
	{"TICKGATE_LIMIT_STORE", "memory", "rate-limit and upstream budget store: memory (one process) or redis (limits and budgets shared by replicas)"},
	{"TICKGATE_SESSION_IDLE", "30m", "inactivity expiry"},
	{"TICKGATE_SESSION_MAX", "12h", "absolute session lifetime"},
	{"TICKGATE_USERS", "", "name:argon2id-hash pairs, comma separated; name:hash:role1|role2 gives roles"},
	{"TICKGATE_USERS_FILE", "", "file with one name:argon2id-hash[:roles] per line"},
	{"TICKGATE_USER_NETWORKS", "", "per-user IP allowlists: user=cidr|cidr;user2=cidr (others unrestricted); 403 forbidden_network"},
	{"TICKGATE_LIMIT_IP", "100/1s", "requests per client IP (N/duration[,M/duration])"},
	{"TICKGATE_LIMIT_SESSION", "50/1s", "requests per session"},
	{"TICKGATE_LIMIT_LOGIN", "5/1m", "login attempts per IP and per username"},
	{"TICKGATE_WS_MAX_SYMBOLS", "50", "symbols per session across its sockets"},
	{"TICKGATE_WS_MAX_CONNS", "5", "concurrent sockets per session"},
	{"TICKGATE_LOG_FORMAT", "", "text or json; default text on a terminal, else json"},
	{"TICKGATE_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"TICKGATE_ANOMALY_WINDOW", "1m", "window of the anomaly signals: a client crossing a threshold below within it is logged (audit) and counted"},
	{"TICKGATE_ANOMALY_UNAUTHORIZED", "20", "401 answers to one client IP or user per window; 0 off"},
	{"TICKGATE_ANOMALY_RATE_LIMITED", "50", "429 answers to one client IP or user per window; 0 off"},
	{"TICKGATE_ANOMALY_LOGIN_FAILURES", "10", "failed logins from one client IP per window; 0 off"},
	{"TICKGATE_ANOMALY_WS_CONNECTS", "30", "WebSocket connects by one client IP or user per window (reconnect storms); 0 off"},
	{"TICKGATE_DEMO_PASSWORD", "", "demo mode: password of user demo; random when unset"},
	{"TICKGATE_DEMO_KEY", "", "demo mode: the simulated vendor's key (a secret, read through TICKGATE_SECRETS); random when unset"},
	{"TICKGATE_DEMO_VENDOR_URL", "", "demo mode: use this running marketsim instead of starting one"},
	{"TICKGATE_DEMO_PUBLIC", "0", "1 lets demo mode listen on a non-loopback address (its user and key are for trying tickgate out; logged loudly)"},
	{"TICKGATE_OIDC_ISSUER", "", "OpenID Connect provider's issuer URL; set: login through that provider is on (GET /auth/oidc/login)"},
	{"TICKGATE_OIDC_CLIENT_ID", "", "the client registered at the provider for tickgate"},
	{"TICKGATE_OIDC_CLIENT_SECRET", "", "the NAME of the secret holding the client secret, read through TICKGATE_SECRETS (never the secret itself)"},
	{"TICKGATE_OIDC_REDIRECT_URL", "", "redirect URL registered at the provider; default: the first public origin + /auth/oidc/callback"},
	{"TICKGATE_OIDC_SCOPES", "openid profile email", "scopes requested, space or comma separated; must include openid"},
	{"TICKGATE_OIDC_USERNAME_CLAIM", "email", "ID token claim that becomes the tickgate user name (email needs email_verified)"},
	{"TICKGATE_OIDC_ROLES_CLAIM", "", "ID token claim holding the user's roles (array or space/comma separated string; dotted path for nested claims); empty: OIDC users get no roles"},
	{"TICKGATE_OIDC_ALLOWED_USERS", "", "user names (claim values) that may log in, comma separated"},
	{"TICKGATE_OIDC_ALLOWED_DOMAINS", "", "email domains whose verified users may log in, comma separated"},
	{"TICKGATE_OIDC_ALLOW_ANY_USER", "0", "1 lets in every user the provider authenticates for the client (only when the provider itself limits who may use it)"},
	{"TICKGATE_ENV_FILE", ".env", "file loaded before reading the environment; never overrides it"},
}

// Variables returns the documented environment variables.
func Variables() []Variable { return append([]Variable(nil), variables...) }

// FromEnv reads and validates the settings through lookupEnv (os.LookupEnv
// in the program). The error lists every problem, one per line.
func FromEnv(lookupEnv func(string) (string, bool)) (Settings, error) {
	getenv := func(name string) string { v, _ := lookupEnv(name); return v }
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		for _, v := range variables {
			if v.Name == name {
				return v.Default
			}
		}
		return ""
	}
	var p Problems
	s := Settings{
		Addr:          get("TICKGATE_ADDR"),
		ConfigFile:    get("TICKGATE_CONFIG"),
		TLSCert:       get("TICKGATE_TLS_CERT"),
		TLSKey:        get("TICKGATE_TLS_KEY"),
		RedirectAddr:  get("TICKGATE_REDIRECT_ADDR"),
		Secrets:       get("TICKGATE_SECRETS"),
		AWSSecretID:   get("TICKGATE_AWS_SECRET_ID"),
		SessionStore:  get("TICKGATE_SESSION_STORE"),
		RedisURL:      get("TICKGATE_REDIS_URL"),
		RedisPrefix:   get("TICKGATE_REDIS_PREFIX"),
		LimitStore:    get("TICKGATE_LIMIT_STORE"),
		Users:         get("TICKGATE_USERS"),
		UsersFile:     get("TICKGATE_USERS_FILE"),
		LogFormat:     get("TICKGATE_LOG_FORMAT"),
		LogLevel:      get("TICKGATE_LOG_LEVEL"),
		DemoPassword:  getenv("TICKGATE_DEMO_PASSWORD"),
		DemoVendorURL: get("TICKGATE_DEMO_VENDOR_URL"),
	}
	s.UpstreamCAFile = get("TICKGATE_UPSTREAM_CA_FILE")
	// An explicitly empty admin address disables the admin listener.
	if v, ok := lookupEnv("TICKGATE_ADMIN_ADDR"); ok {
		s.AdminAddr = strings.TrimSpace(v)
	} else {
		s.AdminAddr = get("TICKGATE_ADMIN_ADDR")
	}

	checkAddr := func(name, v string, required bool) {
		if v == "" {
			if required {
				p.Addf("%s: must not be empty", name)
			}
			return
		}
		if _, port, err := net.SplitHostPort(v); err != nil {
			p.Addf("%s: %q is not host:port", name, v)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			p.Addf("%s: %q has an invalid port", name, v)
		}
	}
	checkAddr("TICKGATE_ADDR", s.Addr, true)
	switch v := get("TICKGATE_DEMO_PUBLIC"); v {
	case "0":
	case "1":
		s.DemoPublic = true
	default:
		p.Addf("TICKGATE_DEMO_PUBLIC: %q is not 0 or 1", v)
	}
	switch v := get("TICKGATE_INSECURE_HTTP"); v {
	case "0":
	case "1":
		s.InsecureHTTP = true
	default:
		p.Addf("TICKGATE_INSECURE_HTTP: %q is not 0 or 1", v)
	}
	checkAddr("TICKGATE_ADMIN_ADDR", s.AdminAddr, false)
	checkAddr("TICKGATE_REDIRECT_ADDR", s.RedirectAddr, false)

	if (s.TLSCert == "") != (s.TLSKey == "") {
		p.Addf("TICKGATE_TLS_CERT and TICKGATE_TLS_KEY: set both or neither")
	}
	if s.RedirectAddr != "" && s.TLSCert == "" {
		p.Addf("TICKGATE_REDIRECT_ADDR: needs TICKGATE_TLS_CERT and TICKGATE_TLS_KEY (it redirects to HTTPS)")
	}

	if v := get("TICKGATE_PUBLIC_ORIGIN"); v != "" {
		for _, o := range strings.Split(v, ",") {
			o = strings.TrimSpace(o)
			if o == "" {
				continue
			}
			norm, err := NormalizeOrigin(o)
			if err != nil {
				p.Addf("TICKGATE_PUBLIC_ORIGIN: %v", err)
				continue
			}
			s.PublicOrigins = append(s.PublicOrigins, norm)
		}
	}

	if v := get("TICKGATE_TRUSTED_PROXIES"); v != "" {
		for _, c := range strings.Split(v, ",") {
			c = strings.TrimSpace(c)
			if c == "" {
				continue
			}
			// ParseCIDR takes IPv4-mapped networks as the IPv4 ones
			// they map (client addresses are compared unmapped).
			pfx, err := ParseCIDR(c)
			if err != nil {
				p.Addf("TICKGATE_TRUSTED_PROXIES: %v", err)
				continue
			}
			s.TrustedProxies = append(s.TrustedProxies, pfx)
		}
	}

	switch s.Secrets {
	case "env":
	case "aws":
		// TICKGATE_AWS_SECRET_ID may be left out when every key names a
		// secret of its own in the YAML (aws_secret); the loader checks.
	default:
		p.Addf("TICKGATE_SECRETS: %q is not env or aws", s.Secrets)
	}

	duration := func(name string, min time.Duration) time.Duration {
		v := get(name)
		d, err := time.ParseDuration(v)
		if err != nil {
			p.Addf("%s: %q is not a duration (e.g. 30m, 12h)", name, v)
			return 0
		}
		if d < min {
			p.Addf("%s: %s is shorter than the minimum %s", name, d, min)
		}
		return d
	}
	s.SecretRefresh = duration("TICKGATE_SECRET_REFRESH", 10*time.Second)
	if v := get("TICKGATE_SECRET_MAX_AGE"); v != "0" {
		d, err := parseDays(v)
		if err != nil || d < 24*time.Hour {
			p.Addf("TICKGATE_SECRET_MAX_AGE: %q is not a number of days (90d), a duration of at least 24h, or 0", v)
		}
		s.SecretMaxAge = d
	}
	s.SessionIdle = duration("TICKGATE_SESSION_IDLE", time.Second)
	s.SessionMax = duration("TICKGATE_SESSION_MAX", time.Second)
	if s.SessionIdle > 0 && s.SessionMax > 0 && s.SessionIdle > s.SessionMax {
		p.Addf("TICKGATE_SESSION_IDLE: %s is longer than TICKGATE_SESSION_MAX %s", s.SessionIdle, s.SessionMax)
	}

	switch s.SessionStore {
	case "memory":
	case "redis":
		if s.RedisURL == "" {
			p.Addf("TICKGATE_REDIS_URL: required when TICKGATE_SESSION_STORE=redis")
		}
	default:
		p.Addf("TICKGATE_SESSION_STORE: %q is not memory or redis", s.SessionStore)
	}
	switch s.LimitStore {
	case "memory":
	case "redis":
		if s.RedisURL == "" {
			p.Addf("TICKGATE_REDIS_URL: required when TICKGATE_LIMIT_STORE=redis")
		}
	default:
		p.Addf("TICKGATE_LIMIT_STORE: %q is not memory or redis", s.LimitStore)
	}
	if s.RedisURL != "" {
		if u, err := url.Parse(s.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			p.Addf("TICKGATE_REDIS_URL: not a redis:// or rediss:// URL")
		}
	}
	if s.Users != "" && s.UsersFile != "" {
		p.Addf("TICKGATE_USERS and TICKGATE_USERS_FILE: set one, not both")
	}

	limit := func(name string) Limit {
		l, err := ParseLimit(get(name))
		if err != nil {
			p.Addf("%s: %v", name, err)
		}
		return l
	}
	s.LimitIP = limit("TICKGATE_LIMIT_IP")
	s.LimitSession = limit("TICKGATE_LIMIT_SESSION")
	s.LimitLogin = limit("TICKGATE_LIMIT_LOGIN")

	positive := func(name string, max int) int {
		v := get(name)
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			p.Addf("%s: %q is not a whole number from 1 to %d", name, v, max)
		}
		return n
	}
	s.WSMaxSymbols = positive("TICKGATE_WS_MAX_SYMBOLS", 10000)
	s.WSMaxConns = positive("TICKGATE_WS_MAX_CONNS", 1000)

	switch s.LogFormat {
	case "", "text", "json":
	default:
		p.Addf("TICKGATE_LOG_FORMAT: %q is not text or json", s.LogFormat)
	}
	switch strings.ToLower(s.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		p.Addf("TICKGATE_LOG_LEVEL: %q is not debug, info, warn or error", s.LogLevel)
	}
	if s.DemoVendorURL != "" {
		if u, err := url.Parse(s.DemoVendorURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Addf("TICKGATE_DEMO_VENDOR_URL: %q is not an http(s) URL", s.DemoVendorURL)
		}
	}

	s.OIDC = oidcFromEnv(get, s.PublicOrigins, &p)
	if v := get("TICKGATE_USER_NETWORKS"); v != "" {
		nets, err := ParseUserNetworks(v)
		if err != nil {
			p.Addf("TICKGATE_USER_NETWORKS: %v", err)
		}
		s.UserNetworks = nets
	}
	s.Anomaly = anomalyFromEnv(get, &p)

	if len(s.PublicOrigins) == 0 && p.Err() == nil {
		// Derived origins are right only when browsers reach tickgate at
		// its own address: on loopback. Elsewhere (0.0.0.0, a VPC address
		// behind a load balancer) browsers use a name tickgate cannot
		// know, and every login would fail the Origin check.
		if host, _, _ := net.SplitHostPort(s.Addr); !IsLoopbackHost(host) {
			p.Addf("TICKGATE_PUBLIC_ORIGIN: required when TICKGATE_ADDR %q is not a loopback address: the origin browsers use, e.g. https://app.example.com (logins and WebSockets are checked against it)", s.Addr)
		} else {
			s.PublicOrigins = s.derivedOrigins()
			s.originsDerived = true
		}
	}
	return s, p.Err()
}

// WithListenAddr returns s listening on addr (the address actually bound,
// e.g. after port 0), re-deriving the public origin unless it was set.
func (s Settings) WithListenAddr(addr string) Settings {
	s.Addr = addr
	if s.originsDerived {
		s.PublicOrigins = s.derivedOrigins()
	}
	return s
}

// PlainHTTPAllowed reports whether serving without TLS is acceptable: on
// a loopback address, behind trusted proxies that terminate TLS, or when
// TICKGATE_INSECURE_HTTP=1 says so (see PlainHTTPExposed).
func (s Settings) PlainHTTPAllowed() bool {
	return !s.plainHTTPOffLoopback() || s.InsecureHTTP
}

// PlainHTTPExposed reports whether TICKGATE_INSECURE_HTTP=1 is what lets
// tickgate serve plain HTTP: sessions and passwords then cross the
// network in clear, which start-up logs loudly.
func (s Settings) PlainHTTPExposed() bool {
	return s.InsecureHTTP && s.plainHTTPOffLoopback()
}

func (s Settings) plainHTTPOffLoopback() bool {
	host, _, _ := net.SplitHostPort(s.Addr)
	return !s.TLS() && !IsLoopbackHost(host) && len(s.TrustedProxies) == 0
}

// TLS reports whether the server itself terminates TLS.
func (s Settings) TLS() bool { return s.TLSCert != "" }

// derivedOrigins are the origins a browser uses to reach Addr: the first
// is the URL tickgate prints. A loopback address is also reachable as
// localhost, and localhost as 127.0.0.1.
func (s Settings) derivedOrigins() []string {
	scheme := "http"
	if s.TLS() {
		scheme = "https"
	}
	host, port, _ := net.SplitHostPort(s.Addr)
	switch host {
	case "", "0.0.0.0", "::":
		host = "localhost"
	}
	origin := func(host string) string {
		if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() {
			host = "[" + host + "]"
		}
		if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
			return scheme + "://" + host
		}
		return scheme + "://" + host + ":" + port
	}
	out := []string{origin(host)}
	switch {
	case host == "localhost":
		out = append(out, origin("127.0.0.1"))
	case IsLoopbackHost(host):
		out = append(out, origin("localhost"))
	}
	return out
}

// NormalizeOrigin returns an origin's canonical form, lower-case
// scheme://host[:port] without a default port, so that configured origins
// and Origin headers compare as strings. Anything but an http(s) origin is
// an error.
func NormalizeOrigin(o string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("%q is not an origin like https://app.example.com", o)
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if p := u.Port(); (scheme == "https" && p == "443") || (scheme == "http" && p == "80") {
		host = strings.ToLower(u.Hostname())
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return scheme + "://" + host, nil
}

// parseDays reads "90d" as days, anything else as a Go duration.
func parseDays(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return 0, err
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

// OIDCCallbackPath is the route of the OpenID Connect callback, the path
// of every TICKGATE_OIDC_REDIRECT_URL.
const OIDCCallbackPath = "/auth/oidc/callback"

// OIDCSettings configure login through an OpenID Connect provider
// (package session/oidc). It is on when Issuer is set.
type OIDCSettings struct {
	Issuer   string // TICKGATE_OIDC_ISSUER
	ClientID string // TICKGATE_OIDC_CLIENT_ID
	// ClientSecret is the name of the secret (TICKGATE_SECRETS provider)
	// holding the client secret, never the secret itself.
	ClientSecret   string   // TICKGATE_OIDC_CLIENT_SECRET
	RedirectURL    string   // TICKGATE_OIDC_REDIRECT_URL; empty: see Settings.OIDCRedirectURL
	Scopes         []string // TICKGATE_OIDC_SCOPES
	UsernameClaim  string   // TICKGATE_OIDC_USERNAME_CLAIM
	RolesClaim     string   // TICKGATE_OIDC_ROLES_CLAIM
	AllowedUsers   []string // TICKGATE_OIDC_ALLOWED_USERS
	AllowedDomains []string // TICKGATE_OIDC_ALLOWED_DOMAINS
	AllowAnyUser   bool     // TICKGATE_OIDC_ALLOW_ANY_USER
}

// Enabled reports whether OIDC login is configured.
func (o OIDCSettings) Enabled() bool { return o.Issuer != "" }

// OIDCRedirectURL is TICKGATE_OIDC_REDIRECT_URL, or the first public
// origin followed by OIDCCallbackPath.
func (s Settings) OIDCRedirectURL() string {
	if s.OIDC.RedirectURL != "" || len(s.PublicOrigins) == 0 {
		return s.OIDC.RedirectURL
	}
	return strings.TrimSuffix(s.PublicOrigins[0], "/") + OIDCCallbackPath
}

// secretNameRE is what TICKGATE_OIDC_CLIENT_SECRET must look like: an
// environment variable name in upper case. Mixed-case random strings (real
// client secrets pasted by mistake) are refused without being echoed.
var secretNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,127}$`)

// oidcFromEnv reads and checks the TICKGATE_OIDC_* settings. origins are
// the configured public origins (nil when derived).
func oidcFromEnv(get func(string) string, origins []string, p *Problems) OIDCSettings {
	list := func(name string) []string {
		return strings.FieldsFunc(get(name), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	}
	o := OIDCSettings{
		Issuer:         get("TICKGATE_OIDC_ISSUER"),
		ClientID:       get("TICKGATE_OIDC_CLIENT_ID"),
		ClientSecret:   get("TICKGATE_OIDC_CLIENT_SECRET"),
		RedirectURL:    get("TICKGATE_OIDC_REDIRECT_URL"),
		Scopes:         list("TICKGATE_OIDC_SCOPES"),
		UsernameClaim:  get("TICKGATE_OIDC_USERNAME_CLAIM"),
		RolesClaim:     get("TICKGATE_OIDC_ROLES_CLAIM"),
		AllowedUsers:   list("TICKGATE_OIDC_ALLOWED_USERS"),
		AllowedDomains: list("TICKGATE_OIDC_ALLOWED_DOMAINS"),
	}
	switch v := get("TICKGATE_OIDC_ALLOW_ANY_USER"); v {
	case "0":
	case "1":
		o.AllowAnyUser = true
	default:
		p.Addf("TICKGATE_OIDC_ALLOW_ANY_USER: %q is not 0 or 1", v)
	}
	if !o.Enabled() {
		var set []string
		for name, v := range map[string]bool{
			"TICKGATE_OIDC_CLIENT_ID": o.ClientID != "", "TICKGATE_OIDC_CLIENT_SECRET": o.ClientSecret != "",
			"TICKGATE_OIDC_REDIRECT_URL": o.RedirectURL != "", "TICKGATE_OIDC_ALLOWED_USERS": len(o.AllowedUsers) > 0,
			"TICKGATE_OIDC_ALLOWED_DOMAINS": len(o.AllowedDomains) > 0, "TICKGATE_OIDC_ALLOW_ANY_USER": o.AllowAnyUser,
		} {
			if v {
				set = append(set, name)
			}
		}
		if len(set) > 0 {
			sort.Strings(set)
			p.Addf("TICKGATE_OIDC_ISSUER: required when other OIDC settings are set (%s)", strings.Join(set, ", "))
		}
		return OIDCSettings{}
	}
	if err := checkOIDCURL(o.Issuer); err != nil {
		p.Addf("TICKGATE_OIDC_ISSUER: %v", err)
	}
	if len(o.AllowedDomains) > 0 && o.UsernameClaim != "email" {
		// Domain admission checks the verified email; a name from another
		// claim (preferred_username, which some providers let users edit)
		// could be anyone's, a local user's included.
		p.Addf("TICKGATE_OIDC_USERNAME_CLAIM: must be email when TICKGATE_OIDC_ALLOWED_DOMAINS admits users (it is %q): the name must be the verified address the domain was checked on", o.UsernameClaim)
	}
	if o.ClientID == "" {
		p.Addf("TICKGATE_OIDC_CLIENT_ID: required with TICKGATE_OIDC_ISSUER")
	}
	switch {
	case o.ClientSecret == "":
		p.Addf("TICKGATE_OIDC_CLIENT_SECRET: required with TICKGATE_OIDC_ISSUER: the name of the secret holding the client secret (e.g. OIDC_CLIENT_SECRET)")
	case !secretNameRE.MatchString(o.ClientSecret):
		p.Addf("TICKGATE_OIDC_CLIENT_SECRET: must name a secret (upper case letters, digits and _, e.g. OIDC_CLIENT_SECRET) whose value the secrets provider holds, not be the client secret itself (value not shown)")
		o.ClientSecret = ""
	}
	if o.RedirectURL != "" {
		if err := checkOIDCURL(o.RedirectURL); err != nil {
			p.Addf("TICKGATE_OIDC_REDIRECT_URL: %v", err)
		} else if u, _ := url.Parse(o.RedirectURL); u.Path != OIDCCallbackPath {
			p.Addf("TICKGATE_OIDC_REDIRECT_URL: the path must be %s, the route tickgate serves the callback on", OIDCCallbackPath)
		} else if origin, err := NormalizeOrigin(u.Scheme + "://" + u.Host); err == nil && len(origins) > 0 && !slices.Contains(origins, origin) {
			p.Addf("TICKGATE_OIDC_REDIRECT_URL: origin %s is not one of TICKGATE_PUBLIC_ORIGIN (the login's state cookie would not come back)", origin)
		}
	}
	if !slices.Contains(o.Scopes, "openid") {
		p.Addf("TICKGATE_OIDC_SCOPES: must include openid")
	}
	for _, u := range o.AllowedUsers {
		if len(u) > 64 || strings.IndexFunc(u, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r))
		}) >= 0 {
			p.Addf("TICKGATE_OIDC_ALLOWED_USERS: %q is not a user name (1-64 of A-Z a-z 0-9 . _ @ -)", u)
		}
	}
	for _, d := range o.AllowedDomains {
		if d = strings.TrimPrefix(d, "@"); !strings.Contains(d, ".") || strings.ContainsAny(d, "/:@") {
			p.Addf("TICKGATE_OIDC_ALLOWED_DOMAINS: %q is not a domain like example.com", d)
		}
	}
	if len(o.AllowedUsers) == 0 && len(o.AllowedDomains) == 0 && !o.AllowAnyUser {
		p.Addf("TICKGATE_OIDC_ALLOWED_USERS: nobody may log in through OIDC; set TICKGATE_OIDC_ALLOWED_USERS or TICKGATE_OIDC_ALLOWED_DOMAINS, or TICKGATE_OIDC_ALLOW_ANY_USER=1 when the provider itself limits who may use the client")
	}
	return o
}

// checkOIDCURL accepts an absolute https URL (http only on loopback)
// without user info, query or fragment.
func checkOIDCURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return fmt.Errorf("%q is not an absolute URL", raw)
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Errorf("%q must not have user info, a query or a fragment", raw)
	case u.Scheme == "https":
	case u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
	default:
		return fmt.Errorf("%q must be https (http only on loopback)", raw)
	}
	return nil
}
