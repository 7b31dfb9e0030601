package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// startNginx starts nginx (d) as a reverse proxy to marketsim that adds
// the key to the query, with upstream keep-alive and an access log, like
// a careful nginx deployment. Its configuration, holding the key, lives
// in the benchmark's private temporary directory.
func (b *bench) startNginx(ctx context.Context, simURL string) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	simHost := strings.TrimPrefix(simURL, "http://")
	dir := filepath.Join(b.dir, "nginx")
	for _, d := range []string{"", "logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, "", err
		}
	}
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes %[1]d;
pid %[2]s/nginx.pid;
error_log %[2]s/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log %[2]s/logs/access.log;
  client_body_temp_path %[2]s/tmp/body;
  proxy_temp_path %[2]s/tmp/proxy;
  fastcgi_temp_path %[2]s/tmp/fastcgi;
  uwsgi_temp_path %[2]s/tmp/uwsgi;
  scgi_temp_path %[2]s/tmp/scgi;
  upstream vendor {
    server %[3]s;
    keepalive 256;
  }
  server {
    listen 127.0.0.1:%[4]d;
    location /v1/ {
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host %[3]s;
      proxy_pass http://vendor$uri?apikey=%[5]s;
    }
  }
}
`, runtime.NumCPU(), dir, simHost, port, b.key)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, "", err
	}
	p, _, err := startProc(ctx, "nginx", b.cfg.nginx, []string{"-p", dir, "-c", confPath, "-e", filepath.Join(dir, "logs", "error.log")}, b.baseEnv(), dir, "")
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return p, "http://" + addr, nil
		}
		if err := p.alive(); err != nil {
			return nil, "", err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, "", fmt.Errorf("nginx did not listen on %s within 15s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
