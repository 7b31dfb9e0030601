//go:build linux

package redisstore_test

import (
	"context"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickgate/tickgate/session/redisstore"
)

// droppingServer returns the address of a listening socket with a backlog
// of 0 that never accepts. Once its queue is full the kernel drops further
// SYNs, so dials hang as they do across a network partition.
func droppingServer(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Skipf("raw socket: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Skipf("bind: %v", err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Skipf("listen: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Skipf("getsockname: %v", err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	for range 8 { // fill the queue
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			return addr // queue full: SYNs are dropped now
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	t.Skip("the kernel kept accepting connections; cannot simulate dropped SYNs")
	return ""
}

// TestOutageDroppedPackets: with dials hanging, every call still fails
// within OpTimeout, and stopping a subscription or closing the store is
// quick even though go-redis keeps reconnecting in the background.
func TestOutageDroppedPackets(t *testing.T) {
	t.Parallel()
	st, err := redisstore.New(redisstore.Config{URL: "redis://" + droppingServer(t) + "/0", OpTimeout: opTimeout})
	if err != nil {
		t.Fatal(err)
	}
	checkOutage(t, st)

	stop := st.Subscribe(context.Background(), func(string) {})
	eventually(t, "the subscription dials in the background", func() bool {
		return goroutineWith("(*PubSub)", "(*PubSubPool).NewConn")
	})
	start := time.Now()
	stop()
	if took := time.Since(start); took > slack {
		t.Errorf("stop took %v while dials hang", took)
	}
	start = time.Now()
	if err := st.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if took := time.Since(start); took > slack {
		t.Errorf("Close took %v while dials hang", took)
	}
	waitForDials(t)
}

// waitForDials waits until go-redis has no dial in flight, so background
// dials to the dropping server (bounded by the client's DialTimeout) end
// before goleak looks for leaked goroutines.
func waitForDials(t *testing.T) {
	t.Helper()
	eventually(t, "background dials end", func() bool {
		return !goroutineWith("(*ConnPool).dialConn") && !goroutineWith("(*PubSubPool).NewConn")
	})
}

// goroutineWith reports whether some goroutine's stack contains all of
// funcs.
func goroutineWith(funcs ...string) bool {
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		all := true
		for _, f := range funcs {
			all = all && strings.Contains(g, f)
		}
		if all {
			return true
		}
	}
	return false
}
