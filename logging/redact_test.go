package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tickgate/tickgate/logging"
)

const (
	vendorKey = "vk-SECRET-7f3a9c2b"
	password  = "correct horse battery staple"
	sessionID = "sess-0123456789abcdef"
)

func newLogger(t *testing.T) (*slog.Logger, *logging.Redactor, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	red := logging.NewRedactor()
	red.Set("secrets", vendorKey)
	red.Set("demo_password", password)
	log, err := logging.New(&buf, logging.Options{Format: "json", Level: "debug", Redactor: red})
	if err != nil {
		t.Fatal(err)
	}
	return log, red, &buf
}

func TestScrub(t *testing.T) {
	t.Parallel()
	red := logging.NewRedactor()
	red.Set("secrets", vendorKey, "short")
	for _, tc := range []struct{ in, want string }{
		{"plain text stays", "plain text stays"},
		{"key is " + vendorKey + " here", "key is [redacted] here"},
		{"escaped " + url.QueryEscape(vendorKey+"/+"), "escaped [redacted]%2F%2B"},
		{"GET /v1/quote?symbol=AAPL&apikey=abc123", "GET /v1/quote?symbol=AAPL&apikey=[redacted]"},
		{"https://v.example/q?token=t0k3n&x=1", "https://v.example/q?token=[redacted]&x=1"},
		{"/auth/callback?code=c0de&state=s", "/auth/callback?code=[redacted]&state=s"},
		{"Authorization: Bearer abc.def.ghi", "Authorization: [redacted]"},
		{"sent bearer abc.def and more", "sent bearer [redacted] and more"},
		{"Cookie: tickgate=abc; other=1", "Cookie: [redacted]"},
		{`{"Cookie":["tickgate=abc"],"Accept":["*/*"]}`, `{"Cookie":["[redacted]"],"Accept":["*/*"]}`},
		{"map[Set-Cookie:[__Host-tickgate=abc; Path=/]]", "map[Set-Cookie:[[redacted]]]"},
		{"cookie __Host-tickgate=abc123 seen", "cookie __Host-tickgate=[redacted] seen"},
		{"dial redis://user:hunter2@10.0.0.1:6379/0 failed", "dial redis://user:[redacted]@10.0.0.1:6379/0 failed"},
		{"password=hunter2 in text", "password=[redacted] in text"},
		{"short is not scrubbed: short", "short is not scrubbed: short"},
		{"client ::1 and 10.0.0.1:443", "client ::1 and 10.0.0.1:443"},
		{"rate limit scope=ip key=1.2.3.4", "rate limit scope=ip key=1.2.3.4"},
	} {
		if got := red.Scrub(tc.in); got != tc.want {
			t.Errorf("Scrub(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestScrubEncodedValue(t *testing.T) {
	t.Parallel()
	red := logging.NewRedactor()
	k := "key+with/slash=="
	red.Set("secrets", k)
	for _, s := range []string{k, url.QueryEscape(k), url.PathEscape(k)} {
		if got := red.Scrub("x " + s + " y"); strings.Contains(got, s) {
			t.Errorf("Scrub left %q in %q", s, got)
		}
	}
}

func TestSetReplacesAndForgets(t *testing.T) {
	t.Parallel()
	red := logging.NewRedactor()
	red.Set("secrets", "old-key-123456")
	red.Set("secrets", "new-key-123456")
	if got := red.Scrub("old-key-123456 new-key-123456"); got != "old-key-123456 [redacted]" {
		t.Errorf("after rotation: %q", got)
	}
	red.Set("secrets")
	if got := red.Scrub("new-key-123456"); got != "new-key-123456" {
		t.Errorf("after forgetting: %q", got)
	}
	red.Set("a", "shared-value-1")
	red.Set("b", "shared-value-1")
	red.Set("a")
	if got := red.Scrub("shared-value-1"); got != logging.Redacted {
		t.Errorf("a value still registered by another source: %q", got)
	}
}

type secretStringer struct{}

func (secretStringer) String() string { return "holds " + vendorKey }

type opaque struct{ N int }

type panicErr struct{}

func (panicErr) Error() string { panic("boom") }

// TestHandlerScrubsEverywhere logs the secrets in every place a careless
// call could put them and asserts none reaches the output.
func TestHandlerScrubsEverywhere(t *testing.T) {
	t.Parallel()
	log, _, buf := newLogger(t)
	hdr := http.Header{"Cookie": {"tickgate=" + sessionID}, "Authorization": {"Bearer " + sessionID}, "Accept": {"text/html"},
		"X-Csrf": {"1"}, "Set-Cookie": {"__Host-tickgate=" + sessionID}}
	u, _ := url.Parse("https://user:pw-" + sessionID + "@vendor.example/v1/q?apikey=" + vendorKey + "&symbol=AAPL#frag")
	req, _ := http.NewRequest("GET", "https://x.example/api/demo/q?apikey="+vendorKey, nil)
	req.Header.Set("Cookie", "tickgate="+sessionID)
	log.Info("message with "+vendorKey,
		"err", fmt.Errorf("upstream: GET %s: 401", "https://v.example/q?apikey="+vendorKey),
		"password", password,
		"cookie", "tickgate="+sessionID,
		"Authorization", "Bearer "+sessionID,
		"headers", hdr,
		"url", u,
		"req", req,
		"cookie_obj", &http.Cookie{Name: "tickgate", Value: sessionID},
		"cookies", []*http.Cookie{{Name: "tickgate", Value: sessionID}},
		"stringer", secretStringer{},
		"bytes", []byte("k="+vendorKey),
		"list", []string{"a", vendorKey},
		slog.Group("outer", slog.String("note", "has "+password), slog.Group("inner", slog.String("set-cookie", sessionID), slog.Any("e", errors.New(vendorKey)))),
		"broken", panicErr{},
		"kept", opaque{N: 7},
	)
	log.With("bound", vendorKey).WithGroup("g").Info("with", "x", password, "session_id", sessionID)
	out := buf.String()
	for _, s := range []string{vendorKey, password, sessionID, url.QueryEscape(password)} {
		if strings.Contains(out, s) {
			t.Errorf("secret %q in log output:\n%s", s, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %d:\n%s", len(lines), out)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	// Useful context survives redaction.
	if got, want := rec["kept"], map[string]any{"N": float64(7)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("kept = %v, want %v", got, want)
	}
	if got := rec["headers"].(map[string]any)["Accept"]; got != "text/html" {
		t.Errorf("headers.Accept = %v", got)
	}
	if got := rec["url"]; got != "https://vendor.example/v1/q?apikey=[redacted]&symbol=[redacted]" {
		t.Errorf("url = %v", got)
	}
	if got := rec["req"]; got != "GET /api/demo/q" {
		t.Errorf("req = %v", got)
	}
	if got := rec["broken"]; !strings.Contains(fmt.Sprint(got), "panicked") {
		t.Errorf("broken = %v", got)
	}
}

func TestRequestIDFromContext(t *testing.T) {
	t.Parallel()
	log, _, buf := newLogger(t)
	ctx := logging.WithRequestID(context.Background(), "rid-1")
	log.InfoContext(ctx, "one")
	log.LogAttrs(ctx, slog.LevelInfo, "two", slog.String("request_id", "explicit"))
	log.Info("three")
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(rec["request_id"]))
		if strings.Count(l, `"request_id"`) > 1 {
			t.Errorf("request_id twice: %s", l)
		}
	}
	if want := []string{"rid-1", "explicit", "<nil>"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("request ids = %v, want %v", got, want)
	}
	if logging.RequestID(context.Background()) != "" {
		t.Error("RequestID of an empty context")
	}
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts    logging.Options
		wantErr bool
		json    bool
		debug   bool
	}{
		{opts: logging.Options{}, json: true}, // a buffer is not a terminal
		{opts: logging.Options{Format: "text", Level: "DEBUG"}, debug: true},
		{opts: logging.Options{Format: "json", Level: "warn"}, json: true},
		{opts: logging.Options{Format: "xml"}, wantErr: true},
		{opts: logging.Options{Level: "loud"}, wantErr: true},
	} {
		var buf bytes.Buffer
		log, err := logging.New(&buf, tc.opts)
		if (err != nil) != tc.wantErr {
			t.Fatalf("%+v: err = %v", tc.opts, err)
		}
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error %q", err)
			}
			continue
		}
		log.Debug("dbg")
		log.Warn("wrn")
		out := buf.String()
		if got := strings.HasPrefix(out, "{"); got != tc.json {
			t.Errorf("%+v: JSON = %t:\n%s", tc.opts, got, out)
		}
		if got := strings.Contains(out, "dbg"); got != tc.debug {
			t.Errorf("%+v: debug shown = %t", tc.opts, got)
		}
		if !strings.Contains(out, "wrn") {
			t.Errorf("%+v: warn missing", tc.opts)
		}
	}
	if logging.IsTerminal(io.Discard) {
		t.Error("io.Discard is a terminal")
	}
}

func TestAuditAttr(t *testing.T) {
	t.Parallel()
	log, _, buf := newLogger(t)
	log.LogAttrs(context.Background(), slog.LevelInfo, "login", logging.Audit(), slog.String("user", "alice"))
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec[logging.AuditKey] != true || rec["user"] != "alice" {
		t.Errorf("audit record = %v", rec)
	}
}

// TestConcurrentSet rotates values while other goroutines log (run with
// -race).
func TestConcurrentSet(t *testing.T) {
	t.Parallel()
	var buf syncWriter
	red := logging.NewRedactor()
	log, err := logging.New(&buf, logging.Options{Format: "json", Redactor: red})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := fmt.Sprintf("rotating-key-%d-%d", g, i)
				red.Set(fmt.Sprint("src", g), k)
				log.Info("using " + k)
			}
		}()
	}
	wg.Wait()
	if strings.Contains(buf.String(), "rotating-key-") {
		t.Error("a key registered before logging reached the output")
	}
}

type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// BenchmarkAccessLine compares an access-log line through the redacting
// handler with the bare JSON handler; report the ratio of the two ns/op.
func BenchmarkAccessLine(b *testing.B) {
	attrs := []slog.Attr{
		slog.String("method", "GET"), slog.String("route", "/api/:upstream/*"), slog.String("path", "/api/demo/v1/quote"),
		slog.Int("status", 200), slog.Int64("bytes", 812), slog.Float64("duration_ms", 1.234),
		slog.String("client_ip", "2001:db8::1"), slog.String("user", "demo"),
	}
	ctx := logging.WithRequestID(context.Background(), "0123456789abcdef0123456789abcdef")
	b.Run("bare", func(b *testing.B) {
		log := slog.New(slog.NewJSONHandler(io.Discard, nil))
		b.ReportAllocs()
		for b.Loop() {
			log.LogAttrs(ctx, slog.LevelInfo, "request", append(attrs, slog.String("request_id", "0123456789abcdef0123456789abcdef"))...)
		}
	})
	b.Run("redacting", func(b *testing.B) {
		red := logging.NewRedactor()
		red.Set("secrets", vendorKey, "another-vendor-key-0001")
		log, _ := logging.New(io.Discard, logging.Options{Format: "json", Redactor: red})
		b.ReportAllocs()
		for b.Loop() {
			log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
		}
	})
}
