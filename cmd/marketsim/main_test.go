package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/tickgate/tickgate/marketsim"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c config)
	}{
		{"defaults", []string{"-key", "K"}, func(t *testing.T, c config) {
			o := c.opts
			if c.addr != "127.0.0.1:7070" || o.RESTRate != 20 || o.RESTBurst != 40 || o.ConnCap != 1 ||
				o.CapPolicy != marketsim.RefuseNew || o.EventsPerSecond != 20 || o.PingInterval != 10*time.Second ||
				o.PongTimeout != 30*time.Second || o.AuthTimeout != 5*time.Second || o.Symbols != nil || c.dropEvery != 0 {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{"keys repeated and comma separated", []string{"-key", "A", "-key", "B,C"}, func(t *testing.T, c config) {
			if got := strings.Join(c.opts.Keys, " "); got != "A B C" {
				t.Errorf("keys = %q", got)
			}
		}},
		{"every knob", []string{
			"-key=K", "-addr", ":0", "-public", "-symbols", "AAPL,MSFT", "-seed", "7", "-rate", "-1", "-burst", "5",
			"-auth-timeout", "1s", "-cap", "2", "-cap-policy", "evict_old", "-max-symbols", "50", "-max-msgs", "5",
			"-events", "1000", "-tick", "5ms", "-ping", "2s", "-pong-timeout", "3s", "-queue", "8", "-max-frame", "4096",
			"-write-timeout", "4s", "-lifetime", "1h", "-errors-in-200", "-latency", "10ms", "-fail-rate", "0.1",
			"-reset-rate", "0.2", "-public-url", "http://vendor:1", "-drop-every", "30s", "-log-level", "debug",
		}, func(t *testing.T, c config) {
			o := c.opts
			got := []any{c.addr, strings.Join(o.Symbols, ","), o.Seed, o.RESTRate, o.RESTBurst, o.AuthTimeout, o.ConnCap,
				o.CapPolicy, o.MaxSymbolsPerConn, o.MaxClientMsgsPerSec, o.EventsPerSecond, o.TickInterval, o.PingInterval,
				o.PongTimeout, o.OutQueue, o.MaxFrameBytes, o.WriteTimeout, o.MaxLifetime, o.ErrorsIn200, o.Latency,
				o.FailRate, o.ResetRate, o.PublicURL, c.dropEvery, c.logLevel.String()}
			want := []any{":0", "AAPL,MSFT", int64(7), -1.0, 5, time.Second, 2,
				marketsim.EvictOld, 50, 5, 1000.0, 5 * time.Millisecond, 2 * time.Second,
				3 * time.Second, 8, 4096, 4 * time.Second, time.Hour, true, 10 * time.Millisecond,
				0.1, 0.2, "http://vendor:1", 30 * time.Second, "DEBUG"}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("field %d = %v, want %v", i, got[i], want[i])
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no key", nil, "at least one -key is required"},
		{"unknown flag", []string{"-key", "K", "-colour", "red"}, "flag provided but not defined: -colour"},
		{"extra argument", []string{"-key", "K", "serve"}, `unexpected argument "serve"`},
		{"bad duration", []string{"-key", "K", "-ping", "often"}, `invalid value "often" for flag -ping`},
		{"bad number", []string{"-key", "K", "-cap", "one"}, `invalid value "one" for flag -cap`},
		{"bad log level", []string{"-key", "K", "-log-level", "loud"}, `-log-level "loud" is not`},
		{"negative drop", []string{"-key", "K", "-drop-every", "-1s"}, "-drop-every must not be negative"},
		{"public address", []string{"-key", "K", "-addr", "0.0.0.0:7070"}, `-addr "0.0.0.0:7070" is not a loopback address`},
		{"all interfaces", []string{"-key", "K", "-addr", ":7070"}, "is not a loopback address"},
		{"bad address", []string{"-key", "K", "-addr", "nonsense"}, `-addr "nonsense" is not host:port`},
		// Caught by marketsim.New, through run.
		{"bad policy", []string{"-key", "K", "-cap-policy", "lottery"}, "CapPolicy"},
		{"bad fail rate", []string{"-key", "K", "-fail-rate", "2"}, "FailRate must be between 0 and 1"},
		{"empty key", []string{"-key", "secret-one,"}, "key 2 must be"},
		{"key with space", []string{"-key", "secret two"}, "key 1 contains a space"},
		{"bad symbol", []string{"-key", "K", "-symbols", "AAPL,EUR/USD"}, "invalid symbol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, tt.args...), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v, want an error containing %q", err, tt.want)
			}
			for _, out := range []string{err.Error(), stdout.String(), stderr.String()} {
				if strings.Contains(out, "secret") {
					t.Errorf("output reveals a key: %q", out)
				}
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, io.Discard, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -h = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"-cap-policy", "-errors-in-200", "-key"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("usage lacks %s", want)
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for the logger and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-key", "secret-key", "-log-level", "debug"}, outW, &stderr)
		outW.Close()
	}()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the banner: %v (stderr %s)", err, stderr.String())
	}
	fields := strings.Fields(line)
	if len(fields) < 4 || fields[1] != "listening" {
		t.Fatalf("banner %q", line)
	}
	base := fields[3]

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	resp, err := client.Get(base + "/v1/quote/AAPL?apikey=secret-key")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	tr.CloseIdleConnections()

	cancel()
	go func() { _, _ = io.Copy(io.Discard, outR) }() // drain anything else
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if strings.Contains(line+stderr.String(), "secret-key") {
		t.Errorf("output reveals the key:\n%s%s", line, stderr.String())
	}
}

func TestRunPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = run(context.Background(), []string{"-addr", ln.Addr().String(), "-key", "K"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("run = %v, want a listen error", err)
	}
}

func TestRunDropEvery(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-key", "K", "-drop-every", "50ms"}, outW, io.Discard)
		outW.Close()
	}()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	stream := strings.TrimSuffix(strings.Fields(line)[5], ")")
	dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
	defer dcancel()
	c, _, err := websocket.Dial(dctx, stream, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for {
		_, _, err := c.Read(dctx)
		if err != nil {
			if got := websocket.CloseStatus(err); got != -1 {
				t.Fatalf("closed with %v, want a drop without close frame", got)
			}
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run = %v", err)
	}
}
