package app

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/tickgate/tickgate/apierr"
	"github.com/tickgate/tickgate/guard"
	"github.com/tickgate/tickgate/metrics"
	"github.com/tickgate/tickgate/session"
)

// reqInfo is filled in as a request passes the chain and read by the
// access log once it is done.
type reqInfo struct {
	id    string
	route string // Echo route pattern, e.g. /api/:upstream/*
	user  string
}

type reqInfoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	ri, _ := ctx.Value(reqInfoKey{}).(*reqInfo)
	return ri
}

// RequestID returns the id of the request in ctx, or "".
func RequestID(ctx context.Context) string {
	if ri := infoFrom(ctx); ri != nil {
		return ri.id
	}
	return ""
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recorder tracks status and bytes; it keeps Flush and Hijack working for
// streamed REST responses and WebSocket upgrades.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijack not supported")
	}
	if r.status == 0 {
		r.status = http.StatusSwitchingProtocols
	}
	return h.Hijack()
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// observe is the outermost middleware: request id, panic recovery, access
// log and request metrics. It logs the route pattern and path, never the
// query string (it may carry anything) and never cookies or headers.
func observe(log *slog.Logger, m *metrics.Metrics, ips *guard.IPResolver, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &reqInfo{id: newRequestID()}
		w.Header().Set("X-Request-Id", ri.id)
		ctx := context.WithValue(r.Context(), reqInfoKey{}, ri)
		rec := &recorder{ResponseWriter: w}
		r = r.WithContext(ctx)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic serving request", "request_id", ri.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rec.status == 0 {
					apierr.Respond(rec, http.StatusInternalServerError, "internal", "internal error")
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			route := ri.route
			if route == "" {
				route = "unmatched"
			}
			d := time.Since(start)
			m.HTTPRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
			m.HTTPDuration.WithLabelValues(route).Observe(d.Seconds())
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelWarn
			}
			log.LogAttrs(r.Context(), level, "request",
				slog.String("request_id", ri.id),
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.String("path", safePath(r)),
				slog.Int("status", status),
				slog.Int64("bytes", rec.bytes),
				slog.Float64("duration_ms", float64(d.Microseconds())/1000),
				slog.String("client_ip", ips.ClientIPString(r)),
				slog.String("user", ri.user),
			)
		}()
		next.ServeHTTP(rec, r)
	})
}

// safePath is the request path without the query, shortened and with
// control characters escaped so it cannot forge log lines.
func safePath(r *http.Request) string {
	p := r.URL.EscapedPath()
	if len(p) > 256 {
		p = p[:256] + "..."
	}
	q := strconv.QuoteToASCII(p)
	return q[1 : len(q)-1]
}

// Deadlines for one request other than a WebSocket upgrade. The server
// itself sets none beyond ReadHeaderTimeout, because a server-wide read
// or write timeout would also cut established WebSockets.
const (
	requestReadTimeout  = 30 * time.Second
	requestWriteTimeout = 90 * time.Second
)

// deadlines bounds how long a request body may trickle in and how long a
// response may take, so slow-body clients cannot hold connections open.
func deadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isUpgrade(r) {
			rc := http.NewResponseController(w)
			now := time.Now()
			_ = rc.SetReadDeadline(now.Add(requestReadTimeout))
			_ = rc.SetWriteDeadline(now.Add(requestWriteTimeout))
		}
		next.ServeHTTP(w, r)
	})
}

func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

// requireHTTPS enforces the contract's rule for plain HTTP: served only
// to loopback clients or through a trusted proxy that reports HTTPS.
// Anything else is redirected to the HTTPS origin (GET, HEAD) or refused.
// Health checks are exempt: load balancers probe them over plain HTTP.
func requireHTTPS(ips *guard.IPResolver, origins []string, next http.Handler) http.Handler {
	httpsOrigin := ""
	for _, o := range origins {
		if strings.HasPrefix(o, "https://") {
			httpsOrigin = o
			break
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil || ips.IsHTTPS(r) || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		if peer := ips.Peer(r); peer.IsLoopback() && !ips.Forwarded(r) {
			next.ServeHTTP(w, r)
			return
		}
		if httpsOrigin != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			http.Redirect(w, r, httpsOrigin+r.URL.EscapedPath(), http.StatusPermanentRedirect)
			return
		}
		apierr.Respond(w, http.StatusForbidden, "https_required", "this server is served over HTTPS only")
	})
}

// noteUser records the session's user for the access log.
func noteUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, ok := session.FromContext(r.Context()); ok {
			if ri := infoFrom(r.Context()); ri != nil {
				ri.user = s.User
			}
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders sets the headers of DESIGN section 9 on every response;
// HSTS whenever the browser reached us over HTTPS (our TLS or a trusted
// proxy's).
func securityHeaders(origins []string, isHTTPS func(*http.Request) bool, next http.Handler) http.Handler {
	connect := []string{"'self'"}
	for _, o := range origins {
		switch {
		case strings.HasPrefix(o, "https://"):
			connect = append(connect, "wss://"+strings.TrimPrefix(o, "https://"))
		case strings.HasPrefix(o, "http://"):
			connect = append(connect, "ws://"+strings.TrimPrefix(o, "http://"))
		}
	}
	csp := "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src " + strings.Join(connect, " ") + "; object-src 'none'; base-uri 'none'; " +
		"form-action 'self'; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		if isHTTPS(r) {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}
