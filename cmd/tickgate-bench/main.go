// Command tickgate-bench measures what tickgate costs in front of a
// market-data vendor, on loopback, and prints one "name: value" line per
// figure. scripts/bench.sh builds it with tickgate and marketsim and runs
// it; see the README's Benchmarks section for what each figure means.
//
//	tickgate-bench -tickgate BIN -marketsim BIN [-nginx BIN] [-quick]
//
// It starts marketsim (REST budget off), a bare httputil.ReverseProxy
// that adds the key (this binary, "bare-proxy"), tickgate with a YAML
// config pointing at marketsim, and nginx when given; sends the same REST
// load through each; then opens simulated browsers on tickgate's
// WebSocket relay. Everything listens on 127.0.0.1 and is stopped at the
// end; runs are bounded in connections and time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if len(os.Args) > 1 && os.Args[1] == "bare-proxy" {
		err = runBareProxy(ctx, os.Args[2:], os.Getenv("BENCH_SIM_KEY"), os.Stdout)
	} else {
		err = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "tickgate-bench: "+err.Error())
		os.Exit(1)
	}
}

// run is the whole benchmark: figures go to stdout, progress and skip
// notes to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	b, err := newBench(cfg, stdout, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	return b.run(ctx)
}
