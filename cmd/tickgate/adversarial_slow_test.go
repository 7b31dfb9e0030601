package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// requireLong skips a test that takes more than 20 s unless
// TICKGATE_TEST_LONG=1 (scripts/test.sh sets it in CI).
func requireLong(t *testing.T) {
	t.Helper()
	if os.Getenv("TICKGATE_TEST_LONG") != "1" {
		t.Skip("long test (over 20 s): set TICKGATE_TEST_LONG=1 to run it; CI does")
	}
}

// TestAdversarialSlowBody: clients that send their headers at once and
// then trickle a request body (a byte every second, to the login and the
// API) are cut off by the per-request read deadline (30 s) instead of
// holding their connections for ever, while other browsers are served
// all along. Long: it waits for that deadline.
func TestAdversarialSlowBody(t *testing.T) {
	requireLong(t)
	t.Parallel()
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword, "TICKGATE_LIMIT_LOGIN": "100/1m"})
	b := newBrowser(t, inst.url, &recorder{})
	login(t, b)
	cookie := cookieHeader(b.client.Jar.Cookies(mustURL(t, inst.url)))
	host := strings.TrimPrefix(inst.url, "http://")
	targets := []string{
		"POST /auth/login HTTP/1.1\r\nContent-Type: application/json\r\nX-CSRF: 1\r\nOrigin: " + inst.url,
		"POST /api/demo/v1/quotes HTTP/1.1\r\nContent-Type: application/json\r\nX-CSRF: 1\r\nOrigin: " + inst.url + "\r\n" + cookie,
		"PUT /auth/logout HTTP/1.1\r\nX-CSRF: 1\r\nOrigin: " + inst.url + "\r\n" + cookie,
	}
	const perTarget = 4
	var wg sync.WaitGroup
	cut := make(chan string, len(targets)*perTarget)
	for _, head := range targets {
		for range perTarget {
			c, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if _, err := io.WriteString(c, head+"\r\nHost: "+host+"\r\nContent-Length: 100\r\n\r\n{"); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				// Trickle until the server stops taking bytes or closes;
				// give up (a failure) after twice the deadline and more.
				done := make(chan struct{})
				go func() {
					defer close(done)
					_, _ = io.Copy(io.Discard, c) // returns when the server closes
				}()
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				limit := time.After(90 * time.Second)
				for sent := 1; ; sent++ {
					select {
					case <-done:
						cut <- ""
						return
					case <-limit:
						cut <- strings.SplitN(head, "\r\n", 2)[0]
						return
					case <-tick.C:
						if sent < 99 {
							_, _ = c.Write([]byte(" "))
						}
					}
				}
			})
		}
	}
	// Meanwhile the product serves others.
	for range 5 {
		time.Sleep(2 * time.Second)
		if resp, body := b.do("GET", "/auth/session", "", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("session while slow clients trickle: %d %s", resp.StatusCode, body)
		}
	}
	wg.Wait()
	close(cut)
	for head := range cut {
		if head != "" {
			t.Errorf("%s: a slow body held its connection for 90 s", head)
		}
	}
}
