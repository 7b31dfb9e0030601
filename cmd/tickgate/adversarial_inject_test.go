package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// forged is what an attacker would like to see as a log line of its own.
const forged = `{"time":"2026-01-01T00:00:00Z","level":"ERROR","msg":"forged","injected":true}`

// TestAdversarialHeaderAndLogInjection sends CR, LF, NUL, ESC, DEL,
// U+2028 and forged log lines in every value a browser controls that can
// reach a response header or a log line: request paths (REST, /ws/{feed},
// /auth), query strings, the login user name, Origin, X-Request-Id,
// User-Agent, Referer and WebSocket symbols, under both log formats. No
// answer carries an injected header or echoes a browser's request id,
// nothing answers 5xx, and every log line is one whole record of the
// configured format: no forged line, no raw control character.
func TestAdversarialHeaderAndLogInjection(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword, "TICKGATE_LOG_FORMAT": format})
			b := newBrowser(t, inst.url, &recorder{})
			login(t, b)
			cookie := b.client.Jar.Cookies(mustURL(t, inst.url))

			payloads := []string{"\r\nX-Injected: yes", "\n" + forged, "\x00", "\x1b[2J\x1b[31m", "\x7f", "\u2028" + forged, "\r" + forged + "\r\n\r\n"}
			for _, p := range payloads {
				enc := urlEscapeAll(p)
				for _, path := range []string{
					"/api/demo/v1/quote/AAPL" + enc,
					"/api/demo/v1/quote/AAPL?symbol=" + enc,
					"/api/demo" + enc + "/v1/quote",
					"/ws/demo" + enc,
					"/auth/" + enc,
					"/" + enc,
				} {
					status, hdr := rawRequest(t, inst.url, "GET "+path+" HTTP/1.1", cookieHeader(cookie), "Origin: "+inst.url)
					checkAnswer(t, path, status, hdr)
				}
				// Login with the payload in the user name and the password.
				body, _ := json.Marshal(map[string]string{"username": "demo" + p, "password": p})
				resp, out := b.do("POST", "/auth/login", string(body), map[string]string{"X-CSRF": "1"})
				if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusBadRequest {
					t.Errorf("login as %q = %d %s", "demo"+p, resp.StatusCode, out)
				}
				checkAnswer(t, "login", resp.StatusCode, resp.Header)
			}
			// Header values with bytes a proxy could pass on: control
			// characters other than CR/LF, obs-text, and forged lines in
			// headers that are logged or echoed.
			for _, v := range []string{"\x01\x02", "\x1b[31mred", "\x7f", "caf\xc3\xa9 \xff\xfe", "a\tb", strings.Repeat("A", 8000)} {
				for _, h := range []string{"Origin", "X-Request-Id", "User-Agent", "Referer", "X-Forwarded-For", "Forwarded"} {
					status, hdr := rawRequest(t, inst.url, "GET /api/demo/v1/quote/AAPL HTTP/1.1", cookieHeader(cookie), h+": "+v)
					checkAnswer(t, h, status, hdr)
					if got := hdr.Get("X-Request-Id"); got == v {
						t.Errorf("%s %q: the browser's request id was echoed", h, v)
					}
				}
			}
			// An obs-fold continuation line (a multi-line header) is refused
			// or joined with a space (RFC 9112 allows either); joined, it is
			// no valid request id and is neither used nor echoed.
			status, hdr := rawRequest(t, inst.url, "GET /api/demo/v1/quote/AAPL HTTP/1.1", cookieHeader(cookie), "X-Request-Id: abc", " "+forged)
			checkAnswer(t, "obs-fold", status, hdr)
			if id := hdr.Get("X-Request-Id"); status != http.StatusBadRequest && (id == "" || strings.Contains(id, "abc")) {
				t.Errorf("obs-fold header: request id %q", id)
			}

			// WebSocket symbols.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ws, _, err := b.dialWS(ctx, "demo")
			if err != nil {
				t.Fatal(err)
			}
			defer ws.conn.CloseNow()
			ws.until(ctx, "ready", nil)
			for _, p := range payloads {
				ws.send(ctx, map[string]any{"action": "subscribe", "symbols": []string{"AAPL" + p}})
				if m := ws.until(ctx, "error", nil); m.Code != "invalid_symbol" && m.Code != "bad_message" {
					t.Errorf("symbol %q: code %q", "AAPL"+p, m.Code)
				}
			}
			ws.send(ctx, map[string]any{"action": "subscribe", "symbols": []string{"AAPL"}})
			ws.until(ctx, "subscribed", nil)
			ws.send(ctx, map[string]any{"action": "unsubscribe" + "\r\n" + forged, "symbols": []string{"AAPL"}})
			if m := ws.until(ctx, "error", nil); m.Code != "bad_message" {
				t.Errorf("forged action: code %q", m.Code)
			}
			ws.conn.Close(1000, "")

			if err := inst.stop(); err != nil {
				t.Fatal(err)
			}
			checkLogLines(t, format, inst.stderr.String())
		})
	}
}

// checkAnswer: no 5xx and no header the attacker named.
func checkAnswer(t *testing.T, what string, status int, hdr http.Header) {
	t.Helper()
	if status >= 500 || status == 0 {
		t.Errorf("%q: status %d", what, status)
	}
	for k, vs := range hdr {
		if strings.EqualFold(k, "X-Injected") {
			t.Errorf("%q: injected header %s: %v", what, k, vs)
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") || strings.Contains(v, "forged") {
				t.Errorf("%q: header %s carries %q", what, k, v)
			}
		}
	}
}

// checkLogLines: every line is one record of the format, none forged.
func checkLogLines(t *testing.T, format, log string) {
	t.Helper()
	lines := 0
	for line := range strings.SplitSeq(strings.TrimSuffix(log, "\n"), "\n") {
		lines++
		if strings.ContainsAny(line, "\r\x00\x1b\x7f\u2028") {
			t.Errorf("raw control character in log line %q", line)
		}
		switch format {
		case "json":
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				if strings.HasPrefix(line, "tickgate: ") { // the one-line start-up banner
					continue
				}
				t.Errorf("log line is not one JSON record: %q", line)
				continue
			}
			if _, ok := rec["injected"]; ok || rec["msg"] == "forged" {
				t.Errorf("forged log record: %q", line)
			}
		case "text":
			if !strings.HasPrefix(line, "time=") && !strings.HasPrefix(line, "tickgate: ") {
				t.Errorf("log line is not one text record: %q", line)
			}
			if strings.Contains(line, " msg=forged") {
				t.Errorf("forged log record: %q", line)
			}
		}
	}
	if lines < 10 {
		t.Errorf("only %d log lines: the attack was not logged at all?", lines)
	}
}

// rawRequest writes a request line and headers as given, byte for byte
// (a Go client would refuse most of them), and reads the answer's head.
func rawRequest(t *testing.T, base, requestLine string, headers ...string) (int, http.Header) {
	t.Helper()
	return rawRequestBody(t, base, requestLine, "", headers...)
}

// rawRequestBody is rawRequest with a body (and its Content-Length).
func rawRequestBody(t *testing.T, base, requestLine, body string, headers ...string) (int, http.Header) {
	t.Helper()
	host := strings.TrimPrefix(base, "http://")
	c, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var req strings.Builder
	req.WriteString(requestLine + "\r\nHost: " + host + "\r\nConnection: close\r\n")
	for _, h := range headers {
		if h != "" {
			req.WriteString(h + "\r\n")
		}
	}
	if body != "" {
		fmt.Fprintf(&req, "Content-Length: %d\r\n", len(body))
	}
	req.WriteString("\r\n" + body)
	if _, err := io.WriteString(c, req.String()); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Errorf("%q: no HTTP answer: %v", requestLine, err)
		return 0, nil
	}
	res.Body.Close()
	return res.StatusCode, res.Header
}

func cookieHeader(cs []*http.Cookie) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.Name+"="+c.Value)
	}
	if len(parts) == 0 {
		return ""
	}
	return "Cookie: " + strings.Join(parts, "; ")
}

// urlEscapeAll percent-encodes every byte of s.
func urlEscapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
