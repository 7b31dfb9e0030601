package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/tickgate/tickgate/internal/loadgen"
	"github.com/tickgate/tickgate/marketsim"
)

// restTarget is one of the four ways to the vendor.
type restTarget struct {
	name   string // direct, bare, tickgate, nginx
	target loadgen.Target
	client *http.Client
	tput   loadgen.RESTResult // throughput phase, all rounds
	lat    loadgen.RESTResult // latency phase, all rounds
}

// restPhase sends the same REST load to marketsim directly (a), through
// the bare proxy (b), through tickgate (c) and through nginx (d), in
// interleaved rounds, and prints throughput ratios and added latency.
func (b *bench) restPhase(ctx context.Context) error {
	c := b.cfg
	sim, simURL, err := b.startSim(ctx, marketsim.DefaultEventsPerSecond)
	if err != nil {
		return err
	}
	defer sim.stop()
	bare, bareURL, err := startProc(ctx, "bare-proxy", b.self, []string{"bare-proxy", "-upstream", simURL},
		append(b.baseEnv(), "BENCH_SIM_KEY="+b.key), b.dir, "bare-proxy listening on")
	if err != nil {
		return err
	}
	b.procs = append(b.procs, bare)
	defer bare.stop()
	tg, tgURL, err := b.startTickgate(ctx, simURL)
	if err != nil {
		return err
	}
	defer tg.stop()
	ngURL := ""
	if c.nginx != "" {
		ng, u, err := b.startNginx(ctx, simURL)
		if err != nil {
			return fmt.Errorf("nginx: %w", err)
		}
		b.procs = append(b.procs, ng)
		defer ng.stop()
		ngURL = u
	} else {
		b.note("skipped: nginx comparison (nginx not found; on Debian: apt-get install nginx-light, or nginx)")
	}

	loginClient := loadgen.NewClient(1)
	cookie, err := loadgen.Login(ctx, loginClient, tgURL, tgURL, benchUser, b.password)
	if err != nil {
		return err
	}
	syms := marketsim.DefaultSymbols()
	urls := func(base, suffix string) []string {
		out := make([]string, len(syms))
		for i, s := range syms {
			out[i] = base + "/v1/quote/" + s + suffix
		}
		return out
	}
	targets := []*restTarget{
		{name: "direct", target: loadgen.Target{URLs: urls(simURL, "?apikey="+b.key)}},
		{name: "bare", target: loadgen.Target{URLs: urls(bareURL, "")}},
		{name: "tickgate", target: loadgen.Target{URLs: urls(tgURL+"/api/"+feedName, ""), Header: http.Header{"Cookie": {cookie}}, QuoteErrorCode: true}},
	}
	if ngURL != "" {
		targets = append(targets, &restTarget{name: "nginx", target: loadgen.Target{URLs: urls(ngURL, "")}})
	}
	for _, t := range targets {
		t.client = loadgen.NewClient(c.restConns)
	}

	run := func(t *restTarget, conns int, d time.Duration) (loadgen.RESTResult, error) {
		r, err := loadgen.RunREST(ctx, t.client, t.target, loadgen.RESTOptions{Concurrency: conns, Duration: d})
		if err != nil {
			return r, err
		}
		if err := ctx.Err(); err != nil {
			return r, err
		}
		if r.Errors > 0 {
			return r, fmt.Errorf("%s: %d of %d requests failed (first: %s)", t.name, r.Errors, r.Errors+r.Requests, r.FirstError)
		}
		if r.Requests == 0 {
			return r, fmt.Errorf("%s: no request completed", t.name)
		}
		return r, nil
	}
	b.note("REST: warming up %d targets", len(targets))
	for _, t := range targets {
		if _, err := run(t, c.restConns, time.Second); err != nil {
			return err
		}
	}
	for round := range c.restRounds {
		b.note("REST: round %d of %d (%s at %d concurrent, then %s one at a time, per target)", round+1, c.restRounds, c.restDuration, c.restConns, c.restLatency)
		for _, t := range targets {
			r, err := run(t, c.restConns, c.restDuration)
			if err != nil {
				return err
			}
			t.tput.Add(r)
		}
		for _, t := range targets {
			r, err := run(t, 1, c.restLatency)
			if err != nil {
				return err
			}
			t.lat.Add(r)
		}
	}
	if c.profileDir != "" {
		b.profileREST(ctx, tg, targets[2], func() error { _, err := run(targets[2], c.restConns, c.restDuration); return err })
	}
	if err := tg.alive(); err != nil {
		return err
	}

	rps := map[string]float64{}
	sum := map[string]loadgen.Summary{}
	for _, t := range targets {
		rps[t.name] = t.tput.Throughput()
		sum[t.name] = loadgen.Summarize(t.lat.Latencies)
		b.fig("rest."+t.name+"_rps", "%.0f", rps[t.name])
	}
	b.fig("rest.concurrency", "%d", c.restConns)
	b.fig("rest.throughput_ratio_vs_bare", "%.2f", ratio(rps["tickgate"], rps["bare"]))
	if ngURL != "" {
		b.fig("rest.throughput_ratio_vs_nginx", "%.2f", ratio(rps["tickgate"], rps["nginx"]))
		b.fig("rest.nginx_ratio_vs_direct", "%.2f", ratio(rps["nginx"], rps["direct"]))
	}
	b.fig("rest.bare_ratio_vs_direct", "%.2f", ratio(rps["bare"], rps["direct"]))
	b.fig("rest.tickgate_ratio_vs_direct", "%.2f", ratio(rps["tickgate"], rps["direct"]))
	d := sum["direct"]
	b.fig("rest.direct_p50_us", "%.0f", micros(d.P50))
	b.fig("rest.direct_p99_us", "%.0f", micros(d.P99))
	for _, t := range targets[1:] {
		s := sum[t.name]
		prefix := "rest." + t.name + "_"
		if t.name == "tickgate" {
			prefix = "rest."
		}
		b.fig(prefix+"added_p50_us", "%.0f", micros(s.P50-d.P50))
		b.fig(prefix+"added_p99_us", "%.0f", micros(s.P99-d.P99))
	}
	// What the chain adds over the bare proxy, whose own process hop is
	// most of the latency it adds.
	b.fig("rest.added_p50_us_vs_bare", "%.0f", micros(sum["tickgate"].P50-sum["bare"].P50))
	b.fig("rest.added_p99_us_vs_bare", "%.0f", micros(sum["tickgate"].P99-sum["bare"].P99))
	return nil
}

// profileREST records tickgate's CPU profile during one more throughput
// phase against it (not counted in the figures) into -profile-dir as
// rest-tickgate-cpu.pb.gz. A failure is a note.
func (b *bench) profileREST(ctx context.Context, tg *proc, t *restTarget, load func() error) {
	addr := tg.adminAddr()
	if addr == "" {
		b.note("tickgate did not log its admin address; CPU profile skipped")
		return
	}
	secs := max(1, min(int(b.cfg.restDuration/time.Second)-1, 25))
	file := filepath.Join(b.cfg.profileDir, "rest-tickgate-cpu.pb.gz")
	b.note("REST: profiling %s for %ds under load", t.name, secs)
	done := make(chan error, 1)
	go func() { done <- loadgen.SaveCPUProfile(ctx, loadgen.NewClient(1), addr, secs, file) }()
	if err := load(); err != nil {
		b.note("REST profile load: %v", err)
	}
	if err := <-done; err != nil {
		b.note("profile cpu: %v", err)
		return
	}
	b.note("saved %s", file)
}
