package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/metrics"
)

// Cookie names (DESIGN 1.4). The __Host- prefix makes browsers refuse the
// cookie unless it is Secure, has Path=/ and no Domain, so a sibling
// subdomain cannot plant or overwrite it (RFC 6265bis §4.1.3.2).
const (
	CookieName       = "tickgate"
	SecureCookieName = "__Host-tickgate"
)

// Defaults for zero Config fields.
const (
	DefaultIdle          = 30 * time.Minute
	DefaultMax           = 12 * time.Hour
	DefaultCheckInterval = time.Second
)

const (
	idBytes         = 32                  // 256-bit session ids
	idLen           = (idBytes*8 + 5) / 6 // base64url characters, no padding
	storeOpTimeout  = 5 * time.Second     // bound on a background store call
	storeRetryAfter = 2                   // seconds, on 503 session_store_unavailable
)

// LoginLimiter throttles login attempts (guard.LoginLimiter implements it).
type LoginLimiter interface {
	// AllowLogin spends one attempt for the client IP and the user name;
	// when refused, retryAfter says when to try again.
	AllowLogin(ctx context.Context, ip, user string) (ok bool, retryAfter time.Duration)
}

// Config configures a Manager. Zero values are the documented defaults,
// except Store, Users and AllowedOrigins, which are required.
type Config struct {
	// Store keeps the session records. The Manager does not close it.
	Store Store
	// Events carries session-end announcements between replicas sharing
	// Store (the Redis store's pub/sub), so that logout, revocation and
	// expiry close the session's WebSockets on every replica within
	// moments. nil: a single process, or replicas that rely on their
	// periodic check alone (within CheckInterval). NewManager subscribes
	// (waiting for the bus to confirm, within its own timeout) and Close
	// unsubscribes; close the Manager before the Events' owner.
	Events Events
	// Users are the accounts Login checks.
	Users *Users
	// AllowedOrigins are the origins (scheme://host[:port]) browsers use
	// (TICKGATE_PUBLIC_ORIGIN). A state-changing request carrying an
	// Origin header outside this list is refused with 403 csrf.
	AllowedOrigins []string

	// Idle is the inactivity timeout (default 30m); Max the absolute
	// lifetime (default 12h).
	Idle, Max time.Duration

	// Secure reports whether the browser talks HTTPS to us (own TLS, or a
	// trusted proxy said so). It picks the cookie: __Host-tickgate with
	// Secure, or tickgate without. Default: r.TLS != nil.
	Secure func(r *http.Request) bool
	// ClientIP gives the client address for login throttling and logs.
	// Default: the host of r.RemoteAddr.
	ClientIP func(r *http.Request) string
	// Passive reports requests that read the session without counting as
	// activity, so a page polling its expiry does not keep itself alive.
	// Default: GET or HEAD of exactly /auth/session.
	Passive func(r *http.Request) bool
	// LoginLimiter throttles logins; nil means no limit.
	LoginLimiter LoginLimiter
	// AuthorizeLogin, when set, may refuse a user whose credentials
	// were accepted (password or OIDC) before any session starts, e.g.
	// from outside the user's IP allowlist. A non-nil error is the
	// answer: an *apierr.Error (403 forbidden_network) is written as is.
	AuthorizeLogin func(r *http.Request, user string) error
	// LoginBackoffFree is how many failed logins in a row a client IP or
	// a user name gets before each further failure doubles the wait
	// before its next attempt (429 too_many_attempts with Retry-After),
	// from LoginBackoff up to LoginBackoffMax; a successful login clears
	// the user name's. Defaults 3, 1s and 5m; a negative LoginBackoff
	// disables the growing delay (the LoginLimiter's window remains).
	// Kept per process.
	LoginBackoffFree              int
	LoginBackoff, LoginBackoffMax time.Duration
	// MaxConcurrentLogins bounds simultaneous password verifications
	// (each argon2id run takes ~19 MiB). Default: GOMAXPROCS.
	MaxConcurrentLogins int

	// TouchEvery throttles idle-deadline writes: activity is written to
	// the store only when the stored LastSeen is at least this old.
	// Default Idle/60, at least 1s; must be below Idle.
	TouchEvery time.Duration
	// CheckInterval is how often watched sessions are checked for expiry
	// and revocation (default 1s).
	CheckInterval time.Duration

	Logger  *slog.Logger     // default: discard
	Metrics *metrics.Metrics // default: metrics.Discard()
	Now     func() time.Time // default: time.Now
}

// Manager issues, checks and ends browser sessions: cookies, idle and
// absolute expiry, login and logout handlers, and watches that tell
// long-lived connections when their session ends.
type Manager struct {
	store         Store
	events        Events
	users         *Users
	origins       map[string]bool
	idle, max     time.Duration
	touchEvery    time.Duration
	checkInterval time.Duration
	secure        func(*http.Request) bool
	clientIP      func(*http.Request) string
	passive       func(*http.Request) bool
	limiter       LoginLimiter
	authorize     func(r *http.Request, user string) error
	backoff       *backoff // nil: disabled
	loginSem      chan struct{}
	log           *slog.Logger
	met           *metrics.Metrics
	now           func() time.Time

	mu      sync.Mutex
	watches map[string]*watchEntry
	closed  bool

	cancel     context.CancelFunc
	done       chan struct{}
	stopEvents func()
	closeOnce  sync.Once
}

// NewManager validates cfg, subscribes to cfg.Events if set, and starts the
// goroutine that checks watched sessions; Close stops both.
func NewManager(cfg Config) (*Manager, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if cfg.Store == nil {
		bad("Store is required")
	}
	if cfg.Users == nil {
		bad("Users is required")
	}
	if cfg.Idle == 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.Max == 0 {
		cfg.Max = DefaultMax
	}
	if cfg.Idle < 0 || cfg.Max < 0 {
		bad("Idle and Max must be positive")
	}
	if cfg.Max > 0 && cfg.Max < time.Second {
		bad("Max must be at least 1s")
	}
	if cfg.TouchEvery == 0 {
		cfg.TouchEvery = max(cfg.Idle/60, time.Second)
	}
	if cfg.TouchEvery < 0 || cfg.TouchEvery >= cfg.Idle {
		bad("TouchEvery must be positive and below Idle")
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.CheckInterval < 0 {
		bad("CheckInterval must be positive")
	}
	if cfg.MaxConcurrentLogins == 0 {
		cfg.MaxConcurrentLogins = runtime.GOMAXPROCS(0)
	}
	if cfg.MaxConcurrentLogins < 0 {
		bad("MaxConcurrentLogins must be positive")
	}
	if cfg.LoginBackoffFree == 0 {
		cfg.LoginBackoffFree = DefaultLoginBackoffFree
	}
	if cfg.LoginBackoff == 0 {
		cfg.LoginBackoff = DefaultLoginBackoff
	}
	if cfg.LoginBackoffMax == 0 {
		cfg.LoginBackoffMax = DefaultLoginBackoffMax
	}
	if cfg.LoginBackoffFree < 0 || (cfg.LoginBackoff > 0 && cfg.LoginBackoffMax < cfg.LoginBackoff) {
		bad("LoginBackoffFree must not be negative, and LoginBackoffMax not below LoginBackoff")
	}
	origins := map[string]bool{}
	for _, o := range cfg.AllowedOrigins {
		n, err := config.NormalizeOrigin(o)
		if err != nil {
			bad("AllowedOrigins: %v", err)
			continue
		}
		origins[n] = true
	}
	if len(cfg.AllowedOrigins) == 0 {
		bad("AllowedOrigins is required (the origins browsers use, e.g. https://app.example.com)")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Secure == nil {
		cfg.Secure = func(r *http.Request) bool { return r.TLS != nil }
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteHost
	}
	if cfg.Passive == nil {
		cfg.Passive = isSessionInfo
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
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		store:         cfg.Store,
		events:        cfg.Events,
		users:         cfg.Users,
		origins:       origins,
		idle:          cfg.Idle,
		max:           cfg.Max,
		touchEvery:    cfg.TouchEvery,
		checkInterval: cfg.CheckInterval,
		secure:        cfg.Secure,
		clientIP:      cfg.ClientIP,
		passive:       cfg.Passive,
		limiter:       cfg.LoginLimiter,
		authorize:     cfg.AuthorizeLogin,
		backoff:       loginBackoff(cfg),
		loginSem:      make(chan struct{}, cfg.MaxConcurrentLogins),
		log:           cfg.Logger,
		met:           cfg.Metrics,
		now:           cfg.Now,
		watches:       map[string]*watchEntry{},
		cancel:        cancel,
		done:          make(chan struct{}),
	}
	if m.events != nil {
		m.stopEvents = m.events.Subscribe(ctx, m.onEvent)
	}
	go m.run(ctx)
	return m, nil
}

// Close unsubscribes from Events and stops the watch checker, waiting for
// both. It closes neither the Store nor the Events (close those after the
// Manager), and leaves open watches alone (shutdown closes their
// connections with its own code); Watch after Close returns an ended
// channel. Close is safe to call twice.
func (m *Manager) Close() {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		m.cancel()
		if m.stopEvents != nil {
			m.stopEvents()
		}
		<-m.done
	})
}

// Ready reports whether the session store answers (for /readyz).
func (m *Manager) Ready(ctx context.Context) error {
	if err := m.store.Ping(ctx); err != nil {
		return fmt.Errorf("session store: %w", err)
	}
	return nil
}

// cookieName is the session cookie's name for r's scheme.
func (m *Manager) cookieName(r *http.Request) string {
	if m.secure(r) {
		return SecureCookieName
	}
	return CookieName
}

// cookie builds the session cookie for r's scheme; maxAge < 0 clears it.
func (m *Manager) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	secure := m.secure(r)
	name := CookieName
	if secure {
		name = SecureCookieName
	}
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   secure,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	}
}

// requestKey returns the store key of the well-formed session cookie r
// carries, if any.
func (m *Manager) requestKey(r *http.Request) (string, bool) {
	c, err := r.Cookie(m.cookieName(r))
	if err != nil {
		return "", false
	}
	return keyOf(c.Value)
}

// newID returns a fresh random session id (base64url, no padding).
func newID() (string, error) {
	var b [idBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// keyOf checks that id has the shape newID gives and returns its store key,
// the hex SHA-256 of the decoded id. Junk never reaches the store.
func keyOf(id string) (string, bool) {
	if len(id) != idLen {
		return "", false
	}
	var raw [idBytes]byte
	if n, err := base64.RawURLEncoding.Strict().Decode(raw[:], []byte(id)); err != nil || n != idBytes {
		return "", false
	}
	sum := sha256.Sum256(raw[:])
	return hex.EncodeToString(sum[:]), true
}

// idleDeadline is when rec ends without further activity.
func (m *Manager) idleDeadline(rec Record) time.Time {
	d := rec.LastSeen.Add(m.idle)
	if rec.ExpiresAt.Before(d) {
		return rec.ExpiresAt
	}
	return d
}

// expired says why rec is no longer valid at now ("absolute", "idle"), or
// "" while it is. A session is valid strictly before its deadlines.
func (m *Manager) expired(rec Record, now time.Time) string {
	switch {
	case !now.Before(rec.ExpiresAt):
		return "absolute"
	case !now.Before(rec.LastSeen.Add(m.idle)):
		return "idle"
	}
	return ""
}

// ttl is the store time to live for rec at now.
func (m *Manager) ttl(rec Record, now time.Time) time.Duration {
	return m.idleDeadline(rec).Sub(now) + expiryGrace
}

// expiryGrace keeps a record in the store a little past its deadline. The
// Manager checks both deadlines itself, so the record is never honoured
// late; keeping it lets the Manager, rather than the store's clock, notice
// the expiry: that writes the "session expired" audit line and closes the
// session's WebSockets with 4001 before a request can see a bare 401.
const expiryGrace = time.Minute

func (m *Manager) toSession(rec Record) *Session {
	return &Session{
		Key:           rec.Key,
		User:          rec.User,
		Roles:         rec.Roles,
		CreatedAt:     rec.CreatedAt,
		IdleExpiresAt: m.idleDeadline(rec),
		ExpiresAt:     rec.ExpiresAt,
	}
}

// expire deletes an expired record, fires its watchers, writes the audit
// line and, when announce is set, tells the other replicas (Events). The
// periodic check does not announce what it could only judge from a cached
// record because the store failed: the bus is most likely down too, and
// every replica holds the same deadlines.
func (m *Manager) expire(ctx context.Context, rec Record, reason string, announce bool, attrs ...slog.Attr) {
	if err := m.store.Delete(ctx, rec.Key); err != nil {
		m.log.WarnContext(ctx, "session: delete expired session", "user", rec.User, "err", err)
	}
	m.end(rec.Key)
	attrs = append(attrs, slog.Bool("audit", true), slog.String("user", rec.User), slog.String("reason", reason))
	m.log.LogAttrs(ctx, slog.LevelInfo, "session expired", attrs...)
	if announce {
		if err := m.announce(ctx, rec.Key); err != nil {
			m.warnAnnounce(ctx, 1, err)
		}
	}
}

func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// isSessionInfo is the default Passive: GET or HEAD /auth/session.
func isSessionInfo(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.Path == "/auth/session"
}

// loginBackoff is the growing login delay cfg asks for, nil when disabled.
func loginBackoff(cfg Config) *backoff {
	if cfg.LoginBackoff < 0 {
		return nil
	}
	return newBackoff(cfg.LoginBackoffFree, cfg.LoginBackoff, cfg.LoginBackoffMax)
}
