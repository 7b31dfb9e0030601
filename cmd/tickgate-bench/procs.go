package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process under test: tickgate, marketsim, the bare proxy
// or nginx.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done

	mu    sync.Mutex
	tail  []string // its last output lines, for error messages
	lines int64
	ready chan string // receives the first URL after the ready marker
	mark  string
	admin string // tickgate's admin listener, from its "tickgate started" log line
}

const tailLines = 15

var (
	urlRE   = regexp.MustCompile(`https?://(127\.0\.0\.1|\[::1\]|localhost):[0-9]+`)
	adminRE = regexp.MustCompile(`"admin_addr":"(127\.0\.0\.1:[0-9]+)"`)
)

// startProc starts path with args and env in dir, and waits until a line
// of its output contains marker followed by a loopback URL, which it
// returns. marker "" waits for nothing (the caller polls instead).
func startProc(ctx context.Context, name, path string, args, env []string, dir, marker string) (*proc, string, error) {
	p := &proc{name: name, done: make(chan struct{}), ready: make(chan string, 1), mark: marker}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = env
	p.cmd.Dir = dir
	// The child dies with the benchmark, even when the benchmark is
	// killed.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, "", err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.drain(stdout) })
	wg.Go(func() { p.drain(stderr) })
	go func() {
		wg.Wait()
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	if marker == "" {
		return p, "", nil
	}
	select {
	case u := <-p.ready:
		return p, u, nil
	case <-p.done:
		return nil, "", fmt.Errorf("%s exited at start-up (%v):\n%s", name, p.err, p.lastLines())
	case <-time.After(60 * time.Second):
		p.stop()
		return nil, "", fmt.Errorf("%s did not say it was ready within 60s:\n%s", name, p.lastLines())
	case <-ctx.Done():
		p.stop()
		return nil, "", ctx.Err()
	}
}

// drain reads output lines for the whole life of the process, so a busy
// logger never blocks on a full pipe, keeping only the last few.
func (p *proc) drain(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.lines++
		if len(p.tail) == tailLines {
			p.tail = p.tail[1:]
		}
		p.tail = append(p.tail, line)
		if p.admin == "" {
			if m := adminRE.FindStringSubmatch(line); m != nil {
				p.admin = m[1]
			}
		}
		p.mu.Unlock()
		if p.mark != "" {
			if i := strings.Index(line, p.mark); i >= 0 {
				if u := urlRE.FindString(line[i:]); u != "" {
					select {
					case p.ready <- u:
					default:
					}
				}
			}
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

func (p *proc) lastLines() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "  " + strings.Join(p.tail, "\n  ")
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// alive returns an error when the process has exited.
func (p *proc) alive() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v):\n%s", p.name, p.err, p.lastLines())
	default:
		return nil
	}
}

// stop sends SIGTERM and waits up to 10s, then kills.
func (p *proc) stop() {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// adminAddr is tickgate's admin listener, or "" when it has not said.
func (p *proc) adminAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.admin
}
