package config

import (
	"strconv"
	"time"
)

// AnomalySettings are the thresholds of the anomaly signals (issue 9,
// BRIEF sections 2 and 3): when one client IP or one user crosses one
// within Window, tickgate logs a warning (audit=true) and counts
// tickgate_anomalies_total{kind}. A threshold of 0 turns that signal off.
type AnomalySettings struct {
	Window        time.Duration // TICKGATE_ANOMALY_WINDOW
	Unauthorized  int           // TICKGATE_ANOMALY_UNAUTHORIZED: 401 answers
	RateLimited   int           // TICKGATE_ANOMALY_RATE_LIMITED: 429 answers
	LoginFailures int           // TICKGATE_ANOMALY_LOGIN_FAILURES: failed logins
	WSConnects    int           // TICKGATE_ANOMALY_WS_CONNECTS: WebSocket connects (reconnect storms)
}

func anomalyFromEnv(get func(string) string, p *Problems) AnomalySettings {
	var a AnomalySettings
	v := get("TICKGATE_ANOMALY_WINDOW")
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second || d > 24*time.Hour {
		p.Addf("TICKGATE_ANOMALY_WINDOW: %q is not a duration from 1s to 24h (e.g. 1m)", v)
	}
	a.Window = d
	count := func(name string) int {
		v := get(name)
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			p.Addf("%s: %q is not a whole number from 0 (off) to 1000000", name, v)
			return 0
		}
		return n
	}
	a.Unauthorized = count("TICKGATE_ANOMALY_UNAUTHORIZED")
	a.RateLimited = count("TICKGATE_ANOMALY_RATE_LIMITED")
	a.LoginFailures = count("TICKGATE_ANOMALY_LOGIN_FAILURES")
	a.WSConnects = count("TICKGATE_ANOMALY_WS_CONNECTS")
	return a
}
