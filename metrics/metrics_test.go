package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tickgate/tickgate/metrics"
)

// families gathers reg as name → number of series.
func families(t *testing.T, reg *prometheus.Registry) map[string]int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, mf := range mfs {
		out[mf.GetName()] = len(mf.GetMetric())
	}
	return out
}

// TestContractSeries checks every metric of DESIGN 1.4 and issue 9 is
// exported from the start (zeros, not missing series) once the feeds and
// upstreams are known.
func TestContractSeries(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.InitFeeds("demo", "crypto")
	m.InitUpstreams("demo")
	m.HTTPRequests.WithLabelValues("/healthz", "200").Inc()
	m.HTTPDuration.WithLabelValues("/healthz").Observe(0.001)
	got := families(t, reg)
	for name, min := range map[string]int{
		// DESIGN 1.4
		"tickgate_http_requests_total":        1,
		"tickgate_ws_clients":                 1,
		"tickgate_upstream_ws_connections":    2,
		"tickgate_ratelimit_rejections_total": 6,
		"tickgate_secret_refresh_total":       3,
		// issue 9
		"tickgate_http_request_duration_seconds":     1,
		"tickgate_upstream_request_duration_seconds": 1,
		"tickgate_guard_denials_total":               6,
		"tickgate_ws_feed_clients":                   2,
		"tickgate_ws_subscriptions":                  2,
		"tickgate_ws_messages_in_total":              2,
		"tickgate_ws_frames_out_total":               2,
		"tickgate_ws_dropped_total":                  8,
		"tickgate_ws_upstream_reconnects_total":      2,
		"tickgate_logins_total":                      6,
		"tickgate_anomalies_total":                   4,
		"go_goroutines":                              1,
	} {
		if got[name] < min {
			t.Errorf("%s: %d series, want >= %d", name, got[name], min)
		}
	}
}

func TestDiscardIsUsable(t *testing.T) {
	t.Parallel()
	m := metrics.Discard()
	m.InitFeeds("demo")
	m.WSClients.Inc()
	m.Anomalies.WithLabelValues(metrics.AnomalyRateLimited).Inc()
	var g, c dto.Metric
	if err := m.WSClients.Write(&g); err != nil || g.GetGauge().GetValue() != 1 {
		t.Errorf("WSClients = %v (%v), want 1", g.GetGauge().GetValue(), err)
	}
	if err := m.Anomalies.WithLabelValues(metrics.AnomalyRateLimited).Write(&c); err != nil || c.GetCounter().GetValue() != 1 {
		t.Errorf("anomalies = %v (%v), want 1", c.GetCounter().GetValue(), err)
	}
}

func TestSecretAgeAndSessions(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	if err := metrics.RegisterSecretAge(reg, func() []metrics.SecretAge {
		return []metrics.SecretAge{{Secret: "VENDOR_KEY", Seconds: 86400}}
	}); err != nil {
		t.Fatal(err)
	}
	n := 3
	if err := metrics.RegisterSessions(reg, "memory", func() int { return n }); err != nil {
		t.Fatal(err)
	}
	if err := metrics.RegisterSessions(reg, "memory", func() int { return n }); err == nil {
		t.Error("registering the sessions gauge twice succeeded")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]float64{}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			vals[mf.GetName()+"/"+s.GetLabel()[0].GetValue()] = s.GetGauge().GetValue()
		}
	}
	if vals["tickgate_secret_age_seconds/VENDOR_KEY"] != 86400 || vals["tickgate_sessions/memory"] != 3 {
		t.Errorf("values = %v", vals)
	}
	n = 5 // read at scrape time
	mfs, _ = reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "tickgate_sessions" && mf.GetMetric()[0].GetGauge().GetValue() != 5 {
			t.Errorf("sessions gauge is not read at scrape time")
		}
	}
}
