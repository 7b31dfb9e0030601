package logging_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/logging"
)

// TestTicketRedacted: a WebSocket ticket (POST /auth/ws-ticket) never
// reaches a log line, in a URL's query or as an attribute.
func TestTicketRedacted(t *testing.T) {
	t.Parallel()
	const tk = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"
	var buf bytes.Buffer
	log, err := logging.New(&buf, logging.Options{Format: "json", Level: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("upgrade", "url", "/ws/demo?ticket="+tk+"&x=1")
	log.Info("upgrade", "ticket", tk)
	log.Info("GET /ws/demo?feed=a&ticket=" + tk)
	log.LogAttrs(t.Context(), slog.LevelInfo, "q", slog.String("query", "ticket="+tk))
	if strings.Contains(buf.String(), tk) {
		t.Fatalf("ticket in the log:\n%s", buf.String())
	}
	if got := strings.Count(buf.String(), logging.Redacted); got < 3 {
		t.Fatalf("%d redactions, want at least 3:\n%s", got, buf.String())
	}
}
