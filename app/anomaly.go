package app

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/guard"
	"github.com/tickgate/tickgate/logging"
	"github.com/tickgate/tickgate/metrics"
)

// maxAnomalyClients bounds the clients tracked in one window, so a flood
// from many addresses cannot grow the table without limit. Clients past
// it are not tracked until the window turns (and that is logged once).
const maxAnomalyClients = 100_000

// anomalyWatch is the anomaly signal of issue 9 (BRIEF sections 2, 3
// and 6): it counts, per client IP and per user, 401 and 429 answers,
// failed logins and WebSocket connects in fixed windows (IPv6 clients per
// /64, as the guard limits them), and the first
// time a client reaches a threshold in a window it writes an audit
// warning naming the client and counts tickgate_anomalies_total{kind}.
// It only observes; limits and revocation are the guard's and the
// session manager's.
type anomalyWatch struct {
	cfg config.AnomalySettings
	log *slog.Logger
	m   *metrics.Metrics
	now func() time.Time

	mu     sync.Mutex
	start  time.Time // of the current window
	counts map[anomalyKey]int
	full   bool // the table filled up in this window (logged)
}

type anomalyKey struct {
	kind   string
	byUser bool
	client string
}

// newAnomalyWatch returns nil (every method a no-op) when the window is
// not set.
func newAnomalyWatch(cfg config.AnomalySettings, log *slog.Logger, m *metrics.Metrics, now func() time.Time) *anomalyWatch {
	if cfg.Window <= 0 {
		return nil
	}
	return &anomalyWatch{cfg: cfg, log: log, m: m, now: now, counts: make(map[anomalyKey]int)}
}

// observe classifies one finished request.
func (w *anomalyWatch) observe(ctx context.Context, route string, status int, ip, user string) {
	if w == nil {
		return
	}
	// Clients are grouped as the guard limits them: an IPv6 host holds a
	// whole /64 and rotating addresses in it must not dodge the count.
	if a, err := netip.ParseAddr(ip); err == nil {
		ip = guard.LimitKey(a)
	}
	switch {
	case status == http.StatusUnauthorized && route == "/auth/login":
		// Per IP only: the name tried is the attacker's choice.
		w.note(ctx, metrics.AnomalyLoginFailures, w.cfg.LoginFailures, ip, "")
	case status == http.StatusUnauthorized:
		w.note(ctx, metrics.AnomalyUnauthorized, w.cfg.Unauthorized, ip, user)
	case status == http.StatusTooManyRequests:
		w.note(ctx, metrics.AnomalyRateLimited, w.cfg.RateLimited, ip, user)
	case status == http.StatusSwitchingProtocols && route == "/ws/:feed":
		w.note(ctx, metrics.AnomalyWSConnects, w.cfg.WSConnects, ip, user)
	}
}

func (w *anomalyWatch) note(ctx context.Context, kind string, threshold int, ip, user string) {
	if threshold <= 0 {
		return
	}
	type crossing struct {
		key   anomalyKey
		count int
	}
	var crossed []crossing
	filled := false
	w.mu.Lock()
	now := w.now()
	if now.Sub(w.start) >= w.cfg.Window || now.Before(w.start) {
		w.start, w.counts, w.full = now, make(map[anomalyKey]int), false
	}
	for _, k := range []anomalyKey{{kind: kind, client: ip}, {kind: kind, byUser: true, client: user}} {
		if k.client == "" {
			continue
		}
		n, ok := w.counts[k]
		if !ok && len(w.counts) >= maxAnomalyClients {
			if !w.full {
				w.full, filled = true, true
			}
			continue
		}
		n++
		w.counts[k] = n
		if n == threshold {
			crossed = append(crossed, crossing{k, n})
		}
	}
	w.mu.Unlock()

	if filled {
		w.log.LogAttrs(ctx, slog.LevelWarn, "anomaly tracking full for this window; new clients not tracked",
			logging.Audit(), slog.Int("clients", maxAnomalyClients), slog.String("window", w.cfg.Window.String()))
	}
	for _, c := range crossed {
		w.m.Anomalies.WithLabelValues(kind).Inc()
		who := slog.String("client_ip", c.key.client)
		if c.key.byUser {
			who = slog.String("user", c.key.client)
		}
		w.log.LogAttrs(ctx, slog.LevelWarn, "anomaly", logging.Audit(),
			slog.String("kind", kind), who, slog.Int("count", c.count), slog.String("window", w.cfg.Window.String()))
	}
}
