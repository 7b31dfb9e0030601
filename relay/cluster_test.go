package relay

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tickgate/tickgate/internal/redistest"
)

func TestDecodeData(t *testing.T) {
	var b []byte
	for _, m := range [][2]string{{"AAPL", `{"sym":"AAPL","p":1}`}, {"MSFT", `{"sym":"MSFT","p":2}`}} {
		b = binary.AppendUvarint(b, uint64(len(m[0])))
		b = append(b, m[0]...)
		b = binary.AppendUvarint(b, uint64(len(m[1])))
		b = append(b, m[1]...)
	}
	msgs, ok := decodeData(b)
	if !ok || len(msgs) != 2 || string(msgs[1].sym) != "MSFT" || string(msgs[1].raw) != `{"sym":"MSFT","p":2}` {
		t.Fatalf("decodeData = %v, %v", msgs, ok)
	}
	for name, bad := range map[string][]byte{
		"empty":          nil,
		"torn length":    {0x80},
		"length too big": {0x05, 'A'},
		"no message":     b[:5],
		"trailing byte":  append(append([]byte(nil), b...), 0x07),
		"empty symbol":   {0x00, 0x02, '{', '}'},
	} {
		if msgs, ok := decodeData(bad); ok {
			t.Errorf("%s: decodeData accepted %v", name, msgs)
		}
	}
}

func TestSharingConfigErrors(t *testing.T) {
	base := func() Config {
		return Config{Sessions: newSessions(), AllowedOrigins: []string{"https://app.example"}}
	}
	cfg := base()
	cfg.Sharing = &Sharing{}
	if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "Sharing.Client is required") {
		t.Errorf("no client: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	cfg = base()
	cfg.Sharing = &Sharing{Client: c, LeaseTTL: 10}
	if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "LeaseTTL") {
		t.Errorf("tiny lease: %v", err)
	}
	cfg = base()
	given := &Sharing{Client: c}
	cfg.Sharing = given
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if given.ID != "" || given.LeaseTTL != 0 {
		t.Errorf("New changed the caller's Sharing: %+v", given)
	}
}

// TestLeaseScripts: taking a held lease fails and reports the holder's
// fencing token; only the holder renews or releases it; every take-over
// gets a higher token, also after the holder died and the lease expired.
func TestLeaseScripts(t *testing.T) {
	// The fence key outlives every lease by design; the prefix's cleanup
	// deletes it (a deferred Close used to run before that cleanup).
	c := redistest.Client(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t, "tickgate-test:")
	lease, fence := prefix+"lease", prefix+"fence"

	acquire := func(id string, ttl time.Duration) int64 {
		t.Helper()
		n, err := acquireScript.Run(ctx, c, []string{lease, fence}, id, ttl.Milliseconds()).Int64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	run := func(s *redis.Script, args ...any) int64 {
		t.Helper()
		n, err := s.Run(ctx, c, []string{lease}, args...).Int64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := acquire("a", time.Minute); got != 1 {
		t.Fatalf("first acquire = %d, want token 1", got)
	}
	if got := acquire("b", time.Minute); got != -1 {
		t.Fatalf("acquire of a held lease = %d, want -1 (held with token 1)", got)
	}
	if run(renewScript, "b/1", 60000) != 0 || run(releaseScript, "b/1") != 0 || run(renewScript, "a/0", 60000) != 0 {
		t.Fatal("a non-holder renewed or released the lease")
	}
	if run(renewScript, "a/1", 60000) != 1 {
		t.Fatal("the holder could not renew")
	}
	if run(releaseScript, "a/1") != 1 {
		t.Fatal("the holder could not release")
	}
	if got := acquire("b", 50*time.Millisecond); got != 2 {
		t.Fatalf("acquire after release = %d, want token 2", got)
	}
	// b dies: its lease expires and the next owner gets token 3; b's late
	// renewal fails.
	deadline := time.Now().Add(5 * time.Second)
	got := acquire("c", time.Minute)
	for got < 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		got = acquire("c", time.Minute)
	}
	if got != 3 {
		t.Fatalf("acquire after expiry = %d, want token 3", got)
	}
	if run(renewScript, "b/2", 60000) != 0 {
		t.Fatal("an expired holder renewed the lease")
	}
}
