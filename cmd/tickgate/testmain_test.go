package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is an io.Writer safe for the program and the test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// instance is one tickgate started through run, as the real program.
type instance struct {
	url    string // http://127.0.0.1:port
	admin  string // http://127.0.0.1:port of the admin listener
	stderr *syncBuffer
	stop   func() error
}

var openRE = regexp.MustCompile(`tickgate: open (https?://[^\s/]+)/`)
var adminRE = regexp.MustCompile(`"admin_addr":"([^"]+)"`)

// start runs tickgate with env (on top of loopback defaults) and waits
// until it prints its URL.
func start(t *testing.T, env map[string]string) *instance {
	t.Helper()
	full := map[string]string{
		"TICKGATE_ADDR":       "127.0.0.1:0",
		"TICKGATE_ADMIN_ADDR": "127.0.0.1:0",
		"TICKGATE_LOG_FORMAT": "json",
		"TICKGATE_LOG_LEVEL":  "debug",
		"TICKGATE_ENV_FILE":   "testdata/empty.env",
	}
	for k, v := range env {
		full[k] = v
	}
	lookup := func(k string) (string, bool) { v, ok := full[k]; return v, ok }
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, lookup, strings.NewReader(""), io.Discard, stderr) }()
	inst := &instance{stderr: stderr}
	var once sync.Once
	var stopErr error
	inst.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = errors.New("tickgate did not stop within 30s")
			}
		})
		return stopErr
	}
	watchLog(t, stderr, full) // checks the log after the stop below (logs_test.go)
	t.Cleanup(func() {
		if err := inst.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out := stderr.String()
		if m := openRE.FindStringSubmatch(out); m != nil {
			inst.url = m[1]
			if a := adminRE.FindStringSubmatch(out); a != nil {
				inst.admin = "http://" + a[1]
			}
			return inst
		}
		select {
		case err := <-done:
			done <- err // for stop
			t.Fatalf("tickgate exited early: %v\n%s", err, out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("tickgate did not print its URL:\n%s", stderr.String())
	return nil
}

// recorder keeps every byte the client received: status line, headers and
// bodies, so a test can assert a secret appears in none of them.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.buf.WriteString(s)
	r.mu.Unlock()
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

type recordingTransport struct {
	rec  *recorder
	base http.RoundTripper
}

func (rt recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rt.base.RoundTrip(req)
	noteExchange(req, resp) // secrets for the whole-suite log scan (logs_test.go)
	if err != nil {
		return nil, err
	}
	var hdr strings.Builder
	fmt.Fprintf(&hdr, "%s\n", resp.Status)
	_ = resp.Header.Write(&hdr)
	rt.rec.add(hdr.String())
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		rt.rec.add(string(body))
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	return resp, nil
}

// browser is an HTTP client with a cookie jar and the page's Origin, as a
// browser on the tickgate page would send.
type browser struct {
	t      *testing.T
	base   string
	client *http.Client
	rec    *recorder
}

func newBrowser(t *testing.T, base string, rec *recorder) *browser {
	jar, _ := cookiejar.New(nil)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &browser{t: t, base: base, rec: rec, client: &http.Client{
		Jar:       jar,
		Transport: recordingTransport{rec: rec, base: tr},
		Timeout:   20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

func (b *browser) do(method, path, body string, hdr map[string]string) (*http.Response, string) {
	b.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.base+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Origin", b.base)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}
