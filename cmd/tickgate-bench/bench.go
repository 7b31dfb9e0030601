package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/tickgate/tickgate/session"
)

// bench holds what every phase shares: the temporary directory, the
// simulated vendor and its key, and the benchmark user.
type bench struct {
	cfg            config
	stdout, stderr io.Writer
	dir            string // temporary: configs, logs, the users file
	key            string // the simulated vendor's key, random per run
	password       string // the benchmark user's password, random per run
	self           string // this executable, for bare-proxy

	procs []*proc // stopped by close, last first
}

const (
	// highLimit is the rate limit of every limiter in the benchmark: far
	// above what two cores serve, and within what go-limiter's memory
	// store refills correctly (see startTickgate).
	highLimit = "30000/1s"
	benchUser = "bench"
	feedName  = "bench"
)

func newBench(cfg config, stdout, stderr io.Writer) (*bench, error) {
	for _, p := range []string{cfg.tickgate, cfg.marketsim} {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			return nil, fmt.Errorf("%s is not a built binary", p)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tickgate-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, stdout: stdout, stderr: stderr, dir: dir, self: self,
		key: "bench-" + randomHex(16), password: randomHex(16)}
	// Login cost is not what is measured, and 10,000 browsers log in: the
	// benchmark user's hash uses argon2id's minimum cost instead of
	// OWASP's 19 MiB (which tickgate's hash-password uses).
	hash, err := session.HashPasswordWith(b.password, session.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		b.close()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte(benchUser+":"+hash+"\n"), 0o600); err != nil {
		b.close()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "empty.env"), nil, 0o600); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func randomHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(buf)
}

// close stops every process started and removes the directory.
func (b *bench) close() {
	for i := len(b.procs) - 1; i >= 0; i-- {
		b.procs[i].stop()
	}
	b.procs = nil
	_ = os.RemoveAll(b.dir)
}

// note writes a progress line to stderr.
func (b *bench) note(format string, args ...any) {
	fmt.Fprintf(b.stderr, "# "+format+"\n", args...)
}

// fig prints one figure.
func (b *bench) fig(name string, format string, v any) {
	fmt.Fprintf(b.stdout, "%s: "+format+"\n", name, v)
}

// baseEnv is the whole environment of a child: nothing of the caller's
// (a developer's TICKGATE_* or proxy variables must not change the
// figures) but PATH.
func (b *bench) baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + b.dir}
}

func (b *bench) run(ctx context.Context) error {
	b.fig("machine.cores", "%d", runtime.NumCPU())
	b.fig("machine.gomaxprocs", "%d", runtime.GOMAXPROCS(0))
	b.fig("run.mode", "%s", map[bool]string{true: "quick", false: "full"}[b.cfg.quick])
	// Other work on the machine moves every figure; say how busy it was.
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(l)); len(f) > 0 {
			b.fig("machine.loadavg_1m_at_start", "%s", f[0])
		}
	}

	if b.cfg.rest {
		if err := b.restPhase(ctx); err != nil {
			return fmt.Errorf("REST: %w", err)
		}
	}
	if b.cfg.ws {
		if err := b.wsPhase(ctx, "ws", b.cfg.wsClients, b.cfg.wsRate); err != nil {
			return fmt.Errorf("WebSocket: %w", err)
		}
	}
	if b.cfg.ws2Clients > 0 {
		if err := b.wsPhase(ctx, "ws2", b.cfg.ws2Clients, b.cfg.ws2Rate); err != nil {
			return fmt.Errorf("WebSocket (ws2): %w", err)
		}
	}
	return nil
}

// startSim starts a marketsim process with its REST budget and its
// connection cap off, publishing rate events per second per symbol.
func (b *bench) startSim(ctx context.Context, rate float64) (*proc, string, error) {
	args := []string{"-addr", "127.0.0.1:0", "-key", b.key, "-rate", "-1", "-cap", "-1",
		"-events", fmt.Sprint(rate), "-log-level", "warn"}
	p, u, err := startProc(ctx, "marketsim", b.cfg.marketsim, args, b.baseEnv(), b.dir, "marketsim listening on")
	if err != nil {
		return nil, "", err
	}
	b.procs = append(b.procs, p)
	return p, u, nil
}

// tickgateConfig is the YAML of the tickgate under test: one upstream and
// one feed on marketsim, with no vendor budget, no cache and no request
// coalescing, so that every request reaches the vendor as it does through
// the bare proxy and nginx.
func (b *bench) tickgateConfig(simURL string) string {
	batch := ""
	if b.cfg.wsBatch > 0 {
		batch = fmt.Sprintf("    batch_window: %s\n", b.cfg.wsBatch)
	}
	ws := "ws" + strings.TrimPrefix(simURL, "http")
	return fmt.Sprintf(`upstreams:
  %[1]s:
    base_url: %[2]s
    key: {secret: BENCH_SIM_KEY, placement: "query:apikey"}
    routes: [{methods: [GET], paths: ["/v1/quote/*"]}]
    coalesce: false
feeds:
  %[1]s:
    url: %[3]s/v1/stream
    key: {secret: BENCH_SIM_KEY}
    adapter: {preset: marketsim}
%[4]sguard:
  ws: {connects_per_ip: %[5]s, conns_per_ip: 1000000}
`, feedName, simURL, ws, batch, highLimit)
}

// startTickgate starts a fresh tickgate process in front of the
// marketsim at simURL and returns it with its base URL (also the Origin
// its pages have).
func (b *bench) startTickgate(ctx context.Context, simURL string) (*proc, string, error) {
	cfgPath := filepath.Join(b.dir, "tickgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(b.tickgateConfig(simURL)), 0o600); err != nil {
		return nil, "", err
	}
	env := append(b.baseEnv(),
		"TICKGATE_ENV_FILE="+filepath.Join(b.dir, "empty.env"),
		"TICKGATE_ADDR=127.0.0.1:0",
		"TICKGATE_ADMIN_ADDR=127.0.0.1:0",
		"TICKGATE_CONFIG="+cfgPath,
		"TICKGATE_USERS_FILE="+filepath.Join(b.dir, "users"),
		// Limits stay in the chain, set high enough never to refuse.
		// Not higher: go-limiter's memory store refills a window with
		// interval/tokens tokens, not tokens, once tokens passes
		// sqrt(interval in ns) (31,622 for 1s), so "1000000/1s" would
		// allow only 1,000 per second after the first.
		"TICKGATE_LIMIT_IP="+highLimit,
		"TICKGATE_LIMIT_SESSION="+highLimit,
		"TICKGATE_LIMIT_LOGIN="+highLimit,
		"TICKGATE_LOG_FORMAT=json",
		"TICKGATE_LOG_LEVEL=info",
		"BENCH_SIM_KEY="+b.key,
	)
	p, u, err := startProc(ctx, "tickgate", b.cfg.tickgate, nil, env, b.dir, "tickgate: open ")
	if err != nil {
		return nil, "", err
	}
	b.procs = append(b.procs, p)
	return p, strings.TrimSuffix(u, "/"), nil
}

// ratio returns a/b, or NaN when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
