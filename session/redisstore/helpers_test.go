package redisstore_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/tickgate/tickgate/internal/redistest"
	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/redisstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// patience bounds every wait in these tests; generous for a loaded
// machine.
const patience = 15 * time.Second

func redisURL(t testing.TB) string { return redistest.URL(t) }

// adminClient is a plain client on the test Redis, for looking behind
// the Store's back. It is closed when t ends.
func adminClient(t testing.TB) *redis.Client { return redistest.Client(t) }

// testPrefix returns a fresh prefix, its keys deleted when t ends.
func testPrefix(t testing.TB) string { return redistest.Prefix(t, "tickgate-test:") }

// newStore returns a Store on the test Redis, closed when t ends. Unset
// fields of cfg get a test URL, a fresh prefix and a generous OpTimeout.
func newStore(t testing.TB, cfg redisstore.Config) *redisstore.Store {
	t.Helper()
	if cfg.URL == "" && cfg.Client == nil {
		cfg.URL = redisURL(t)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = testPrefix(t)
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = patience
	}
	st, err := redisstore.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func ctxFor(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	t.Cleanup(cancel)
	return ctx
}

// record returns a record of user for key, logged in now for 12 hours.
func record(key, user string) session.Record {
	now := time.Now()
	return session.Record{Key: key, User: user, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(12 * time.Hour)}
}

func mustCreate(t testing.TB, st session.Store, rec session.Record, ttl time.Duration) {
	t.Helper()
	if err := st.Create(ctxFor(t), rec, ttl); err != nil {
		t.Fatalf("Create: %v", err)
	}
}

// checkErrText fails when err's text contains any of secrets.
func checkErrText(t testing.TB, what string, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("%s: error text %q contains a key or secret", what, err)
		}
	}
}

// eventually polls cond until it holds or patience runs out.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, patience)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// urlWithHost is the test URL pointed at addr instead.
func urlWithHost(t testing.TB, addr string) string {
	t.Helper()
	u, err := url.Parse(redisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

// proxy is a TCP proxy in front of the test Redis that can cut every
// connection and refuse new ones, like a Redis that stops, and be
// restored, like one that comes back with its data.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startProxy(t testing.TB) *proxy {
	t.Helper()
	opts, err := redis.ParseURL(redisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: opts.Addr, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.target, patience)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			_ = c.Close()
			_ = up.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
		}
		go pipe(c, up)
		go pipe(up, c)
	}
}

// cut closes every proxied connection and refuses new ones until restore.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.cut()
	p.wg.Wait()
}

// stalledServer accepts connections and reads from them but never
// answers: a Redis that hangs. It is closed when t ends.
func stalledServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// isStoreFailure reports whether err is a failure to reach the store, as
// opposed to an answer (nil, ErrNotFound, ErrExists...).
func isStoreFailure(err error) bool {
	return err != nil &&
		!errors.Is(err, session.ErrNotFound) &&
		!errors.Is(err, session.ErrExists) &&
		!errors.Is(err, session.ErrInvalidArgument) &&
		!errors.Is(err, session.ErrClosed)
}

// fakeRedis is a minimal RESP2 server: it answers HELLO as a Redis 5
// would (so clients fall back to RESP2), CLIENT with +OK, and every other
// command with reply (a raw RESP reply such as "-LOADING ...\r\n"). It is
// closed when t ends.
func fakeRedis(t testing.TB, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	serve := func(c net.Conn) {
		defer wg.Done()
		defer c.Close()
		rd := bufio.NewReader(c)
		for {
			cmd, err := readCommand(rd)
			if err != nil {
				return
			}
			out := reply
			switch strings.ToUpper(cmd[0]) {
			case "HELLO":
				out = "-ERR unknown command 'HELLO'\r\n"
			case "CLIENT", "SELECT", "AUTH":
				out = "+OK\r\n"
			}
			if _, err := io.WriteString(c, out); err != nil {
				return
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go serve(c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// readCommand reads one RESP array of bulk strings.
func readCommand(rd *bufio.Reader) ([]string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, errors.New("fake redis: not an array")
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 {
		return nil, errors.New("fake redis: bad array length")
	}
	cmd := make([]string, n)
	for i := range cmd {
		hdr, err := rd.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(hdr, "$")))
		if err != nil || size < 0 {
			return nil, errors.New("fake redis: bad bulk length")
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		cmd[i] = string(buf[:size])
	}
	return cmd, nil
}
