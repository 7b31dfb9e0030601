package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/logging"
	"github.com/tickgate/tickgate/metrics"
)

// An IPv6 client holds a whole /64 and picks a new source address per
// request for free. Counted per address, its failed logins never reach
// the threshold (and fill the table, blinding the watch for the window).
// The guard limits IPv6 per /64; the anomaly watch must group the same way.
func TestAttackAnomalyIPv6RotationStillSignals(t *testing.T) {
	t.Parallel()
	lb := &logBuf{}
	log, err := logging.New(lb, logging.Options{Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.Discard()
	w := newAnomalyWatch(config.AnomalySettings{Window: time.Minute, LoginFailures: 5}, log, m, time.Now)
	for i := range 50 {
		w.observe(context.Background(), "/auth/login", 401, fmt.Sprintf("2001:db8:1:2::%x", i+1), "")
	}
	if got := value(t, m.Anomalies.WithLabelValues(metrics.AnomalyLoginFailures)); got != 1 {
		t.Errorf("login anomalies from 50 addresses of one /64 = %v, want 1", got)
	}
	w.mu.Lock()
	n := len(w.counts)
	w.mu.Unlock()
	if n != 1 {
		t.Errorf("one /64 took %d table entries, want 1", n)
	}
	// IPv4 stays per address; an IPv4-mapped IPv6 address is its IPv4.
	w.observe(context.Background(), "/auth/login", 401, "192.0.2.1", "")
	w.observe(context.Background(), "/auth/login", 401, "::ffff:192.0.2.1", "")
	w.observe(context.Background(), "/auth/login", 401, "192.0.2.2", "")
	w.mu.Lock()
	n = len(w.counts)
	w.mu.Unlock()
	if n != 3 {
		t.Errorf("table entries = %d, want 3", n)
	}
}
