//go:build unix

package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tickgate/tickgate/marketsim"
)

// process is a tickgate running as its own OS process.
type process struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
}

// startProcess runs the tickgate binary bin with env and waits until it
// prints its URL.
func startProcess(t *testing.T, bin string, env map[string]string) *process {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, stderr: &syncBuffer{}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			_, _ = p.stderr.Write([]byte(line + "\n"))
			if m := openRE.FindStringSubmatch(line + "\n"); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case p.url = <-found:
	case <-time.After(60 * time.Second):
		t.Fatalf("tickgate process did not start: %s", p.stderr.String())
	}
	return p
}

// TestReplicaProcessKilled: three tickgate processes share one vendor
// connection (marketsim allows one per key and refuses the rest); the
// owner is killed with SIGKILL, so it releases nothing, and delivery
// resumes for the browsers of the two survivors within 10 s, on the
// sockets they already hold.
func TestReplicaProcessKilled(t *testing.T) {
	redisURL := testRedisURL(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "tickgate")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sim, err := marketsim.New(marketsim.Options{Keys: []string{testKey}, ConnCap: 1, CapPolicy: marketsim.RefuseNew})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	envFile, err := filepath.Abs("testdata/empty.env")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"TICKGATE_ADDR": "127.0.0.1:0", "TICKGATE_ADMIN_ADDR": "", "TICKGATE_ENV_FILE": envFile,
		"TICKGATE_LOG_FORMAT": "json", "TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword,
		"TICKGATE_DEMO_VENDOR_URL": sim.URL(), "TICKGATE_SESSION_STORE": "redis",
		"TICKGATE_REDIS_URL": redisURL, "TICKGATE_REDIS_PREFIX": testRedisPrefix(t, redisURL),
	}
	procs := make([]*process, 3)
	for i := range procs {
		procs[i] = startProcess(t, bin, env)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	socks := make([]*wsClient, len(procs))
	for i, p := range procs {
		b := newBrowser(t, p.url, &recorder{})
		login(t, b)
		socks[i] = openFeed(ctx, t, b, "SPY") // data on every replica: one vendor connection serves all
	}
	owner := -1
	for i, p := range procs {
		if strings.Contains(p.stderr.String(), "feed lease taken") {
			if owner >= 0 {
				t.Fatalf("replicas %d and %d both hold the feed lease", owner, i)
			}
			owner = i
		}
	}
	if owner < 0 {
		t.Fatal("no replica logged taking the feed lease")
	}

	killed := time.Now()
	if err := procs[owner].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, ws := range socks {
		if i == owner {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Data already on its way may still arrive; what counts is
			// data after the survivor noticed the owner was gone.
			rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
			defer rcancel()
			sawReconnecting := false
			for {
				m, err := ws.read(rctx)
				if err != nil {
					t.Errorf("survivor %d: no data after the owner was killed: %v\n%s", i, err, procs[i].stderr.String())
					return
				}
				if m.Type == "status" && m.Upstream == "reconnecting" {
					sawReconnecting = true
				}
				if sawReconnecting && m.Type == "data" && hasDataFor("SPY")(m) {
					took := time.Since(killed)
					t.Logf("survivor %d: data again %v after the kill", i, took.Round(time.Millisecond))
					if took > 10*time.Second {
						t.Errorf("survivor %d: delivery resumed after %v, want within 10s", i, took)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
}
