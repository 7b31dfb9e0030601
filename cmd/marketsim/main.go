// Command marketsim runs the simulated market-data vendor as its own
// process, for demos, end-to-end tests and benchmarks:
//
//	go run ./cmd/marketsim -addr 127.0.0.1:7070 -key K
//
// Every knob of marketsim.Options is a flag (go run ./cmd/marketsim -h).
// Keys come from -key, repeated or comma separated; they are never printed.
// SIGINT or SIGTERM shut it down gracefully (WebSockets get 1001).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	tgconfig "github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/marketsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "marketsim:", strings.TrimPrefix(err.Error(), "marketsim: "))
		os.Exit(1)
	}
}

// config is what the command line asks for.
type config struct {
	addr      string
	public    bool
	opts      marketsim.Options
	dropEvery time.Duration
	logLevel  slog.Level
}

// keyList collects -key values, repeated or comma separated. Set never
// fails: the flag package would quote the value, a key, in its error;
// marketsim.New validates keys and names only their position.
type keyList []string

func (k *keyList) String() string { return fmt.Sprintf("%d keys", len(*k)) }

func (k *keyList) Set(v string) error {
	*k = append(*k, strings.Split(v, ",")...)
	return nil
}

// parseFlags parses args into a config; usage and flag errors go to
// stderr.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var (
		c       config
		keys    keyList
		symbols string
		policy  string
		level   string
	)
	o := &c.opts
	fs := flag.NewFlagSet("marketsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: marketsim -key K [flags]\n\nThe simulated market-data vendor (REST on /v1/..., WebSocket on /v1/stream).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.addr, "addr", "127.0.0.1:7070", "listen address (loopback only unless -public)")
	fs.BoolVar(&c.public, "public", false, "allow a non-loopback -addr: the simulated vendor accepts its test keys from anyone who reaches it")
	fs.Var(&keys, "key", "valid api key; repeat the flag or separate keys with commas (required)")
	fs.StringVar(&symbols, "symbols", "", "comma-separated symbol universe (default: 100 tickers such as AAPL, MSFT, TSLA, SPY, BTCUSD, EURUSD)")
	fs.Int64Var(&o.Seed, "seed", 0, "seed of the price walks and injected faults")
	fs.Float64Var(&o.RESTRate, "rate", marketsim.DefaultRESTRate, "per-key REST budget in requests per second; negative disables it")
	fs.IntVar(&o.RESTBurst, "burst", marketsim.DefaultRESTBurst, "per-key REST burst")
	fs.DurationVar(&o.AuthTimeout, "auth-timeout", marketsim.DefaultAuthTimeout, "time a WebSocket has to authenticate (then close 4002)")
	fs.IntVar(&o.ConnCap, "cap", marketsim.DefaultConnCap, "authenticated WebSocket connections per key; negative means no cap")
	fs.StringVar(&policy, "cap-policy", string(marketsim.DefaultCapPolicy), "what happens past -cap: refuse_new or evict_old (close 4003)")
	fs.IntVar(&o.MaxSymbolsPerConn, "max-symbols", marketsim.DefaultMaxSymbolsPerConn, "symbols per WebSocket connection; negative means no limit")
	fs.IntVar(&o.MaxClientMsgsPerSec, "max-msgs", marketsim.DefaultMaxClientMsgsPerSec, "client messages per second before close 4008; negative means no limit")
	fs.Float64Var(&o.EventsPerSecond, "events", marketsim.DefaultEventsPerSecond, "data events per second per subscribed symbol")
	fs.DurationVar(&o.TickInterval, "tick", marketsim.DefaultTickInterval, "how often data frames are sent")
	fs.DurationVar(&o.PingInterval, "ping", marketsim.DefaultPingInterval, "server ping interval; negative disables pings")
	fs.DurationVar(&o.PongTimeout, "pong-timeout", marketsim.DefaultPongTimeout, "time a ping waits for its pong (then close 4004)")
	fs.IntVar(&o.OutQueue, "queue", marketsim.DefaultOutQueue, "outbound queue per connection in frames (overflow: close 4005)")
	fs.IntVar(&o.MaxFrameBytes, "max-frame", marketsim.DefaultMaxFrameBytes, "largest data frame in bytes")
	fs.DurationVar(&o.WriteTimeout, "write-timeout", marketsim.DefaultWriteTimeout, "timeout of every socket write")
	fs.DurationVar(&o.MaxLifetime, "lifetime", 0, "close every WebSocket with 1001 after this long (0: never)")
	fs.BoolVar(&o.ErrorsIn200, "errors-in-200", false, "answer 4xx errors with HTTP 200 and the error in the body")
	fs.DurationVar(&o.Latency, "latency", 0, "delay added to every HTTP answer")
	fs.Float64Var(&o.FailRate, "fail-rate", 0, "probability (0-1) of an injected 503")
	fs.Float64Var(&o.ResetRate, "reset-rate", 0, "probability (0-1) of an injected connection reset")
	fs.StringVar(&o.PublicURL, "public-url", "", "absolute base URL for next_url and redirects (default: from the request's Host)")
	fs.DurationVar(&c.dropEvery, "drop-every", 0, "drop every WebSocket connection this often, without close frame (0: never)")
	fs.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if len(keys) == 0 {
		return c, errors.New("at least one -key is required")
	}
	if host, _, err := net.SplitHostPort(c.addr); err != nil {
		return c, fmt.Errorf("-addr %q is not host:port", c.addr)
	} else if !c.public && !tgconfig.IsLoopbackHost(host) {
		return c, fmt.Errorf("-addr %q is not a loopback address; the simulator is a test tool: add -public to expose it anyway", c.addr)
	}
	if c.dropEvery < 0 {
		return c, errors.New("-drop-every must not be negative")
	}
	if err := c.logLevel.UnmarshalText([]byte(level)); err != nil {
		return c, fmt.Errorf("-log-level %q is not debug, info, warn or error", level)
	}
	o.Keys = keys
	if symbols != "" {
		o.Symbols = strings.Split(symbols, ",")
	}
	o.CapPolicy = marketsim.CapPolicy(policy)
	return c, nil
}

// run is the whole program: it serves until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.logLevel}))
	c.opts.Logger = log
	sim, err := marketsim.New(c.opts)
	if err != nil {
		return err
	}
	url, err := sim.Start(c.addr)
	if err != nil {
		_ = sim.Close()
		return err
	}
	fmt.Fprintf(stdout, "marketsim listening on %s (stream %s)\n", url, sim.StreamURL())
	log.Info("marketsim: serving", "symbols", len(sim.Symbols()), "keys", len(c.opts.Keys))
	if host, _, _ := net.SplitHostPort(c.addr); !tgconfig.IsLoopbackHost(host) {
		log.Warn("marketsim: EXPOSED with -public on a non-loopback address; it is a test tool and accepts its keys from anyone who reaches it", "addr", c.addr)
	}

	var drops <-chan time.Time
	if c.dropEvery > 0 {
		t := time.NewTicker(c.dropEvery)
		defer t.Stop()
		drops = t.C
	}
	for {
		select {
		case <-ctx.Done():
			log.Info("marketsim: shutting down")
			return sim.Close()
		case <-drops:
			sim.DropAll()
		}
	}
}
