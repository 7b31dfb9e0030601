package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Target is what RunREST sends requests to.
type Target struct {
	// URLs are requested round robin; each must be an http URL on a
	// loopback host.
	URLs []string
	// Header is added to every request (cookies, Origin).
	Header http.Header
	// QuoteErrorCode, when set, adds the "code" of a JSON error body
	// ({"error":{"code":"rate_limited",...}}) to FirstError. Set it only
	// for targets whose error bodies cannot hold a key (tickgate's).
	QuoteErrorCode bool
}

// RESTOptions shape a RunREST run.
type RESTOptions struct {
	// Concurrency is the number of workers, each with at most one
	// request in flight and its own keep-alive connection (default 1).
	Concurrency int
	// Duration is how long the workers send requests. Required.
	Duration time.Duration
}

// RESTResult is the outcome of one RunREST run.
type RESTResult struct {
	Requests  int64           // answered with 200 and read to the end
	Errors    int64           // transport errors and other status codes
	Elapsed   time.Duration   // from the first request to the last answer
	Latencies []time.Duration // one per successful request
	// FirstError describes the first error: a status code or a transport
	// error without its URL (the URL can hold a vendor key).
	FirstError string
}

// Throughput is successful requests per second.
func (r RESTResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Add merges o into r, as if both had run one after the other.
func (r *RESTResult) Add(o RESTResult) {
	r.Requests += o.Requests
	r.Errors += o.Errors
	r.Elapsed += o.Elapsed
	r.Latencies = append(r.Latencies, o.Latencies...)
	if r.FirstError == "" {
		r.FirstError = o.FirstError
	}
}

// NewClient returns an HTTP client for benchmarks: no proxy from the
// environment, no compression, no redirects, and up to conns idle
// keep-alive connections per host.
func NewClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

// RunREST sends requests to t from o.Concurrency workers for o.Duration,
// or until ctx ends. It returns an error only for a bad Target or
// options; request failures are counted in the result.
func RunREST(ctx context.Context, client *http.Client, t Target, o RESTOptions) (RESTResult, error) {
	if len(t.URLs) == 0 {
		return RESTResult{}, errors.New("loadgen: no URLs to request")
	}
	for _, u := range t.URLs {
		if err := CheckLoopbackURL(u); err != nil {
			return RESTResult{}, err
		}
	}
	if o.Duration <= 0 {
		return RESTResult{}, errors.New("loadgen: duration must be positive")
	}
	workers := max(o.Concurrency, 1)
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()

	results := make([]RESTResult, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			results[w] = restWorker(ctx, client, t, w, workers)
		})
	}
	wg.Wait()
	total := RESTResult{Elapsed: time.Since(start)}
	for _, r := range results {
		total.Requests += r.Requests
		total.Errors += r.Errors
		total.Latencies = append(total.Latencies, r.Latencies...)
		if total.FirstError == "" {
			total.FirstError = r.FirstError
		}
	}
	return total, nil
}

func restWorker(ctx context.Context, client *http.Client, t Target, w, workers int) RESTResult {
	var res RESTResult
	res.Latencies = make([]time.Duration, 0, 4096)
	fail := func(what string) {
		res.Errors++
		if res.FirstError == "" {
			res.FirstError = what
		}
	}
	for i := w; ctx.Err() == nil; i += workers {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URLs[i%len(t.URLs)], nil)
		if err != nil {
			fail("building request failed")
			return res
		}
		for k, v := range t.Header {
			req.Header[k] = v
		}
		began := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				break // the run ended mid-request: not an error
			}
			fail(describeError(err))
			continue
		}
		var head []byte
		if resp.StatusCode != http.StatusOK && t.QuoteErrorCode && res.FirstError == "" {
			head, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(began)
		switch {
		case err != nil && ctx.Err() != nil:
		case err != nil:
			fail("reading body: " + describeError(err))
		case resp.StatusCode != http.StatusOK:
			what := fmt.Sprintf("status %d", resp.StatusCode)
			if code, ok := stringField(head, `"code":`); ok {
				what += " " + string(code)
			}
			fail(what)
		default:
			res.Requests++
			res.Latencies = append(res.Latencies, took)
		}
	}
	return res
}

// describeError returns err's text without any URL (a *url.Error's text
// includes the URL, and with it a query that may hold a key).
func describeError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// CheckLoopbackURL returns an error unless raw is an absolute http(s) or
// ws(s) URL whose host is a loopback address or "localhost".
func CheckLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("loadgen: a target URL does not parse")
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return fmt.Errorf("loadgen: target scheme %q is not http(s) or ws(s)", u.Scheme)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("loadgen: target host %q is not a loopback address; the load generator only targets loopback", host)
	}
	return nil
}
