package redisconn

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestClient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url string
		given     redis.UniversalClient
		want      string
	}{
		{"neither", "", nil, "URL or Client is required"},
		{"both", "redis://127.0.0.1:6379", redis.NewClient(&redis.Options{}), "not both"},
		{"scheme", "http://user:hunter2@localhost:6379", nil, "scheme must be redis or rediss"},
		{"garbage", "redis://user:hunter2@[::1", nil, "URL"},
		{"bad db", "redis://user:hunter2@localhost:6379/x", nil, "URL"},
	} {
		_, _, err := Client(tc.url, tc.given, time.Second, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v, want %q without the password", tc.name, err, tc.want)
		}
		if tc.url != "" && tc.given == nil && !errors.Is(err, ErrURL) {
			t.Errorf("%s: %v does not wrap ErrURL", tc.name, err)
		}
	}

	c, owned, err := Client("redis://:pw@127.0.0.1:1/2", nil, 200*time.Millisecond, nil)
	if err != nil || !owned {
		t.Fatalf("url: %v owned=%v", err, owned)
	}
	defer c.Close()
	o := c.(*redis.Client).Options()
	if !o.ContextTimeoutEnabled || o.DialTimeout != time.Second || o.DialerRetries != 1 || o.DB != 2 {
		t.Errorf("options: ctx=%v dial=%v retries=%d db=%d", o.ContextTimeoutEnabled, o.DialTimeout, o.DialerRetries, o.DB)
	}

	var warned string
	given := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer given.Close()
	got, owned, err := Client("", given, time.Second, func(m string) { warned = m })
	if err != nil || owned || got != given || !strings.Contains(warned, "ignores context deadlines") {
		t.Errorf("given client: err=%v owned=%v warned=%q", err, owned, warned)
	}
}
