package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// SecretAge is one held vendor key version's age, for
// tickgate_secret_age_seconds.
type SecretAge struct {
	Secret  string // the secret's name, never its value
	Seconds float64
}

// secretAgeCollector reads the ages at scrape time, so the metric is
// never stale and needs no ticker.
type secretAgeCollector struct {
	desc *prometheus.Desc
	ages func() []SecretAge
}

// RegisterSecretAge exports tickgate_secret_age_seconds{secret}: how long
// ago the version of each vendor key in use was created (providers that
// track versions only: AWS Secrets Manager).
func RegisterSecretAge(reg prometheus.Registerer, ages func() []SecretAge) error {
	return reg.Register(&secretAgeCollector{
		desc: prometheus.NewDesc("tickgate_secret_age_seconds",
			"Age of the vendor key version in use, from its creation in the secrets provider.", []string{"secret"}, nil),
		ages: ages,
	})
}

func (c *secretAgeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *secretAgeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, a := range c.ages() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, a.Seconds, a.Secret)
	}
}

// RegisterSessions exports tickgate_sessions{store}: the sessions held
// in a store that can count them cheaply (the memory store), read at
// scrape time. The Redis store is shared by the replicas and has no
// cheap count; its sessions are not exported.
func RegisterSessions(reg prometheus.Registerer, store string, count func() int) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "tickgate_sessions",
		Help:        "Sessions held in the session store, by store (memory only).",
		ConstLabels: prometheus.Labels{"store": store},
	}, func() float64 { return float64(count()) }))
}
