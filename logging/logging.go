package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Options choose the logger New builds. Zero values are safe defaults.
type Options struct {
	// Format is "json", "text", or "" for text when the writer is a
	// terminal and JSON otherwise (TICKGATE_LOG_FORMAT).
	Format string
	// Level is debug, info, warn or error, any case; "" is info
	// (TICKGATE_LOG_LEVEL).
	Level string
	// Redactor scrubs every record; nil creates one with no registered
	// values (the attribute and pattern rules still apply). Pass your own
	// to register secret values as they are loaded.
	Redactor *Redactor
}

// New returns the logger for w. Every record passes the Redactor and
// carries the request id of its context.
func New(w io.Writer, opts Options) (*slog.Logger, error) {
	level, err := ParseLevel(opts.Level)
	if err != nil {
		return nil, err
	}
	ho := &slog.HandlerOptions{Level: level}
	var base slog.Handler
	switch opts.Format {
	case "json":
		base = slog.NewJSONHandler(w, ho)
	case "text":
		base = slog.NewTextHandler(w, ho)
	case "":
		if IsTerminal(w) {
			base = slog.NewTextHandler(w, ho)
		} else {
			base = slog.NewJSONHandler(w, ho)
		}
	default:
		return nil, fmt.Errorf("logging: format %q is not text or json", opts.Format)
	}
	red := opts.Redactor
	if red == nil {
		red = NewRedactor()
	}
	return slog.New(red.Wrap(base)), nil
}

// ParseLevel reads debug, info, warn or error (any case; "" is info).
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("logging: level %q is not debug, info, warn or error", s)
}

// IsTerminal reports whether w is a character device (a terminal), where
// people read logs rather than machines.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// AuditKey is the attribute that marks an audit event.
const AuditKey = "audit"

// Audit is the attribute that marks an audit event: audit=true.
func Audit() slog.Attr { return slog.Bool(AuditKey, true) }

// RequestIDKey is the attribute carrying a request's id.
const RequestIDKey = "request_id"

type requestIDKey struct{}

// WithRequestID returns ctx carrying id; records logged with it carry
// request_id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the id WithRequestID stored in ctx, or "".
func RequestID(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
