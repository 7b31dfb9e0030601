package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckLoopbackURL(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080/x", "ws://[::1]:1/ws", "https://localhost/", "wss://127.0.0.2:9/"} {
		if err := CheckLoopbackURL(ok); err != nil {
			t.Errorf("CheckLoopbackURL(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"http://example.com/", "http://10.0.0.1/", "ftp://127.0.0.1/", "127.0.0.1:80", "http://%zz", "http://0.0.0.0:80/"} {
		if err := CheckLoopbackURL(bad); err == nil {
			t.Errorf("CheckLoopbackURL(%q) = nil, want an error", bad)
		}
	}
}

func TestRunRESTCountsAnswersAndKeepsKeysOut(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test") != "yes" {
			http.Error(w, "missing header", http.StatusBadRequest)
			return
		}
		if n.Add(1)%4 == 0 {
			// Like a vendor's 401: the body echoes the key.
			http.Error(w, `{"error":{"code":"nope","message":"sekret-key-123"}}`, http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	target := Target{
		URLs:   []string{srv.URL + "/a?apikey=sekret-key-123", srv.URL + "/b?apikey=sekret-key-123"},
		Header: http.Header{"X-Test": {"yes"}},
	}
	res, err := RunREST(context.Background(), NewClient(4), target, RESTOptions{Concurrency: 4, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors == 0 {
		t.Fatalf("requests %d, errors %d: want both", res.Requests, res.Errors)
	}
	if int64(len(res.Latencies)) != res.Requests {
		t.Errorf("%d latencies for %d requests", len(res.Latencies), res.Requests)
	}
	if total := res.Requests + res.Errors; total < n.Load()-4 || total > n.Load() {
		t.Errorf("counted %d answers, server saw %d", total, n.Load())
	}
	if res.FirstError != "status 401" {
		t.Errorf("FirstError = %q, want status 401 (without the body)", res.FirstError)
	}

	// Quoting a code is opt-in, and then it is the code only.
	target.QuoteErrorCode = true
	res, err = RunREST(context.Background(), NewClient(1), target, RESTOptions{Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstError != "status 401 nope" {
		t.Errorf("FirstError = %q, want \"status 401 nope\"", res.FirstError)
	}
}

func TestRunRESTTransportErrorHidesURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	res, err := RunREST(context.Background(), NewClient(1), Target{URLs: []string{url + "/q?apikey=sekret-key-123"}},
		RESTOptions{Duration: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.FirstError == "" {
		t.Fatalf("no error counted for a closed port: %+v", res)
	}
	if strings.Contains(res.FirstError, "sekret") || strings.Contains(res.FirstError, "apikey") {
		t.Errorf("FirstError leaks the URL: %q", res.FirstError)
	}
}

func TestRunRESTRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	c := NewClient(1)
	if _, err := RunREST(ctx, c, Target{}, RESTOptions{Duration: time.Second}); err == nil {
		t.Error("no URLs: want an error")
	}
	if _, err := RunREST(ctx, c, Target{URLs: []string{"http://192.0.2.1/"}}, RESTOptions{Duration: time.Second}); err == nil {
		t.Error("non-loopback URL: want an error")
	}
	if _, err := RunREST(ctx, c, Target{URLs: []string{"http://127.0.0.1:1/"}}, RESTOptions{}); err == nil {
		t.Error("zero duration: want an error")
	}
}
