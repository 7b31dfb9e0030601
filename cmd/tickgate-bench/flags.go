package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// config is what the command line asks for.
type config struct {
	quick     bool
	tickgate  string // built cmd/tickgate
	marketsim string // built cmd/marketsim
	nginx     string // nginx binary; empty skips (d)

	rest         bool
	restConns    int
	restDuration time.Duration // per target, per round, throughput phase
	restLatency  time.Duration // per target, per round, latency phase (one request at a time)
	restRounds   int

	ws          bool
	wsClients   int
	wsSymbols   int     // per browser
	wsRate      float64 // vendor events per second per symbol
	ws2Clients  int     // second phase (full run): fewer browsers, higher rate; 0 skips it
	ws2Rate     float64 // its events per second per symbol
	wsWindow    time.Duration
	wsBatch     time.Duration // tickgate batch window; 0 keeps its default
	dialWorkers int
	profileDir  string // where to save tickgate's profiles (idle WebSocket heap and goroutines, REST CPU); "" skips
}

// Bounds that keep a typo from turning the benchmark into a stress test
// of the machine.
const (
	maxWSClients = 50_000
	maxRESTConns = 1024
	maxDuration  = 10 * time.Minute
	universe     = 100 // marketsim's default symbols
)

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("tickgate-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tickgate-bench -tickgate BIN -marketsim BIN [-nginx BIN] [-quick] [flags]\n\n"+
			"Loopback benchmarks of tickgate (see scripts/bench.sh). Flags left at 0 take the\n"+
			"full-run default, or the quick one with -quick.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.BoolVar(&c.quick, "quick", false, "a run of about a minute (1,000 browsers, short phases)")
	fs.StringVar(&c.tickgate, "tickgate", "", "path of the built cmd/tickgate (required)")
	fs.StringVar(&c.marketsim, "marketsim", "", "path of the built cmd/marketsim (required)")
	fs.StringVar(&c.nginx, "nginx", "", "path of nginx; empty skips the nginx comparison")
	fs.BoolVar(&c.rest, "rest", true, "run the REST benchmark")
	fs.IntVar(&c.restConns, "rest-conns", 0, "concurrent requests in the throughput phase (default 32)")
	fs.DurationVar(&c.restDuration, "rest-duration", 0, "throughput phase per target and round (default 10s, quick 4s)")
	fs.DurationVar(&c.restLatency, "rest-latency", 0, "latency phase per target and round, one request at a time (default 4s, quick 2s)")
	fs.IntVar(&c.restRounds, "rest-rounds", 0, "rounds over the targets, interleaved so drift hits all alike (default 3, quick 1)")
	fs.BoolVar(&c.ws, "ws", true, "run the WebSocket benchmark")
	fs.IntVar(&c.wsClients, "ws-clients", 0, "simulated browsers (default 10000, quick 1000)")
	fs.IntVar(&c.wsSymbols, "ws-symbols", 5, "symbols per browser, out of marketsim's 100")
	fs.Float64Var(&c.wsRate, "ws-rate", 0, "vendor events per second per symbol (default 1: 10,000 browsers x 5 symbols get 50,000 events/s; quick 2)")
	fs.IntVar(&c.ws2Clients, "ws2-clients", -1, "browsers of the second WebSocket phase, ws2.* (default 5000 in the full run, none in quick; 0 skips it)")
	fs.Float64Var(&c.ws2Rate, "ws2-rate", 4, "events per second per symbol of the second phase (default 4: 5,000 browsers x 5 symbols get 100,000 events/s)")
	fs.DurationVar(&c.wsWindow, "ws-window", 0, "measurement window (default 30s, quick 10s)")
	fs.DurationVar(&c.wsBatch, "ws-batch", 0, "tickgate's batch window for the feed (default: tickgate's own, 25ms)")
	fs.IntVar(&c.dialWorkers, "dial-workers", 32, "concurrent logins and WebSocket dials")
	fs.StringVar(&c.profileDir, "profile-dir", "", "save tickgate's profiles (admin /debug/pprof/) into this directory: PREFIX-idle-{heap,goroutine}.pb.gz with every browser connected and idle, and rest-tickgate-cpu.pb.gz from one more REST throughput phase")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.tickgate == "" || c.marketsim == "" {
		return c, errors.New("-tickgate and -marketsim are required (scripts/bench.sh builds them)")
	}
	def := func(v *time.Duration, full, quick time.Duration) {
		if *v == 0 {
			*v = full
			if c.quick {
				*v = quick
			}
		}
	}
	defInt := func(v *int, full, quick int) {
		if *v == 0 {
			*v = full
			if c.quick {
				*v = quick
			}
		}
	}
	defInt(&c.restConns, 32, 32)
	defInt(&c.restRounds, 3, 1)
	defInt(&c.wsClients, 10_000, 1_000)
	def(&c.restDuration, 10*time.Second, 4*time.Second)
	def(&c.restLatency, 4*time.Second, 2*time.Second)
	def(&c.wsWindow, 30*time.Second, 10*time.Second)
	if c.wsRate == 0 {
		c.wsRate = 1
		if c.quick {
			c.wsRate = 2
		}
	}
	if c.ws2Clients < 0 {
		c.ws2Clients = 5_000
		if c.quick || !c.ws {
			c.ws2Clients = 0
		}
	}
	switch {
	case c.restConns < 1 || c.restConns > maxRESTConns:
		return c, fmt.Errorf("-rest-conns must be 1..%d", maxRESTConns)
	case c.restRounds < 1 || c.restRounds > 20:
		return c, errors.New("-rest-rounds must be 1..20")
	case c.wsClients < 1 || c.wsClients > maxWSClients:
		return c, fmt.Errorf("-ws-clients must be 1..%d", maxWSClients)
	case c.wsSymbols < 1 || c.wsSymbols > universe:
		return c, fmt.Errorf("-ws-symbols must be 1..%d", universe)
	case !(c.wsRate > 0 && c.wsRate <= 1000) || !(c.ws2Rate > 0 && c.ws2Rate <= 1000):
		return c, errors.New("-ws-rate and -ws2-rate must be above 0 and at most 1000 events per second per symbol")
	case c.ws2Clients > maxWSClients:
		return c, fmt.Errorf("-ws2-clients must be 0..%d", maxWSClients)
	case c.wsBatch < 0:
		return c, errors.New("-ws-batch must not be negative")
	case c.dialWorkers < 1 || c.dialWorkers > 1024:
		return c, errors.New("-dial-workers must be 1..1024")
	}
	if c.profileDir != "" {
		if fi, err := os.Stat(c.profileDir); err != nil || !fi.IsDir() {
			return c, fmt.Errorf("-profile-dir %q is not an existing directory", c.profileDir)
		}
	}
	for name, d := range map[string]time.Duration{"-rest-duration": c.restDuration, "-rest-latency": c.restLatency, "-ws-window": c.wsWindow} {
		if d < 100*time.Millisecond || d > maxDuration {
			return c, fmt.Errorf("%s must be from 100ms to %s", name, maxDuration)
		}
	}
	return c, nil
}
