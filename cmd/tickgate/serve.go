package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickgate/tickgate/app"
	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/marketsim"
	"github.com/tickgate/tickgate/metrics"
	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/memstore"
)

// setup is everything loaded from settings before anything listens.
type setup struct {
	settings config.Settings
	file     config.File
	demo     bool
	cache    *secrets.Cache
	users    *session.Users
	demoKey  secrets.Value
	// demoPassword is set only when it was generated and must be shown.
	demoPassword string
}

func newLogger(s config.Settings, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(s.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	format := s.LogFormat
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// load reads settings, the YAML file (or the demo configuration), users
// and secrets. vendorURL is the demo vendor's address, replaced by the
// caller once an in-process vendor has started.
func load(ctx context.Context, env environment, log *slog.Logger, m *metrics.Metrics, vendorURL string) (*setup, error) {
	s, err := config.FromEnv(env.lookup)
	if err != nil {
		return nil, err
	}
	st := &setup{settings: s, demo: s.ConfigFile == ""}
	var problems config.Problems
	if st.demo {
		if s.DemoVendorURL != "" {
			vendorURL = s.DemoVendorURL
		}
		st.file = config.Demo(vendorURL)
	} else {
		st.file, err = config.Load(s.ConfigFile, env.get)
		if err != nil {
			return nil, err
		}
	}
	if !s.PlainHTTPAllowed() {
		problems.Addf("TICKGATE_ADDR: plain HTTP on a non-loopback address; set TICKGATE_TLS_CERT and TICKGATE_TLS_KEY, or TICKGATE_TRUSTED_PROXIES for a TLS-terminating proxy")
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
		pw := s.DemoPassword
		if pw == "" {
			pw = rand.Text()
			st.demoPassword = pw
		}
		hash, err := session.HashPassword(pw)
		if err != nil {
			return nil, fmt.Errorf("demo user: %w", err)
		}
		if err := st.users.Add("demo", hash); err != nil {
			problems.Addf("TICKGATE_USERS: %v", err)
		}
	}
	if st.users != nil && st.users.Len() == 0 {
		problems.Addf("TICKGATE_USERS: no users configured; add name:hash pairs (see: tickgate hash-password)")
	}

	// Secrets.
	var provider secrets.Provider
	switch s.Secrets {
	case "env":
		provider = secrets.NewEnv(env.get)
	default:
		problems.Addf("TICKGATE_SECRETS: %q is not supported yet; use env", s.Secrets)
	}
	if err := problems.Err(); err != nil {
		return nil, err
	}
	if st.demo {
		// The demo key is a secret like any other: from the provider when
		// set there, otherwise random for this run.
		provider = &demoKeyProvider{Provider: provider, fallback: secrets.NewValue(rand.Text())}
	}
	st.cache = secrets.NewCache(provider, secrets.CacheConfig{
		Refresh:   s.SecretRefresh,
		Logger:    log,
		OnRefresh: func(result string) { m.SecretRefresh.WithLabelValues(result).Inc() },
	})
	if err := st.cache.Load(ctx, st.file.SecretNames()...); err != nil {
		return nil, err
	}
	if st.demo {
		st.demoKey, _ = st.cache.Get(ctx, config.DemoKeySecret)
	}
	return st, nil
}

// demoKeyProvider answers TICKGATE_DEMO_KEY with a random value when the
// real provider has none.
type demoKeyProvider struct {
	secrets.Provider
	fallback secrets.Value
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
	log := newLogger(pre, stderr)

	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	st, err := load(ctx, env, log, m, "http://127.0.0.1:0")
	if err != nil {
		return err
	}
	defer st.cache.Close()
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

	store, err := memstore.New(memstore.Config{})
	if err != nil {
		return err
	}
	defer store.Close()

	a, err := app.New(app.Config{
		Settings: st.settings,
		File:     st.file,
		Secrets:  st.cache,
		Users:    st.users,
		Store:    store,
		Logger:   log,
		Registry: reg,
		Metrics:  m,
	})
	if err != nil {
		return err
	}
	defer a.Close()
	st.cache.Start()

	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if st.settings.TLS() {
		cert, err := tls.LoadX509KeyPair(st.settings.TLSCert, st.settings.TLSKey)
		if err != nil {
			return fmt.Errorf("TICKGATE_TLS_CERT/TICKGATE_TLS_KEY: %w", err)
		}
		srv.TLSConfig = &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			CipherSuites: []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
			},
		}
	}
	errc := make(chan error, 2)
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
	log.Info("stopped")
	return nil
}

func checkConfig(ctx context.Context, env environment, stdout, stderr io.Writer) error {
	pre, err := config.FromEnv(env.lookup)
	if err != nil {
		return printProblems(stderr, err)
	}
	log := newLogger(pre, io.Discard)
	st, err := load(ctx, env, log, metrics.Discard(), "http://127.0.0.1:7070")
	if err != nil {
		return printProblems(stderr, err)
	}
	st.cache.Close()
	mode := "config " + st.settings.ConfigFile
	if st.demo {
		mode = "demo mode"
	}
	fmt.Fprintf(stdout, "ok: %s, %d upstream(s), %d feed(s), %d user(s), %d secret(s) loaded\n",
		mode, len(st.file.Upstreams), len(st.file.Feeds), st.users.Len(), len(st.file.SecretNames()))
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
