package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/tickgate/tickgate/internal/loadgen"
)

// runBareProxy serves the baseline proxy (b): an httputil.ReverseProxy
// that adds the vendor key to the query and does nothing else. Its
// transport keeps as many idle connections per host as tickgate's, so
// the comparison is about the chain, not the pool.
func runBareProxy(ctx context.Context, args []string, key string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bare-proxy", flag.ContinueOnError)
	upstream := fs.String("upstream", "", "upstream base URL (loopback)")
	addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if key == "" {
		return errors.New("bare-proxy: BENCH_SIM_KEY is not set")
	}
	if err := loadgen.CheckLoopbackURL(*upstream); err != nil {
		return err
	}
	target, err := url.Parse(*upstream)
	if err != nil {
		return err
	}
	h, err := newBareProxy(target, key)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("bare-proxy: %w", err)
	}
	if err := loadgen.CheckLoopbackURL("http://" + ln.Addr().String()); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "bare-proxy listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		return err
	}
}

// newBareProxy returns the baseline reverse proxy to target, adding key as
// the apikey query parameter.
func newBareProxy(target *url.URL, key string) (http.Handler, error) {
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("bare-proxy: http.DefaultTransport is not an *http.Transport")
	}
	t := base.Clone()
	t.Proxy = nil
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			q := r.Out.URL.Query()
			q.Set("apikey", key)
			r.Out.URL.RawQuery = q.Encode()
		},
		Transport: t,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			http.Error(w, "bad gateway", http.StatusBadGateway)
		},
	}, nil
}
