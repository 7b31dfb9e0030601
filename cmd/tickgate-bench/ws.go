package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tickgate/tickgate/internal/loadgen"
	"github.com/tickgate/tickgate/marketsim"
)

// wsPhase logs in one session per browser, connects the browsers to a
// fresh tickgate, subscribes each to its symbols while marketsim
// publishes, and prints connect time, delivery, latency, loss, memory and
// CPU.
//
// Each phase has its own marketsim, publishing rate events per second per
// symbol, and figures named prefix.*.
func (b *bench) wsPhase(ctx context.Context, prefix string, n int, rate float64) error {
	c := b.cfg
	sim, simURL, err := b.startSim(ctx, rate)
	if err != nil {
		return err
	}
	defer sim.stop()
	// Each browser is a descriptor here and one in tickgate (Go raises
	// both soft limits to the hard one at start-up).
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(n)+512 {
		return fmt.Errorf("the open-files limit (%d) is too low for %d browsers: raise it (ulimit -n, hard limit %d) or lower -ws-clients", lim.Cur, n, lim.Max)
	}
	tg, tgURL, err := b.startTickgate(ctx, simURL)
	if err != nil {
		return err
	}
	defer tg.stop()
	time.Sleep(500 * time.Millisecond) // let start-up allocation settle
	rss0, err := loadgen.ReadProc(tg.pid())
	if err != nil {
		return err
	}

	b.note("%s: logging in %d sessions", prefix, n)
	cookies := make([]string, n)
	client := loadgen.NewClient(c.dialWorkers)
	if err := parallel(ctx, n, c.dialWorkers, func(i int) error {
		ck, err := loadgen.Login(ctx, client, tgURL, tgURL, benchUser, b.password)
		cookies[i] = ck
		return err
	}); err != nil {
		return err
	}
	rssSessions, err := loadgen.ReadProc(tg.pid())
	if err != nil {
		return err
	}
	metSessions := b.scrape(ctx, tg)

	syms := marketsim.DefaultSymbols()
	cfgs := make([]loadgen.BrowserConfig, n)
	for i := range cfgs {
		cfgs[i] = loadgen.BrowserConfig{
			URL:     "ws" + strings.TrimPrefix(tgURL, "http") + "/ws/" + feedName,
			Origin:  tgURL,
			Cookie:  cookies[i],
			Symbols: pickSymbols(syms, c.wsSymbols, uint64(i)),
		}
	}
	b.note("%s: connecting %d browsers", prefix, n)
	win := &loadgen.Window{}
	dialCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	began := time.Now()
	browsers, err := loadgen.DialBrowsers(dialCtx, loadgen.NewClient(0), cfgs, c.dialWorkers, win)
	connectAll := time.Since(began)
	cancel()
	if err != nil {
		return fmt.Errorf("%w\n%s", err, tg.lastLines())
	}
	closed := false
	defer func() {
		if !closed {
			loadgen.CloseAll(browsers)
		}
	}()
	time.Sleep(2 * time.Second)
	rssIdle, err := loadgen.ReadProc(tg.pid())
	if err != nil {
		return err
	}
	metIdle := b.scrape(ctx, tg)
	if c.profileDir != "" {
		b.saveProfiles(ctx, tg, prefix+"-idle")
	}

	ref, err := loadgen.DialReference(ctx, loadgen.NewClient(1), "ws"+strings.TrimPrefix(simURL, "http")+"/v1/stream", b.key, syms, win)
	if err != nil {
		return err
	}
	b.note("%s: subscribing %d browsers to %d symbols each", prefix, n, c.wsSymbols)
	subCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	err = loadgen.SubscribeAll(subCtx, browsers, c.dialWorkers)
	cancel()
	if err != nil {
		ref.Close()
		return fmt.Errorf("%w\n%s", err, tg.lastLines())
	}

	// Measure by event timestamp from a moment after every subscription
	// is live; wait long enough past the end for the last batch to land.
	from := time.Now().Add(time.Second)
	to := from.Add(c.wsWindow)
	win.Set(from, to)
	b.note("%s: measuring for %s", prefix, c.wsWindow)
	if err := sleepCtx(ctx, time.Until(from)); err != nil {
		ref.Close()
		return err
	}
	pids := map[string]int{"tickgate": tg.pid(), "marketsim": sim.pid(), "loadgen": os.Getpid()}
	cpu0 := map[string]loadgen.ProcSample{}
	for k, pid := range pids {
		if cpu0[k], err = loadgen.ReadProc(pid); err != nil {
			ref.Close()
			return err
		}
	}
	if err := sleepCtx(ctx, time.Until(to)); err != nil {
		ref.Close()
		return err
	}
	metActive := b.scrape(ctx, tg)
	cpu1 := map[string]loadgen.ProcSample{}
	for k, pid := range pids {
		if cpu1[k], err = loadgen.ReadProc(pid); err != nil {
			ref.Close()
			return err
		}
	}
	drain := time.Second + c.wsBatch
	if err := sleepCtx(ctx, drain); err != nil {
		ref.Close()
		return err
	}
	if err := tg.alive(); err != nil {
		ref.Close()
		return err
	}
	closed = true
	res, err := loadgen.Collect(browsers, ref)
	if err != nil {
		return err
	}

	secs := c.wsWindow.Seconds()
	b.fig(prefix+".clients", "%d", n)
	b.fig(prefix+".symbols_per_client", "%d", c.wsSymbols)
	b.fig(prefix+".events_per_symbol_per_s", "%g", rate)
	b.fig(prefix+".connect_all_s", "%.1f", connectAll.Seconds())
	b.fig(prefix+".connect_p50_ms", "%.1f", millis(res.Connect.P50))
	b.fig(prefix+".connect_p99_ms", "%.1f", millis(res.Connect.P99))
	b.fig(prefix+".expected_per_s", "%.0f", float64(res.Expected)/secs)
	b.fig(prefix+".delivered_per_s", "%.0f", float64(res.Delivered)/secs)
	b.fig(prefix+".delivered_ratio", "%.4f", res.DeliveredRatio())
	b.fig(prefix+".lost", "%d", res.Lost)
	b.fig(prefix+".duplicated", "%d", res.Extra)
	b.fig(prefix+".unsubscribed_received", "%d", res.Unexpected)
	b.fig(prefix+".disconnected", "%d", res.Disconnected)
	b.fig(prefix+".p50_ms", "%.1f", millis(res.Latency.P50))
	b.fig(prefix+".p99_ms", "%.1f", millis(res.Latency.P99))
	b.fig(prefix+".max_ms", "%.1f", millis(res.Latency.Max))
	b.fig(prefix+".rss_kib_per_session", "%.1f", float64(rssSessions.RSSKiB-rss0.RSSKiB)/float64(n))
	b.fig(prefix+".rss_kib_per_conn", "%.1f", float64(rssIdle.RSSKiB-rssSessions.RSSKiB)/float64(n))
	b.fig(prefix+".rss_kib_per_conn_active", "%.1f", float64(cpu1["tickgate"].RSSKiB-rssSessions.RSSKiB)/float64(n))
	b.fig(prefix+".tickgate_rss_mib", "%.0f", float64(cpu1["tickgate"].RSSKiB)/1024)
	if metSessions != nil && metIdle != nil && metActive != nil {
		per := func(m map[string]float64, name string, unit float64) float64 {
			return (m[name] - metSessions[name]) / unit / float64(n)
		}
		b.fig(prefix+".goroutines_per_conn", "%.1f", per(metIdle, "go_goroutines", 1))
		b.fig(prefix+".heap_kib_per_conn", "%.1f", per(metIdle, "go_memstats_heap_inuse_bytes", 1024))
		b.fig(prefix+".stack_kib_per_conn", "%.1f", per(metIdle, "go_memstats_stack_inuse_bytes", 1024))
		b.fig(prefix+".upstream_connections", "%.0f", metActive["tickgate_upstream_ws_connections"])
	}
	for _, k := range []string{"tickgate", "marketsim", "loadgen"} {
		b.fig(prefix+"."+k+"_cpu_pct", "%.0f", loadgen.CPUPercent(cpu0[k], cpu1[k]))
	}
	for _, k := range []string{"tickgate", "loadgen"} {
		b.fig(prefix+"."+k+"_runq_wait_pct", "%.0f", loadgen.RunqWaitPercent(cpu0[k], cpu1[k]))
	}
	if res.Disconnected > 0 {
		b.note("%s: %d browsers were disconnected; first: %s", prefix, res.Disconnected, res.FirstDrop)
	}
	if len(res.ErrorCodes) > 0 {
		codes := make([]string, 0, len(res.ErrorCodes))
		for code, k := range res.ErrorCodes {
			codes = append(codes, fmt.Sprintf("%s x%d", code, k))
		}
		sort.Strings(codes)
		b.note("%s: error messages received: %s", prefix, strings.Join(codes, ", "))
	}
	return nil
}

// pickSymbols returns k distinct symbols of syms, chosen by a generator
// seeded with seed, so runs are repeatable.
func pickSymbols(syms []string, k int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 0x71c6))
	perm := rng.Perm(len(syms))
	out := make([]string, k)
	for i := range out {
		out[i] = syms[perm[i]]
	}
	return out
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first
// error; after an error no new call starts.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	var (
		next     atomic.Int64
		failed   atomic.Bool
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || failed.Load() || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("%d: %w", i+1, err); failed.Store(true) })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		return ctx.Err()
	}
	return firstErr
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// scrape reads the Go runtime and upstream series from tickgate's admin
// listener; nil (and a note) when it cannot.
func (b *bench) scrape(ctx context.Context, tg *proc) map[string]float64 {
	addr := tg.adminAddr()
	if addr == "" {
		b.note("tickgate did not log its admin address; memory breakdown skipped")
		return nil
	}
	m, err := loadgen.ScrapeMetrics(ctx, loadgen.NewClient(1), addr,
		"go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "tickgate_upstream_ws_connections")
	if err != nil {
		b.note("metrics: %v", err)
		return nil
	}
	return m
}

// saveProfiles saves tickgate's heap and goroutine profiles from its admin
// listener into -profile-dir as NAME-heap.pb.gz and NAME-goroutine.pb.gz,
// for `go tool pprof`. A failure is a note, not an error: the figures
// do not depend on it.
func (b *bench) saveProfiles(ctx context.Context, tg *proc, name string) {
	addr := tg.adminAddr()
	if addr == "" {
		b.note("tickgate did not log its admin address; profiles skipped")
		return
	}
	for _, kind := range []string{"heap", "goroutine"} {
		file := filepath.Join(b.cfg.profileDir, name+"-"+kind+".pb.gz")
		if err := loadgen.SaveProfile(ctx, loadgen.NewClient(1), addr, kind, file); err != nil {
			b.note("profile %s: %v", kind, err)
			continue
		}
		b.note("saved %s", file)
	}
}
