//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickgate/tickgate/marketsim"
)

// takeoverDeadline is how soon browsers on the surviving replicas must get
// data again after the feed's owner stops (issue 12).
const takeoverDeadline = 10 * time.Second

// TestReplicasShareOneUpstream: three tickgate replicas on one Redis and a
// vendor allowing one connection per key (refusing newcomers). Browsers on
// all three get data, through the one upstream connection of the replica
// holding the feed's lease. When that replica stops, another takes over:
// the browsers on the survivors see status reconnecting, then data, within
// 10s, without reconnecting. Messages from a stale owner (an older fencing
// token) and malformed ones are dropped. A logout on one survivor closes
// the session's socket on the other. The Redis traffic per delivered
// message is logged.
func TestReplicasShareOneUpstream(t *testing.T) {
	redisURL := testRedisURL(t)
	prefix := testRedisPrefix(t, redisURL)
	sim, err := marketsim.New(marketsim.Options{Keys: []string{testKey}, ConnCap: 1, CapPolicy: marketsim.RefuseNew})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// Count what the replicas publish on the feed's channel.
	channel, leaseKey := prefix+"feed:{demo}:messages", prefix+"feed:{demo}:lease"
	ps := rdb.Subscribe(ctx, channel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	var published, publishedBytes atomic.Int64
	go func() {
		for m := range ps.Channel() {
			published.Add(1)
			publishedBytes.Add(int64(len(m.Payload)))
		}
	}()

	env := map[string]string{
		"TICKGATE_DEMO_KEY":        testKey,
		"TICKGATE_DEMO_PASSWORD":   testPassword,
		"TICKGATE_DEMO_VENDOR_URL": sim.URL(),
		"TICKGATE_SESSION_STORE":   "redis",
		"TICKGATE_REDIS_URL":       redisURL,
		"TICKGATE_REDIS_PREFIX":    prefix,
	}
	insts := []*instance{start(t, env), start(t, env), start(t, env)}
	syms := []string{"AAPL", "MSFT", "SPY"}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for i, inst := range insts { // what each replica did with the feed
			for _, l := range strings.Split(inst.stderr.String(), "\n") {
				if strings.Contains(l, `"feed":"demo"`) && !strings.Contains(l, `"DEBUG"`) {
					t.Logf("replica %d: %s", i, l)
				}
			}
		}
	})

	first := newBrowser(t, insts[0].url, &recorder{})
	login(t, first)
	browsers := []*browser{first, browserWithCookie(t, insts[1].url, first), browserWithCookie(t, insts[2].url, first)}
	wss := make([]*wsClient, 3)
	for i, b := range browsers {
		wss[i] = openFeed(ctx, t, b, syms[i])
	}
	st := sim.Stats()
	t.Logf("vendor: %d authenticated connection(s), %d accepted in all, %d refused by the cap", st.WSAuthenticated, st.WSConnectionsTotal, st.WSRefusedByCap)
	if st.WSAuthenticated != 1 || st.WSRefusedByCap != 0 {
		t.Fatalf("vendor: %d authenticated connections and %d refused by its cap; want exactly one and none refused", st.WSAuthenticated, st.WSRefusedByCap)
	}
	owner := ownerOf(t, insts, -1)

	// Traffic: everything published on the feed's channel against every
	// vendor message the three browsers received, over the same window.
	pub0, bytes0 := published.Load(), publishedBytes.Load()
	delivered := 0
	for _, ws := range wss {
		delivered += countDelivered(ctx, t, ws, 2*time.Second)
	}
	pub, pubBytes := published.Load()-pub0, publishedBytes.Load()-bytes0
	if delivered == 0 || pub == 0 {
		t.Fatalf("in the window: %d messages delivered to browsers, %d publishes", delivered, pub)
	}
	t.Logf("Redis traffic: %d publishes (%d bytes) for %d vendor messages delivered to 3 browsers on 3 replicas: %.3f publishes and %.1f bytes per delivered message",
		pub, pubBytes, delivered, float64(pub)/float64(delivered), float64(pubBytes)/float64(delivered))

	// Stop the owner; the survivors' browsers carry on.
	var survivors []int
	for i := range insts {
		if i != owner {
			survivors = append(survivors, i)
		}
	}
	oldLease, _ := rdb.Get(ctx, leaseKey).Result()
	stopped := time.Now()
	if err := insts[owner].stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("owner %d stopped in %v", owner, time.Since(stopped))
	for _, i := range survivors {
		wss[i].until(ctx, "status", func(m wsMsg) bool { return m.Upstream == "reconnecting" })
		wss[i].until(ctx, "data", hasDataFor(syms[i]))
		took := time.Since(stopped)
		t.Logf("replica %d: data again %v after the owner stopped", i, took.Round(time.Millisecond))
		if took > takeoverDeadline {
			t.Errorf("replica %d: data again only %v after the owner stopped, want within %v", i, took, takeoverDeadline)
		}
	}
	newLease, _ := rdb.Get(ctx, leaseKey).Result()
	if newLease == "" || newLease == oldLease || tokenOf(newLease) <= tokenOf(oldLease) {
		t.Errorf("lease after the takeover: fencing token %d, before %d: want a higher one", tokenOf(newLease), tokenOf(oldLease))
	}
	if st := sim.Stats(); st.WSAuthenticated != 1 {
		t.Errorf("vendor after the takeover: %d authenticated connections, want 1", st.WSAuthenticated)
	}
	newOwner := ownerOf(t, insts, owner)

	// A follower drops a message with a stale fencing token and a
	// malformed one; the valid marker published after them arrives, so
	// they were handled first.
	follower := survivors[0]
	if follower == newOwner {
		follower = survivors[1]
	}
	sym := syms[follower]
	forged := func(tok uint64, tag string) []byte {
		raw := `{"ev":"T","sym":"` + sym + `","p":1,"forged":"` + tag + `"}`
		b := []byte{'d'}
		b = binary.BigEndian.AppendUint64(b, tok)
		b = binary.AppendUvarint(b, uint64(len(sym)))
		b = append(b, sym...)
		b = binary.AppendUvarint(b, uint64(len(raw)))
		return append(b, raw...)
	}
	cur := tokenOf(newLease)
	for _, p := range [][]byte{forged(tokenOf(oldLease), "stale"), {'d', 1, 2}, append(forged(cur, "torn"), 0x05), forged(cur, "marker")} {
		if err := rdb.Publish(ctx, channel, p).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for {
		m, err := wss[follower].read(ctx)
		if err != nil {
			t.Fatalf("waiting for the marker: %v", err)
		}
		if m.Type != "data" {
			continue
		}
		var seen []string
		for _, raw := range m.Messages {
			if bytes.Contains(raw, []byte(`"forged"`)) {
				seen = append(seen, string(raw))
			}
		}
		if len(seen) == 0 {
			continue
		}
		if len(seen) != 1 || !strings.Contains(seen[0], `"marker"`) {
			t.Fatalf("forged messages relayed: %v; want only the marker (stale token and malformed dropped)", seen)
		}
		break
	}

	// Logout on one survivor closes the session's socket on the other.
	a, b := survivors[0], survivors[1]
	closedB := watchClose(ctx, wss[b])
	loggedOut := time.Now()
	wantStatus(t, "logout on a survivor", browsers[a], http.MethodPost, "/auth/logout", http.StatusNoContent)
	wantClosed4001(t, "WebSocket on the other survivor after logout", closedB, loggedOut)
}

// ownerOf returns the index of the running replica that last took the
// feed's lease, from their logs.
func ownerOf(t *testing.T, insts []*instance, stopped int) int {
	t.Helper()
	deadline := time.Now().Add(takeoverDeadline)
	for {
		owner, latest := -1, ""
		for i, inst := range insts {
			if i == stopped {
				continue
			}
			out := inst.stderr.String()
			j := strings.LastIndex(out, "feed lease taken")
			if j < 0 || strings.Contains(out[j:], "feed lease lost") {
				continue
			}
			// The time field of the JSON log line.
			line := out[strings.LastIndex(out[:j], "\n")+1:]
			ts := line
			if k := strings.Index(line, `"time":"`); k >= 0 {
				ts = line[k+8:]
			}
			if owner < 0 || ts > latest {
				owner, latest = i, ts
			}
		}
		if owner >= 0 {
			return owner
		}
		if time.Now().After(deadline) {
			t.Fatal("no replica logged taking the feed lease")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tokenOf returns the fencing token of a lease value ("replica/token").
func tokenOf(lease string) uint64 {
	n, _ := strconv.ParseUint(lease[strings.LastIndexByte(lease, '/')+1:], 10, 64)
	return n
}

// countDelivered counts the vendor messages ws receives for about d (the
// feed is busy: a read past d comes soon). A read context is not used to
// stop: its expiry would close the socket.
func countDelivered(ctx context.Context, t *testing.T, ws *wsClient, d time.Duration) int {
	t.Helper()
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		m, err := ws.read(ctx)
		if err != nil {
			t.Fatalf("reading data: %v", err)
		}
		if m.Type == "data" {
			n += len(m.Messages)
		}
	}
	return n
}
