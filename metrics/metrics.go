// Package metrics defines tickgate's Prometheus collectors on a registry
// passed in (never the global one). Label values are route patterns, feed
// and upstream names and fixed results: never a URL, key, user or session.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every collector. A nil *Metrics is not valid; use New or
// Discard.
type Metrics struct {
	HTTPRequests        *prometheus.CounterVec   // route, code
	HTTPDuration        *prometheus.HistogramVec // route
	RateLimitRejections *prometheus.CounterVec   // scope
	RateLimitStoreErrs  *prometheus.CounterVec   // limiter, policy
	GuardDenials        *prometheus.CounterVec   // scope, reason
	SecretRefresh       *prometheus.CounterVec   // result
	Logins              *prometheus.CounterVec   // result

	UpstreamRequests *prometheus.CounterVec   // upstream, code
	UpstreamDuration *prometheus.HistogramVec // upstream

	WSClients             prometheus.Gauge
	WSClientsByFeed       *prometheus.GaugeVec   // feed
	UpstreamWSConnections *prometheus.GaugeVec   // feed
	WSSubscriptions       *prometheus.GaugeVec   // feed (distinct upstream symbols)
	WSMessagesIn          *prometheus.CounterVec // feed (vendor messages)
	WSMessagesOut         *prometheus.CounterVec // feed (frames to browsers)
	WSDropped             *prometheus.CounterVec // feed, reason
	WSReconnects          *prometheus.CounterVec // feed

	// Anomalies counts clients (an IP or a session's user) that crossed
	// a threshold within the anomaly window: bursts of 401 or 429
	// answers, failed logins, WebSocket connects. Each crossing counts
	// once per window and client; the warning log line names the client.
	Anomalies *prometheus.CounterVec // kind
}

// Anomaly kinds, the label values of tickgate_anomalies_total.
const (
	AnomalyUnauthorized  = "unauthorized"   // 401 answers
	AnomalyRateLimited   = "rate_limited"   // 429 answers
	AnomalyLoginFailures = "login_failures" // failed logins
	AnomalyWSConnects    = "ws_connects"    // WebSocket connects (reconnect storms)
)

// New registers every collector on reg, plus the Go and process collectors.
func New(reg prometheus.Registerer) *Metrics {
	m := build()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.HTTPRequests, m.HTTPDuration, m.RateLimitRejections, m.RateLimitStoreErrs, m.GuardDenials, m.SecretRefresh, m.Logins,
		m.UpstreamRequests, m.UpstreamDuration,
		m.WSClients, m.WSClientsByFeed, m.UpstreamWSConnections, m.WSSubscriptions,
		m.WSMessagesIn, m.WSMessagesOut, m.WSDropped, m.WSReconnects, m.Anomalies,
	)
	return m
}

// Known label values are created up front so dashboards and alerts see
// zeros rather than missing series.
func (m *Metrics) init() *Metrics {
	for _, scope := range []string{"ip", "session", "login", "route", "ws_connect", "ws_conns_ip"} {
		m.RateLimitRejections.WithLabelValues(scope)
	}
	for _, scope := range []string{"global", "route", "feed"} {
		for _, reason := range []string{"forbidden_network", "forbidden_country"} {
			m.GuardDenials.WithLabelValues(scope, reason)
		}
	}
	for _, r := range []string{"ok", "rotated", "error"} {
		m.SecretRefresh.WithLabelValues(r)
	}
	for _, k := range []string{AnomalyUnauthorized, AnomalyRateLimited, AnomalyLoginFailures, AnomalyWSConnects} {
		m.Anomalies.WithLabelValues(k)
	}
	for _, r := range []string{"success", "invalid_credentials", "limited", "bad_request", "csrf", "error"} {
		m.Logins.WithLabelValues(r)
	}
	return m
}

// wsDropReasons are the reason label values of tickgate_ws_dropped_total.
var wsDropReasons = []string{"conflated", "slow_client", "unroutable", "key_guard"}

// InitFeeds creates the per-feed series at zero for every configured
// feed, so dashboards and alerts see zeros rather than missing series
// before the first browser connects.
func (m *Metrics) InitFeeds(feeds ...string) {
	for _, f := range feeds {
		m.WSClientsByFeed.WithLabelValues(f)
		m.UpstreamWSConnections.WithLabelValues(f)
		m.WSSubscriptions.WithLabelValues(f)
		m.WSMessagesIn.WithLabelValues(f)
		m.WSMessagesOut.WithLabelValues(f)
		m.WSReconnects.WithLabelValues(f)
		for _, r := range wsDropReasons {
			m.WSDropped.WithLabelValues(f, r)
		}
	}
}

// InitUpstreams creates the per-upstream latency series for every
// configured upstream (status codes appear as they are answered).
func (m *Metrics) InitUpstreams(upstreams ...string) {
	for _, u := range upstreams {
		m.UpstreamDuration.WithLabelValues(u)
	}
}

// Discard returns collectors registered nowhere, for tests and tools.
func Discard() *Metrics { return build() }

func build() *Metrics {
	return (&Metrics{
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tickgate_http_request_duration_seconds", Help: "HTTP request duration by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		RateLimitRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_ratelimit_rejections_total", Help: "Requests refused by a rate limit, by scope.",
		}, []string{"scope"}),
		RateLimitStoreErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_ratelimit_store_errors_total", Help: "Requests whose rate-limit store could not answer, by limiter and the policy applied (open, closed).",
		}, []string{"limiter", "policy"}),
		GuardDenials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_guard_denials_total", Help: "Requests refused by network rules, by scope (global, route, feed) and reason.",
		}, []string{"scope", "reason"}),
		SecretRefresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_secret_refresh_total", Help: "Secret reads by result (ok, rotated, error).",
		}, []string{"result"}),
		Logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_logins_total", Help: "Login attempts by result.",
		}, []string{"result"}),
		UpstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_upstream_requests_total", Help: "REST requests forwarded to upstreams, by upstream and status code.",
		}, []string{"upstream", "code"}),
		UpstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tickgate_upstream_request_duration_seconds", Help: "Upstream REST latency.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"upstream"}),
		WSClients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tickgate_ws_clients", Help: "Browser WebSocket connections open.",
		}),
		WSClientsByFeed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tickgate_ws_feed_clients", Help: "Browser WebSocket connections open, by feed.",
		}, []string{"feed"}),
		UpstreamWSConnections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tickgate_upstream_ws_connections", Help: "Authenticated upstream WebSocket connections, by feed.",
		}, []string{"feed"}),
		WSSubscriptions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tickgate_ws_subscriptions", Help: "Distinct symbols subscribed upstream, by feed.",
		}, []string{"feed"}),
		WSMessagesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_ws_messages_in_total", Help: "Vendor data messages received, by feed.",
		}, []string{"feed"}),
		WSMessagesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_ws_frames_out_total", Help: "Data frames sent to browsers, by feed.",
		}, []string{"feed"}),
		WSDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_ws_dropped_total", Help: "Messages not delivered to a browser, by feed and reason (conflated: replaced by a newer tick for a slow browser; slow_client; unroutable; key_guard).",
		}, []string{"feed", "reason"}),
		WSReconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_ws_upstream_reconnects_total", Help: "Upstream WebSocket reconnects, by feed.",
		}, []string{"feed"}),
		Anomalies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickgate_anomalies_total", Help: "Clients (IP or user) that crossed an anomaly threshold within the window, by kind.",
		}, []string{"kind"}),
	}).init()
}
