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
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/tickgate/tickgate/apierr"
	"github.com/tickgate/tickgate/guard"
	"github.com/tickgate/tickgate/logging"
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
	return logging.RequestID(ctx)
}

// newRequestID returns 128 random bits in hex.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// maxRequestIDLen bounds an X-Request-Id taken from a trusted proxy.
const maxRequestIDLen = 128

// validRequestID accepts what common proxies and tracing systems send
// (UUIDs, hex, base64url, "1-5f8e-..." AWS trace ids) and nothing that
// could forge a log line or smuggle a header.
func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '=', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// requestIDFor is the request's id: the X-Request-Id of a trusted proxy
// (so one id follows the request through the load balancer's logs and
// ours), otherwise a new random one. A browser cannot choose its id.
func requestIDFor(r *http.Request, trusted func(netip.Addr) bool, peer netip.Addr) string {
	if v := r.Header.Get("X-Request-Id"); v != "" && trusted(peer) && validRequestID(v) {
		return v
	}
	return newRequestID()
}

// trustedPeers reports whether a TCP peer is one of the trusted proxies.
func trustedPeers(prefixes []netip.Prefix) func(netip.Addr) bool {
	return func(a netip.Addr) bool {
		for _, p := range prefixes {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
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
// log and request metrics. The access log names the route pattern, never
// the raw path or the query string (either may carry anything), and never
// cookies or headers. The request id goes into the context, so every line
// logged with it carries request_id.
func observe(log *slog.Logger, m *metrics.Metrics, ips *guard.IPResolver, trusted func(netip.Addr) bool, anomalies *anomalyWatch, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &reqInfo{id: requestIDFor(r, trusted, ips.Peer(r))}
		w.Header().Set("X-Request-Id", ri.id)
		// The proxy forwards X-Request-Id to the vendor: ours, so a
		// vendor's support can find the call, never a browser's choice.
		r.Header.Set("X-Request-Id", ri.id)
		ctx := logging.WithRequestID(context.WithValue(r.Context(), reqInfoKey{}, ri), ri.id)
		rec := &recorder{ResponseWriter: w}
		r = r.WithContext(ctx)
		defer func() {
			aborted := false
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					// A response broken off (ReverseProxy on a cut body or
					// a gone browser): net/http must still see the panic
					// to abort the connection, after the request is
					// logged and counted below.
					aborted = true
					defer panic(p)
				} else {
					log.ErrorContext(ctx, "panic serving request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
					if rec.status == 0 {
						apierr.Respond(rec, http.StatusInternalServerError, "internal", "internal error")
					}
				}
			}
			status := rec.status
			switch {
			case status == 0 && aborted:
				status = http.StatusInternalServerError // nothing was sent
			case status == 0:
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
			if status >= 500 || aborted {
				level = slog.LevelWarn
			}
			clientIP := ips.ClientIPString(r)
			attrs := []slog.Attr{
				slog.String("request_id", ri.id),
				slog.String("method", safeMethod(r.Method)),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Int64("bytes", rec.bytes),
				slog.Float64("duration_ms", float64(d.Microseconds())/1000),
				slog.String("client_ip", clientIP),
				slog.String("user", ri.user),
			}
			if aborted {
				attrs = append(attrs, slog.Bool("aborted", true)) // the response was cut off
			}
			log.LogAttrs(ctx, level, "request", attrs...)
			anomalies.observe(ctx, route, status, clientIP, ri.user)
		}()
		next.ServeHTTP(rec, r)
	})
}

// safeMethod is the method when it is a token of reasonable length, so
// a client cannot write arbitrary text into the access log.
func safeMethod(m string) string {
	if len(m) > 16 {
		return "other"
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; c < 'A' || c > 'Z' {
			return "other"
		}
	}
	return m
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
		if !bodylessWSHandshake(r) {
			rc := http.NewResponseController(w)
			now := time.Now()
			_ = rc.SetReadDeadline(now.Add(requestReadTimeout))
			_ = rc.SetWriteDeadline(now.Add(requestWriteTimeout))
		}
		next.ServeHTTP(w, r)
	})
}

// bodylessWSHandshake reports whether r is a WebSocket handshake that
// cannot trickle a body: a GET naming websocket in Upgrade with no body.
// Its connection is hijacked and must keep no deadline (the relay keeps
// its own pings); anything else, including a POST with Upgrade headers,
// gets the deadlines.
func bodylessWSHandshake(r *http.Request) bool {
	return r.Method == http.MethodGet && r.ContentLength == 0 && len(r.TransferEncoding) == 0 && wsHandshake(r)
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
		// Health checks are exempt only as spelled: /health%7A decodes
		// to /healthz but is routed elsewhere.
		if p := r.URL.EscapedPath(); r.TLS != nil || ips.IsHTTPS(r) || p == "/healthz" || p == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		if peer := ips.Peer(r); peer.IsLoopback() && !ips.Forwarded(r) {
			next.ServeHTTP(w, r)
			return
		}
		if httpsOrigin != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			target := httpsOrigin + r.URL.EscapedPath()
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, target, http.StatusPermanentRedirect)
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
