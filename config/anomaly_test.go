package config

import (
	"strings"
	"testing"
	"time"
)

func TestAnomalySettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want AnomalySettings
		err  string
	}{
		{env: nil, want: AnomalySettings{Window: time.Minute, Unauthorized: 20, RateLimited: 50, LoginFailures: 10, WSConnects: 30}},
		{env: map[string]string{"TICKGATE_ANOMALY_WINDOW": "5m", "TICKGATE_ANOMALY_WS_CONNECTS": "0"},
			want: AnomalySettings{Window: 5 * time.Minute, Unauthorized: 20, RateLimited: 50, LoginFailures: 10}},
		{env: map[string]string{"TICKGATE_ANOMALY_WINDOW": "0s"}, err: "TICKGATE_ANOMALY_WINDOW"},
		{env: map[string]string{"TICKGATE_ANOMALY_WINDOW": "soon"}, err: "TICKGATE_ANOMALY_WINDOW"},
		{env: map[string]string{"TICKGATE_ANOMALY_RATE_LIMITED": "-1"}, err: "TICKGATE_ANOMALY_RATE_LIMITED"},
		{env: map[string]string{"TICKGATE_ANOMALY_LOGIN_FAILURES": "many"}, err: "TICKGATE_ANOMALY_LOGIN_FAILURES"},
	} {
		s, err := FromEnv(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: err = %v, want one naming %s", tc.env, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if s.Anomaly != tc.want {
			t.Errorf("%v: %+v, want %+v", tc.env, s.Anomaly, tc.want)
		}
	}
}
