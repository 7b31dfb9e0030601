package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickgate/tickgate/app"
	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/logging"
	"github.com/tickgate/tickgate/marketsim"
	"github.com/tickgate/tickgate/metrics"
	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/secrets/awssm"
	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/memstore"
	"github.com/tickgate/tickgate/session/redisstore"
)

// setup is everything loaded from settings before anything listens.
type setup struct {
	settings config.Settings
	file     config.File
	demo     bool
	cache    *secrets.Cache
	users    *session.Users
	demoKey  secrets.Value
	// upstreamCAs verifies vendor certificates (nil: system roots).
	upstreamCAs *x509.CertPool
	// demoPassword is set only when it was generated and must be shown.
	demoPassword string
	closers      []func()
}

// minKeyLength is the shortest vendor key tickgate accepts. The proxy
// scrubs every occurrence of a key from what it relays; a key of a few
// characters would occur by chance in ordinary data ("K" in "KO") and
// corrupt it, and a real vendor key is a long random string anyway.
const minKeyLength = 8

// load reads settings, the YAML file (or the demo configuration), users
// and secrets, reporting every problem it finds, one per line. vendorURL
// is the demo vendor's address, replaced by the caller once an
// in-process vendor has started. The caller closes st.closers.
func load(ctx context.Context, env environment, log *slog.Logger, red *logging.Redactor, m *metrics.Metrics, vendorURL string) (*setup, error) {
	s, err := config.FromEnv(env.lookup)
	if err != nil {
		return nil, err
	}
	st := &setup{settings: s, demo: s.ConfigFile == ""}
	var problems config.Problems
	addErr := func(err error) {
		for _, l := range config.Lines(err) {
			problems = append(problems, strings.Split(l, "\n")...)
		}
	}
	if st.demo {
		if s.DemoVendorURL != "" {
			vendorURL = s.DemoVendorURL
		}
		st.file = config.Demo(vendorURL)
		if exposed := demoExposed(s); len(exposed) > 0 {
			if !s.DemoPublic {
				problems.Addf("%s: demo mode listens only on loopback addresses (its user and key are for trying tickgate out); set TICKGATE_CONFIG for a real deployment, or TICKGATE_DEMO_PUBLIC=1 to expose the demo anyway", strings.Join(exposed, ", "))
			} else {
				log.Warn("DEMO EXPOSED: TICKGATE_DEMO_PUBLIC=1 serves demo mode on a non-loopback address; anyone who reaches it can try to log in as demo. Never use this in production.", "addrs", strings.Join(exposed, ", "))
			}
		}
	} else if st.file, err = config.Load(s.ConfigFile, env.get); err != nil {
		addErr(err)
	}
	if st.upstreamCAs, err = loadUpstreamCAs(s.UpstreamCAFile); err != nil {
		problems.Addf("%v", err)
	}
	if !s.PlainHTTPAllowed() {
		problems.Addf("TICKGATE_ADDR: plain HTTP on a non-loopback address; set TICKGATE_TLS_CERT and TICKGATE_TLS_KEY, or TICKGATE_TRUSTED_PROXIES for a TLS-terminating proxy (TICKGATE_INSECURE_HTTP=1 for local network development only)")
	}
	for _, pfx := range s.TrustedProxies {
		if pfx.Bits() < 8 {
			log.Warn("TICKGATE_TRUSTED_PROXIES trusts a very wide range: any client in it chooses its own address and HTTPS status through X-Forwarded-For / -Proto; list only your load balancers' subnets", "prefix", pfx.String())
		}
	}
	if s.PlainHTTPExposed() {
		log.Warn("INSECURE: TICKGATE_INSECURE_HTTP=1 serves plain HTTP on a non-loopback address; passwords and session cookies cross the network unencrypted. Never use this in production.", "addr", s.Addr)
	}

	// Users.
	switch {
	case s.UsersFile != "":
		f, err := os.Open(s.UsersFile)
		if err != nil {
			problems.Addf("TICKGATE_USERS_FILE: %v", err)
			break
		}
		st.users, err = session.ParseUsersFile(f)
		f.Close()
		if err != nil {
			problems.Addf("TICKGATE_USERS_FILE: %v", err)
		}
	default:
		st.users, err = session.ParseUsers(s.Users)
		if err != nil {
			problems.Addf("TICKGATE_USERS: %v", err)
		}
	}
	if st.users != nil && st.demo {
		if n := len(s.DemoPassword); n > 0 && n < 8 {
			problems.Addf("TICKGATE_DEMO_PASSWORD: shorter than 8 characters (hash-password asks as much of real users)")
		}
		pw := s.DemoPassword
		if pw == "" {
			pw = rand.Text()
			st.demoPassword = pw
		}
		red.Set("demo_password", pw)
		hash, err := session.HashPassword(pw)
		if err != nil {
			return nil, fmt.Errorf("demo user: %w", err)
		}
		if err := st.users.Add("demo", hash); err != nil {
			problems.Addf("TICKGATE_USERS: %v", err)
		}
	}
	if st.users != nil && st.users.Len() == 0 && !s.OIDC.Enabled() {
		problems.Addf("TICKGATE_USERS: no users configured; add name:hash pairs (see: tickgate hash-password)")
	}

	// Secrets: read even when other settings are wrong, so one run
	// reports every problem.
	if refs := st.file.AWSSecrets(); s.Secrets != "aws" && len(refs) > 0 {
		problems.Addf("TICKGATE_SECRETS: aws_secret is set in the YAML for %s, but secrets come from %s; set TICKGATE_SECRETS=aws or remove aws_secret", strings.Join(slices.Sorted(maps.Keys(refs)), ", "), s.Secrets)
	}
	var provider secrets.Provider
	switch s.Secrets {
	case "env":
		provider = secrets.NewEnv(env.get)
	case "aws":
		perKey := st.file.AWSSecrets()
		if s.AWSSecretID == "" {
			if missing := withoutAWSSecret(st.file.SecretNames(), perKey, st.demo); len(missing) > 0 {
				problems.Addf("TICKGATE_AWS_SECRET_ID: required when TICKGATE_SECRETS=aws (no aws_secret in the YAML for %s)", strings.Join(missing, ", "))
				break
			}
		}
		p, err := awssm.New(ctx, awssm.Config{SecretID: s.AWSSecretID, PerKey: perKey, Logger: log.With("component", "awssm")})
		if err != nil {
			problems.Addf("TICKGATE_SECRETS=aws: %v", err)
			break
		}
		st.closers = append(st.closers, func() { _ = p.Close() })
		provider = p
	}
	if provider != nil {
		if st.demo && s.DemoVendorURL == "" {
			// The demo key is a secret like any other: from the provider
			// when set there, otherwise random for this run (the
			// in-process marketsim is keyed with it). A marketsim of
			// TICKGATE_DEMO_VENDOR_URL has its own key: it must be given.
			provider = &demoKeyProvider{Provider: provider, fallback: secrets.NewValue(rand.Text())}
		}
		st.cache = secrets.NewCache(provider, secrets.CacheConfig{
			Refresh: s.SecretRefresh,
			Logger:  log,
			OnRefresh: func(result string) {
				// Every value read joins the log scrubber before it is used.
				red.Set("secrets", revealAll(st.cache.Values())...)
				m.SecretRefresh.WithLabelValues(result).Inc()
			},
		})
		st.closers = append(st.closers, st.cache.Close)
		names := st.file.SecretNames()
		if err := st.cache.Load(ctx, names...); err != nil {
			addErr(err)
		}
		for _, n := range names {
			if v, err := st.cache.Get(ctx, n); err == nil && len(v.Reveal()) < minKeyLength {
				problems.Addf("secret %s: shorter than %d characters; vendor keys are long random strings, and a short one cannot be scrubbed from responses without corrupting them", n, minKeyLength)
			}
		}
		if st.demo {
			st.demoKey, _ = st.cache.Get(ctx, config.DemoKeySecret)
		}
		if err := loadOIDCSecret(ctx, s, st.cache); err != nil {
			addErr(err)
		}
	}
	if err := problems.Err(); err != nil {
		st.close()
		return nil, err
	}
	return st, nil
}

func (st *setup) close() {
	for i := len(st.closers) - 1; i >= 0; i-- {
		st.closers[i]()
	}
	st.closers = nil
}

// openStore opens the session store the settings name, and the events
// that tell the other replicas sharing it when a session ends (nil for
// the memory store: one process). A Redis store that does not answer at
// start-up is an error: tickgate never falls back to memory, which would
// silently split sessions between replicas. Closing the store closes the
// events too; close the session Manager first.
func openStore(ctx context.Context, s config.Settings, log *slog.Logger) (session.Store, session.Events, error) {
	switch s.SessionStore {
	case "redis":
		st, err := redisstore.New(redisstore.Config{
			URL:    s.RedisURL,
			Prefix: s.RedisPrefix + "session:",
			Logger: log.With("component", "redisstore"),
		})
		if err != nil {
			return nil, nil, fmt.Errorf("TICKGATE_REDIS_URL: %w", err)
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := st.Ping(pctx); err != nil {
			_ = st.Close()
			return nil, nil, fmt.Errorf("TICKGATE_REDIS_URL: session store not answering: %w", err)
		}
		return st, st, nil
	default:
		st, err := memstore.New(memstore.Config{})
		return st, nil, err
	}
}

// withoutAWSSecret returns the names that have no per-key aws_secret and
// would need TICKGATE_AWS_SECRET_ID. The demo key does not: it is random
// when no provider has it.
func withoutAWSSecret(names []string, perKey map[string]string, demo bool) []string {
	var out []string
	for _, n := range names {
		if _, ok := perKey[n]; !ok && !(demo && n == config.DemoKeySecret) {
			out = append(out, n)
		}
	}
	return out
}

// demoExposed names the settings that put demo mode on a non-loopback
// address.
func demoExposed(s config.Settings) []string {
	var out []string
	for _, a := range []struct{ name, addr string }{
		{"TICKGATE_ADDR", s.Addr}, {"TICKGATE_ADMIN_ADDR", s.AdminAddr}, {"TICKGATE_REDIRECT_ADDR", s.RedirectAddr},
	} {
		if a.addr == "" {
			continue
		}
		if host, _, err := net.SplitHostPort(a.addr); err == nil && !config.IsLoopbackHost(host) {
			out = append(out, a.name)
		}
	}
	return out
}

// demoKeyProvider answers TICKGATE_DEMO_KEY with a random value when the
// real provider has none.
type demoKeyProvider struct {
	secrets.Provider
	fallback secrets.Value
}

// Version passes the provider's versions on (the demo key's fallback has
// none).
func (p *demoKeyProvider) Version(name string) (string, time.Time, bool) {
	if vp, ok := p.Provider.(secrets.Versioned); ok {
		return vp.Version(name)
	}
	return "", time.Time{}, false
}

func (p *demoKeyProvider) Get(ctx context.Context, name string) (secrets.Value, error) {
	v, err := p.Provider.Get(ctx, name)
	if name == config.DemoKeySecret && errors.Is(err, secrets.ErrNotFound) {
		return p.fallback, nil
	}
	return v, err
}

func serve(ctx context.Context, env environment, stderr io.Writer) error {
	pre, err := config.FromEnv(env.lookup)
	if err != nil {
		return err
	}
	log, red, err := newLogger(pre, stderr)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	st, err := load(ctx, env, log, red, m, "http://127.0.0.1:0")
	if err != nil {
		return err
	}
	defer st.close()
	if st.demo && st.settings.DemoVendorURL == "" {
		// Demo mode: the simulated vendor, keyed with the demo secret.
		sim, err := marketsim.New(marketsim.Options{Keys: []string{st.demoKey.Reveal()}, Logger: log.With("component", "marketsim")})
		if err != nil {
			return fmt.Errorf("demo vendor: %w", err)
		}
		defer sim.Close()
		if _, err := sim.Start("127.0.0.1:0"); err != nil {
			return fmt.Errorf("demo vendor: %w", err)
		}
		st.file = config.Demo(sim.URL())
	}

	ln, err := net.Listen("tcp", st.settings.Addr)
	if err != nil {
		return fmt.Errorf("TICKGATE_ADDR: %w", err)
	}
	defer ln.Close()
	st.settings = st.settings.WithListenAddr(ln.Addr().String())

	var adminLn net.Listener
	if st.settings.AdminAddr != "" {
		adminLn, err = net.Listen("tcp", st.settings.AdminAddr)
		if err != nil {
			return fmt.Errorf("TICKGATE_ADMIN_ADDR: %w", err)
		}
		defer adminLn.Close()
	}

	store, events, err := openStore(ctx, st.settings, log)
	if err != nil {
		return err
	}
	defer store.Close()
	if counter, ok := store.(interface{ Len() int }); ok {
		if err := metrics.RegisterSessions(reg, st.settings.SessionStore, counter.Len); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	limitStores, closeLimitStores, err := openLimitStore(ctx, st.settings, log)
	if err != nil {
		return err
	}
	defer closeLimitStores()
	budgets, closeBudgets, err := openBudgetStore(ctx, st.settings, st.file)
	if err != nil {
		return err
	}
	defer closeBudgets()
	sharing, closeSharing, err := openFeedSharing(ctx, st.settings, log)
	if err != nil {
		return err
	}
	defer closeSharing()

	a, err := app.New(app.Config{
		Settings:      st.settings,
		File:          st.file,
		Secrets:       st.cache,
		Users:         st.users,
		Store:         store,
		SessionEvents: events,
		Logger:        log,
		Registry:      reg,
		Metrics:       m,
		LimitStores:   limitStores,
		Budgets:       budgets,
		UpstreamCAs:   st.upstreamCAs,
		FeedSharing:   sharing,
		NewOIDC:       oidcLogin(ctx, st.settings, st.cache, log, m),
	})
	if err != nil {
		return err
	}
	// Deferred after store.Close (and the limit stores), so it runs before: the session Manager
	// unsubscribes from the store's events and stops its checks before
	// the store closes.
	defer a.Close()
	st.cache.Start()
	ageCtx, stopAges := context.WithCancel(ctx)
	defer stopAges()
	if err := watchKeyAges(ageCtx, st.cache, st.settings.SecretMaxAge, reg, log); err != nil {
		return err
	}

	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	var redirect *http.Server
	if st.settings.TLS() {
		cr, err := newCertReloader(st.settings.TLSCert, st.settings.TLSKey, log)
		if err != nil {
			return err
		}
		srv.TLSConfig = serverTLSConfig(cr)
		if st.settings.RedirectAddr != "" {
			rln, err := net.Listen("tcp", st.settings.RedirectAddr)
			if err != nil {
				return fmt.Errorf("TICKGATE_REDIRECT_ADDR: %w", err)
			}
			defer rln.Close()
			_, tlsPort, _ := net.SplitHostPort(ln.Addr().String())
			httpsOrigin := ""
			for _, o := range st.settings.PublicOrigins {
				if strings.HasPrefix(o, "https://") {
					httpsOrigin = o
					break
				}
			}
			redirect = &http.Server{Handler: redirectHandler(httpsOrigin, tlsPort), ReadHeaderTimeout: 10 * time.Second,
				ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10}
			go func() { _ = redirect.Serve(rln) }()
		}
	}
	errc := make(chan error, 3)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	var admin *http.Server
	if adminLn != nil {
		admin = &http.Server{Handler: a.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- admin.Serve(adminLn) }()
	}

	url := st.settings.PublicOrigins[0]
	if st.demo {
		fmt.Fprintln(stderr, "tickgate: demo mode (no TICKGATE_CONFIG): simulated vendor, user \"demo\"")
		if st.demoPassword != "" {
			fmt.Fprintf(stderr, "tickgate: demo password (random, this run only): %s\n", st.demoPassword)
		}
	}
	fmt.Fprintf(stderr, "tickgate: open %s/\n", strings.TrimSuffix(url, "/"))
	adminAddr := ""
	if adminLn != nil {
		adminAddr = adminLn.Addr().String()
	}
	configSource := st.settings.ConfigFile
	if st.demo {
		configSource = "demo"
	}
	log.Info("config loaded", logging.Audit(), "config", configSource,
		"upstreams", slices.Sorted(maps.Keys(st.file.Upstreams)), "feeds", slices.Sorted(maps.Keys(st.file.Feeds)),
		"users", st.users.Len(), "secrets", st.settings.Secrets, "session_store", st.settings.SessionStore,
		"limit_store", st.settings.LimitStore, "tls", st.settings.TLS(), "trusted_proxies", len(st.settings.TrustedProxies))
	log.Info("tickgate started", "addr", ln.Addr().String(), "admin_addr", adminAddr, "demo", st.demo,
		"upstreams", len(st.file.Upstreams), "feeds", len(st.file.Feeds))

	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	log.Info("shutting down")
	a.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("shutdown: in-flight requests cut off", "err", err)
	}
	a.CloseStreams()
	if admin != nil {
		_ = admin.Shutdown(shutdownCtx)
	}
	if redirect != nil {
		_ = redirect.Shutdown(shutdownCtx)
	}
	log.Info("stopped")
	return nil
}

func checkConfig(ctx context.Context, env environment, stdout, stderr io.Writer) error {
	pre, err := config.FromEnv(env.lookup)
	if err != nil {
		return printProblems(stderr, err)
	}
	log, red, err := newLogger(pre, io.Discard)
	if err != nil {
		return printProblems(stderr, err)
	}
	st, err := load(ctx, env, log, red, metrics.Discard(), "http://127.0.0.1:7070")
	if err != nil {
		return printProblems(stderr, err)
	}
	st.close()
	if err := checkGuard(ctx, st, log); err != nil {
		return printProblems(stderr, err)
	}
	oidcLine, err := checkOIDC(ctx, st, log)
	if err != nil {
		return printProblems(stderr, err)
	}
	// What serve opens before it listens: the certificate and the
	// session store, so an ok here means serve gets as far as listening.
	if st.settings.TLS() {
		if _, err := tls.LoadX509KeyPair(st.settings.TLSCert, st.settings.TLSKey); err != nil {
			return printProblems(stderr, fmt.Errorf("TICKGATE_TLS_CERT / TICKGATE_TLS_KEY: %w", err))
		}
	}
	if store, _, err := openStore(ctx, st.settings, log); err != nil {
		return printProblems(stderr, err)
	} else {
		_ = store.Close()
	}
	if st.settings.PlainHTTPExposed() {
		fmt.Fprintln(stderr, "tickgate: warning: TICKGATE_INSECURE_HTTP=1 serves plain HTTP on a non-loopback address; passwords and session cookies would cross the network unencrypted")
	}
	mode := "config " + st.settings.ConfigFile
	if st.demo {
		mode = "demo mode"
	}
	fmt.Fprintf(stdout, "ok: %s, %d upstream(s), %d feed(s), %d user(s), %d secret(s) loaded\n",
		mode, len(st.file.Upstreams), len(st.file.Feeds), st.users.Len(), len(st.file.SecretNames()))
	if oidcLine != "" {
		fmt.Fprintln(stdout, oidcLine)
	}
	return nil
}

func printProblems(w io.Writer, err error) error {
	for _, line := range config.Lines(err) {
		for _, l := range strings.Split(line, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				fmt.Fprintln(w, "tickgate: "+l)
			}
		}
	}
	return errReported
}

// keyAgeCheck is how often key ages are logged about after start-up.
const keyAgeCheck = 12 * time.Hour

// watchKeyAges exports each vendor key's age and warns, at start and then
// every keyAgeCheck until ctx ends, about keys past or near maxAge.
func watchKeyAges(ctx context.Context, cache *secrets.Cache, maxAge time.Duration, reg prometheus.Registerer, log *slog.Logger) error {
	policy := secrets.AgePolicy{Max: maxAge}
	err := metrics.RegisterSecretAge(reg, func() []metrics.SecretAge {
		var out []metrics.SecretAge
		for _, a := range cache.Ages(policy) {
			out = append(out, metrics.SecretAge{Secret: a.Name, Seconds: a.Age.Seconds()})
		}
		return out
	})
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	cache.WarnOldKeys(log, policy)
	go func() {
		t := time.NewTicker(keyAgeCheck)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				cache.WarnOldKeys(log, policy)
			}
		}
	}()
	return nil
}
