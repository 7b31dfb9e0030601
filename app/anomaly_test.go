package app

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/logging"
	"github.com/tickgate/tickgate/metrics"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestAnomalyWatch(t *testing.T) {
	t.Parallel()
	lb := &logBuf{}
	log, err := logging.New(lb, logging.Options{Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.Discard()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	w := newAnomalyWatch(config.AnomalySettings{Window: time.Minute, Unauthorized: 3, RateLimited: 2, LoginFailures: 2, WSConnects: 0}, log, m, clock.now)
	ctx := context.Background()

	// 401s: IP 1.1.1.1 reaches 3 (one signal), IP 2.2.2.2 stays below.
	for range 5 {
		w.observe(ctx, "/api/:upstream/*", 401, "1.1.1.1", "")
	}
	w.observe(ctx, "/api/:upstream/*", 401, "2.2.2.2", "")
	if got := value(t, m.Anomalies.WithLabelValues(metrics.AnomalyUnauthorized)); got != 1 {
		t.Errorf("unauthorized anomalies = %v, want 1", got)
	}
	// 429s: counted per IP and per user; both cross.
	w.observe(ctx, "/api/:upstream/*", 429, "3.3.3.3", "alice")
	w.observe(ctx, "/api/:upstream/*", 429, "4.4.4.4", "alice")
	w.observe(ctx, "/api/:upstream/*", 429, "3.3.3.3", "bob")
	if got := value(t, m.Anomalies.WithLabelValues(metrics.AnomalyRateLimited)); got != 2 {
		t.Errorf("rate-limited anomalies = %v, want 2 (alice, 3.3.3.3)", got)
	}
	// Failed logins per IP only, never per the name tried.
	w.observe(ctx, "/auth/login", 401, "5.5.5.5", "")
	w.observe(ctx, "/auth/login", 401, "5.5.5.5", "")
	if got := value(t, m.Anomalies.WithLabelValues(metrics.AnomalyLoginFailures)); got != 1 {
		t.Errorf("login anomalies = %v, want 1", got)
	}
	if got := value(t, m.Anomalies.WithLabelValues(metrics.AnomalyUnauthorized)); got != 1 {
		t.Errorf("a failed login counted as a plain 401")
	}
	// A threshold of 0 is off.
	for range 10 {
		w.observe(ctx, "/ws/:feed", 101, "6.6.6.6", "carol")
	}
	if got := value(t, m.Anomalies.WithLabelValues(metrics.AnomalyWSConnects)); got != 0 {
		t.Errorf("ws anomalies with the signal off = %v", got)
	}
	// A new window starts counting afresh.
	clock.add(time.Minute)
	for range 3 {
		w.observe(ctx, "/api/:upstream/*", 401, "1.1.1.1", "")
	}
	if got := value(t, m.Anomalies.WithLabelValues(metrics.AnomalyUnauthorized)); got != 2 {
		t.Errorf("unauthorized anomalies after the window turned = %v, want 2", got)
	}

	var lines []map[string]any
	for _, r := range lb.records(t) {
		if r["msg"] == "anomaly" {
			lines = append(lines, r)
			if r["audit"] != true || r["kind"] == nil || r["count"] == nil || r["window"] != "1m0s" {
				t.Errorf("anomaly line lacks fields: %v", r)
			}
		}
	}
	if len(lines) != 5 {
		t.Errorf("%d anomaly lines, want 5:\n%s", len(lines), lb.String())
	}
	if !strings.Contains(lb.String(), `"user":"alice"`) || !strings.Contains(lb.String(), `"client_ip":"5.5.5.5"`) {
		t.Errorf("anomaly lines do not name the client:\n%s", lb.String())
	}
}

func TestAnomalyWatchOffAndBounded(t *testing.T) {
	t.Parallel()
	var w *anomalyWatch = newAnomalyWatch(config.AnomalySettings{}, nil, nil, time.Now)
	w.observe(context.Background(), "/x", 401, "1.1.1.1", "") // nil: no-op, no panic

	lb := &logBuf{}
	log, _ := logging.New(lb, logging.Options{Format: "json"})
	w = newAnomalyWatch(config.AnomalySettings{Window: time.Hour, Unauthorized: 1000}, log, metrics.Discard(), time.Now)
	for i := range maxAnomalyClients + 10 {
		w.observe(context.Background(), "/x", 401, "ip-"+strconv.Itoa(i), "")
	}
	w.mu.Lock()
	n := len(w.counts)
	w.mu.Unlock()
	if n != maxAnomalyClients {
		t.Errorf("tracked %d clients, want the cap %d", n, maxAnomalyClients)
	}
	if got := strings.Count(lb.String(), "anomaly tracking full"); got != 1 {
		t.Errorf("'tracking full' logged %d times, want once", got)
	}
}

// TestAnomalyThroughApp checks the middleware feeds the watch: repeated
// 401s from one address raise one signal.
func TestAnomalyThroughApp(t *testing.T) {
	t.Parallel()
	o := newObservedApp(t, map[string]string{"TICKGATE_ANOMALY_UNAUTHORIZED": "3"})
	for range 4 {
		if rec := o.do("GET", "/api/demo/v1/quote/AAPL", "127.0.0.9:1", "", nil); rec.Code != 401 {
			t.Fatalf("status %d", rec.Code)
		}
	}
	if got := value(t, o.m.Anomalies.WithLabelValues(metrics.AnomalyUnauthorized)); got != 1 {
		t.Errorf("anomalies = %v, want 1", got)
	}
	if !strings.Contains(o.log.String(), `"msg":"anomaly"`) {
		t.Errorf("no anomaly line:\n%s", o.log.String())
	}
}
