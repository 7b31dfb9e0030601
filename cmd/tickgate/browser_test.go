package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/domstorage"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"github.com/tickgate/tickgate/marketsim"
	"github.com/tickgate/tickgate/session"
)

// This file drives the real program (run, in demo mode, with the embedded
// simulated vendor) from headless Chromium, as a user would, and records
// through the DevTools protocol everything the browser received or holds:
// every response's status, headers and body, every WebSocket frame both
// ways, cookies, web storage, the final DOM and the console. The proof is
// that the vendor key appears in none of it and the password in nothing the
// server sent, while the positive controls show the recording is not empty.
// Other tests take the page through what goes wrong: idle expiry (and
// "still here?"), the vendor dropping or refusing the feed (1013), the
// network between browser and server breaking (backoff, then back), the
// message-rate policy (4008), a rate-limited login (429), and a team's own
// upstream and feed names. Without a Chromium-family browser the tests skip
// (and fail in CI).

// chromeWait bounds one step on a slow, loaded 2-core machine.
const chromeWait = 20 * time.Second

// chromeInstrumentJS runs before the page's own code in every document.
// DevTools scripts are not subject to the page's CSP. It records CSP
// violations, and every WebSocket's close code and whether the page closed
// the socket itself before the server's close arrived.
const chromeInstrumentJS = `(() => {
  const tg = { csp: [], sockets: [] };
  Object.defineProperty(window, '__tg', { value: tg });
  document.addEventListener('securitypolicyviolation', (e) => {
    tg.csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber);
  });
  const Native = window.WebSocket;
  const records = new WeakMap();
  class RecordedWebSocket extends Native {
    constructor(...args) {
      super(...args);
      const rec = { url: String(args[0]), code: null, reason: null, clean: null, pageClosed: false, openedAt: performance.now(), closedAt: null };
      records.set(this, rec);
      tg.sockets.push(rec);
      tg.last = this; // so a test can make the page's socket misbehave
      this.addEventListener('close', (e) => {
        rec.code = e.code;
        rec.reason = e.reason;
        rec.closedAt = performance.now();
        rec.clean = e.wasClean;
      });
    }
    close(...args) {
      const rec = records.get(this);
      if (rec && rec.code === null) rec.pageClosed = true;
      return super.close(...args);
    }
  }
  window.WebSocket = RecordedWebSocket;
})();`

// chromeFind returns the browser to drive: TICKGATE_TEST_CHROMIUM, Debian's
// /usr/bin/chromium, or another Chromium-family browser on PATH.
func chromeFind(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TICKGATE_TEST_CHROMIUM"); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("TICKGATE_TEST_CHROMIUM=%q: %v", p, err)
		}
		return path
	}
	if st, err := os.Stat("/usr/bin/chromium"); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// chromeNeed skips the test in -short mode or without a browser (CI must
// have one) and returns the browser's path.
func chromeNeed(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	path := chromeFind(t)
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI: no Chromium found (set TICKGATE_TEST_CHROMIUM or install the chromium package)")
		}
		t.Skip("REQUIRES_CHROMIUM: no Chromium-family browser found (apt-get install chromium, or set TICKGATE_TEST_CHROMIUM)")
	}
	return path
}

// chromeExchange is one HTTP request the page made and what came back.
type chromeExchange struct {
	method, url    string
	resType        network.ResourceType
	reqHeaders     network.Headers
	rawReqHeaders  network.Headers
	postData       []byte
	status         int64
	respHeaders    network.Headers
	rawRespHeaders network.Headers
	rawHeadersText string
	redirects      []string // status and headers of redirect responses
	finished       bool
	failed         string
	body           []byte
	bodyFetched    bool
	bodyErr        string
}

// chromeSocket is one WebSocket the page opened.
type chromeSocket struct {
	url         string
	reqHeaders  network.Headers
	status      int64
	respHeaders network.Headers
	respText    string
	closed      bool
	errors      []string
}

// chromeFrame is one WebSocket message, in either direction.
type chromeFrame struct {
	socket network.RequestID
	sent   bool
	opcode float64
	data   []byte
}

type chromeJob struct {
	id   network.RequestID
	post bool // fetch the request body instead of the response body
}

// chromeCapture records the DevTools events of one tab. on runs on the
// tab's event loop and only records; fetch runs the commands that read
// bodies, on its own goroutine.
type chromeCapture struct {
	mu            sync.Mutex
	changed       chan struct{} // closed and replaced on every recorded event
	wake          chan struct{}
	exchanges     map[network.RequestID]*chromeExchange
	order         []network.RequestID
	sockets       map[network.RequestID]*chromeSocket
	socketOrder   []network.RequestID
	frames        []chromeFrame
	console       []string // every console call, as text
	consoleErrors []string
	exceptions    []string
	logEntries    []*cdplog.Entry
	queue         []chromeJob
	busy          int
}

func newChromeCapture() *chromeCapture {
	return &chromeCapture{
		changed:   make(chan struct{}),
		wake:      make(chan struct{}, 1),
		exchanges: map[network.RequestID]*chromeExchange{},
		sockets:   map[network.RequestID]*chromeSocket{},
	}
}

// exchange returns the record of id, creating it; extra-info events may
// come before the main ones. Called with c.mu held.
func (c *chromeCapture) exchange(id network.RequestID) *chromeExchange {
	x := c.exchanges[id]
	if x == nil {
		x = &chromeExchange{}
		c.exchanges[id] = x
		c.order = append(c.order, id)
	}
	return x
}

func (c *chromeCapture) socket(id network.RequestID) *chromeSocket {
	s := c.sockets[id]
	if s == nil {
		s = &chromeSocket{}
		c.sockets[id] = s
		c.socketOrder = append(c.socketOrder, id)
	}
	return s
}

func (c *chromeCapture) enqueue(j chromeJob) {
	c.queue = append(c.queue, j)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func chromeRemoteText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		switch {
		case len(a.Value) > 0:
			parts = append(parts, string(a.Value))
		case a.Description != "":
			parts = append(parts, a.Description)
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

// on records one event. It must return fast and never call the browser.
func (c *chromeCapture) on(ev any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		if e.RedirectResponse != nil {
			x := c.exchange(e.RequestID)
			x.redirects = append(x.redirects, fmt.Sprintf("%d %s %v", e.RedirectResponse.Status, e.RedirectResponse.URL, e.RedirectResponse.Headers))
		}
		x := c.exchange(e.RequestID)
		x.method, x.url, x.resType, x.reqHeaders = e.Request.Method, e.Request.URL, e.Type, e.Request.Headers
		for _, p := range e.Request.PostDataEntries {
			x.postData = append(x.postData, p.Bytes...)
		}
		if e.Request.HasPostData && len(x.postData) == 0 {
			c.enqueue(chromeJob{id: e.RequestID, post: true})
		}
	case *network.EventRequestWillBeSentExtraInfo:
		c.exchange(e.RequestID).rawReqHeaders = e.Headers
	case *network.EventResponseReceived:
		x := c.exchange(e.RequestID)
		x.status, x.respHeaders, x.resType = e.Response.Status, e.Response.Headers, e.Type
		if x.url == "" {
			x.url = e.Response.URL
		}
	case *network.EventResponseReceivedExtraInfo:
		x := c.exchange(e.RequestID)
		x.rawRespHeaders, x.rawHeadersText = e.Headers, e.HeadersText
	case *network.EventLoadingFinished:
		x := c.exchange(e.RequestID)
		x.finished = true
		c.enqueue(chromeJob{id: e.RequestID})
	case *network.EventLoadingFailed:
		x := c.exchange(e.RequestID)
		x.failed = e.ErrorText
		if e.Canceled {
			x.failed += " (canceled)"
		}
	case *network.EventWebSocketCreated:
		c.socket(e.RequestID).url = e.URL
	case *network.EventWebSocketWillSendHandshakeRequest:
		c.socket(e.RequestID).reqHeaders = e.Request.Headers
	case *network.EventWebSocketHandshakeResponseReceived:
		s := c.socket(e.RequestID)
		s.status, s.respHeaders = e.Response.Status, e.Response.Headers
		s.respText = e.Response.HeadersText
	case *network.EventWebSocketFrameReceived:
		c.frames = append(c.frames, chromeFrame{socket: e.RequestID, opcode: e.Response.Opcode, data: e.Response.PayloadData})
	case *network.EventWebSocketFrameSent:
		c.frames = append(c.frames, chromeFrame{socket: e.RequestID, sent: true, opcode: e.Response.Opcode, data: e.Response.PayloadData})
	case *network.EventWebSocketFrameError:
		s := c.socket(e.RequestID)
		s.errors = append(s.errors, e.ErrorMessage)
	case *network.EventWebSocketClosed:
		c.socket(e.RequestID).closed = true
	case *runtime.EventConsoleAPICalled:
		text := string(e.Type) + ": " + chromeRemoteText(e.Args)
		c.console = append(c.console, text)
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
			c.consoleErrors = append(c.consoleErrors, text)
		}
	case *runtime.EventExceptionThrown:
		text := e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			text += " " + e.ExceptionDetails.Exception.Description
		}
		c.exceptions = append(c.exceptions, fmt.Sprintf("%s (%s:%d)", text, e.ExceptionDetails.URL, e.ExceptionDetails.LineNumber))
	case *cdplog.EventEntryAdded:
		c.logEntries = append(c.logEntries, e.Entry)
	default:
		return
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// fetch reads the bodies of finished responses (and request bodies the
// events left out) until ctx ends. Bodies are read as soon as a response
// finishes, before the browser could evict them.
func (c *chromeCapture) fetch(ctx context.Context) {
	for {
		c.mu.Lock()
		var job chromeJob
		have := len(c.queue) > 0
		if have {
			job, c.queue = c.queue[0], c.queue[1:]
			c.busy++
		}
		c.mu.Unlock()
		if !have {
			select {
			case <-ctx.Done():
				return
			case <-c.wake:
			}
			continue
		}
		callCtx, cancel := context.WithTimeout(ctx, chromeWait)
		var (
			data []byte
			err  error
		)
		if job.post {
			var res network.GetRequestPostDataResult
			res, err = chromedp.Call(callCtx, network.GetRequestPostData, network.GetRequestPostDataParams{RequestID: job.id})
			data = res.PostData
		} else {
			var res network.GetResponseBodyResult
			res, err = chromedp.Call(callCtx, network.GetResponseBody, network.GetResponseBodyParams{RequestID: job.id})
			data = res.Body
		}
		cancel()
		c.mu.Lock()
		x := c.exchange(job.id)
		switch {
		case job.post && err == nil:
			x.postData = data
		case job.post:
			x.failed += " (request body unreadable: " + err.Error() + ")"
		case err == nil:
			x.body, x.bodyFetched = data, true
		default:
			x.bodyErr = err.Error()
		}
		c.busy--
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
}

// waitFor waits until cond, which runs with c.mu held, is true.
func (c *chromeCapture) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(chromeWait)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok := cond()
		ch := c.changed
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("browser never saw %s within %v\n%s", what, chromeWait, c.summary())
		}
	}
}

// settled waits until every request is answered and every body read.
func (c *chromeCapture) settled(t *testing.T) {
	t.Helper()
	c.waitFor(t, "all responses finished and their bodies read", func() bool {
		if len(c.queue) > 0 || c.busy > 0 {
			return false
		}
		for _, x := range c.exchanges {
			if x.status != 0 && !x.finished && x.failed == "" {
				return false
			}
		}
		return true
	})
}

// summary lists the requests and sockets, for failure messages.
func (c *chromeCapture) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, id := range c.order {
		x := c.exchanges[id]
		fmt.Fprintf(&b, "  %s %s → %d finished=%t failed=%q body=%d bytes %s\n", x.method, x.url, x.status, x.finished, x.failed, len(x.body), x.bodyErr)
	}
	for _, id := range c.socketOrder {
		s := c.sockets[id]
		fmt.Fprintf(&b, "  ws %s → %d closed=%t\n", s.url, s.status, s.closed)
	}
	fmt.Fprintf(&b, "  %d WebSocket frames\n", len(c.frames))
	return b.String()
}

// receivedLocked returns the messages the page got from tickgate, in
// order. Called with c.mu held.
func (c *chromeCapture) receivedLocked() []wsMsg {
	var msgs []wsMsg
	for _, f := range c.frames {
		if f.sent || f.opcode != 1 {
			continue
		}
		var m wsMsg
		if err := json.Unmarshal(f.data, &m); err != nil {
			m.Type = "<not JSON>"
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func (c *chromeCapture) received() []wsMsg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.receivedLocked()
}

// sent returns the text messages the page sent.
func (c *chromeCapture) sent() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, f := range c.frames {
		if f.sent {
			out = append(out, string(f.data))
		}
	}
	return out
}

func (c *chromeCapture) socketCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.socketOrder)
}

// requests counts requests whose URL path is path.
func (c *chromeCapture) requests(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, x := range c.exchanges {
		if u, err := url.Parse(x.url); err == nil && u.Path == path {
			n++
		}
	}
	return n
}

// find returns a copy of the first exchange that matches.
func (c *chromeCapture) find(match func(*chromeExchange) bool) (chromeExchange, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range c.order {
		if x := c.exchanges[id]; match(x) {
			return *x, true
		}
	}
	return chromeExchange{}, false
}

func chromeHeaders(h network.Headers) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %v\n", k, h[k])
	}
	return b.String()
}

// chromeItem is one piece of recorded text to scan for secrets.
type chromeItem struct {
	where string
	text  string
	// received is true for what tickgate sent or the browser holds, false
	// for what the page sent.
	received bool
	// login marks a sign-in request body: the one place the password
	// belongs.
	login bool
}

// items returns everything recorded, labelled.
func (c *chromeCapture) items() []chromeItem {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []chromeItem
	for _, id := range c.order {
		x := c.exchanges[id]
		name := x.method + " " + x.url
		out = append(out,
			chromeItem{where: "request " + name, text: x.url + "\n" + chromeHeaders(x.reqHeaders) + chromeHeaders(x.rawReqHeaders)},
			chromeItem{where: "request body " + name, text: string(x.postData), login: x.method == "POST" && strings.HasSuffix(x.url, "/auth/login")},
			chromeItem{where: "response " + name, received: true, text: fmt.Sprintf("%d\n%s%s%s%s", x.status,
				chromeHeaders(x.respHeaders), chromeHeaders(x.rawRespHeaders), x.rawHeadersText, strings.Join(x.redirects, "\n"))},
			chromeItem{where: "response body " + name, received: true, text: string(x.body)},
		)
	}
	for _, id := range c.socketOrder {
		s := c.sockets[id]
		out = append(out,
			chromeItem{where: "WebSocket handshake request " + s.url, text: s.url + "\n" + chromeHeaders(s.reqHeaders)},
			chromeItem{where: "WebSocket handshake response " + s.url, received: true, text: fmt.Sprintf("%d\n%s%s%s", s.status, chromeHeaders(s.respHeaders), s.respText, strings.Join(s.errors, "\n"))},
		)
	}
	for i, f := range c.frames {
		dir := "received"
		if f.sent {
			dir = "sent"
		}
		out = append(out, chromeItem{where: fmt.Sprintf("WebSocket frame %d (%s)", i, dir), text: string(f.data), received: !f.sent})
	}
	for i, s := range c.console {
		out = append(out, chromeItem{where: fmt.Sprintf("console message %d", i), text: s, received: true})
	}
	for i, s := range c.exceptions {
		out = append(out, chromeItem{where: fmt.Sprintf("page exception %d", i), text: s, received: true})
	}
	for i, e := range c.logEntries {
		out = append(out, chromeItem{where: fmt.Sprintf("browser log entry %d", i), text: e.Text + " " + e.URL + " " + chromeRemoteText(e.Args), received: true})
	}
	return out
}

// chromeTab is a headless Chromium tab with a capture running.
type chromeTab struct {
	t    *testing.T
	ctx  context.Context
	base string
	cap  *chromeCapture
}

// chromeOpen starts a fresh browser (own temporary profile) whose one tab
// records its network, console and log events, and schedules its end.
func chromeOpen(t *testing.T, base string) *chromeTab {
	t.Helper()
	path := chromeNeed(t)
	dir, err := os.MkdirTemp("", "tickgate-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1200, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	c := newChromeCapture()
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(c.on))
	fetchDone := make(chan struct{})
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		<-fetchDone
		// Chromium's helpers may still write into the profile for a
		// moment after the browser exits.
		var err error
		for range 50 {
			if err = os.RemoveAll(dir); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("could not remove the browser profile %s: %v", dir, err)
	})
	// The first Run starts the browser, which lives as long as the
	// context it gets: so no deadline here.
	if err := chromedp.Do(ctx); err != nil {
		close(fetchDone)
		t.Fatalf("start %s: %v", path, err)
	}
	go func() {
		defer close(fetchDone)
		c.fetch(ctx)
	}()
	b := &chromeTab{t: t, ctx: ctx, base: base, cap: c}
	b.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		// Keep bodies in the browser until fetch has read them.
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{
			MaxTotalBufferSize:    ptrTo(int64(64 << 20)),
			MaxResourceBufferSize: ptrTo(int64(8 << 20)),
		}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, tg, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: chromeInstrumentJS})
		return err
	}))
	return b
}

func ptrTo[T any](v T) *T { return &v }

// do runs actions with a deadline so that a stuck page fails the test.
func (b *chromeTab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 2*chromeWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v\npage text: %s", err, b.raw(`document.body && document.body.innerText`))
	}
}

// raw evaluates expr and returns its JSON, or the error as text; for
// failure messages.
func (b *chromeTab) raw(expr string) string {
	ctx, cancel := context.WithTimeout(b.ctx, chromeWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(v)
}

// chromeEval evaluates expr (awaiting a promise) into a T.
func chromeEval[T any](b *chromeTab, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, chromeWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// until waits for a JavaScript expression to become truthy.
func (b *chromeTab) until(what, expr string) {
	b.t.Helper()
	b.untilWithin(chromeWait, what, expr)
}

// untilWithin is until with its own bound, for steps that include the
// page's reconnect backoff.
func (b *chromeTab) untilWithin(d time.Duration, what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d+chromeWait)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(d)))
	if err != nil {
		b.t.Fatalf("waiting for %s (%s): %v\npage text: %s\nnetwork:\n%s", what, expr, err,
			b.raw(`document.body && document.body.innerText`), b.cap.summary())
	}
}

// typeInto clears the input and types text into it key by key.
func (b *chromeTab) typeInto(id, text string) {
	b.t.Helper()
	b.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%s).value = ''`, chromeJS(id))),
		chromedp.SendKeys(chromedp.ID(id), text))
}

// submit submits a form the way its button would: requestSubmit runs the
// page's submit handler (form.submit, as chromedp.Submit does, skips it).
func (b *chromeTab) submit(formID string) {
	b.t.Helper()
	b.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%s).requestSubmit()`, chromeJS(formID))))
}

func (b *chromeTab) click(sel string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(sel)))
}

// chromeJS quotes s as a JavaScript string literal.
func chromeJS(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

func chromeCell(sym, field string) string {
	return fmt.Sprintf(`document.querySelector('#ticker tr[data-symbol=%s] [data-field=%s]')`, chromeJS(sym), chromeJS(field))
}

const chromePriceRE = `/^\d+\.\d{2,6}$/`

// price waits until sym's row shows a price and returns it.
func (b *chromeTab) price(sym string) string {
	b.t.Helper()
	b.until(sym+" price", fmt.Sprintf(`%s.test(%s?.textContent ?? '')`, chromePriceRE, chromeCell(sym, "last")))
	return chromeEval[string](b, chromeCell(sym, "last")+`.textContent`)
}

// priceChanges waits until sym's row shows a price other than was.
func (b *chromeTab) priceChanges(sym, was string) {
	b.t.Helper()
	b.until(sym+" price change from "+was, fmt.Sprintf(`(() => { const t = %s?.textContent ?? ''; return %s.test(t) && t !== %s; })()`,
		chromeCell(sym, "last"), chromePriceRE, chromeJS(was)))
}

func (b *chromeTab) loginView() string {
	return `!document.getElementById('login-view').hidden && document.getElementById('login-form').getClientRects().length > 0 && document.getElementById('app-view').hidden`
}

func (b *chromeTab) appView() string {
	return `!document.getElementById('app-view').hidden && document.getElementById('login-view').hidden && !document.getElementById('account').hidden`
}

func chromeTextIncludes(id, s string) string {
	return fmt.Sprintf(`document.getElementById(%s).textContent.includes(%s)`, chromeJS(id), chromeJS(s))
}

// signIn types the credentials and submits the login form.
func (b *chromeTab) signIn(user, password string) {
	b.t.Helper()
	b.typeInto("username", user)
	b.typeInto("password", password)
	b.submit("login-form")
}

// chromeStorage is what the page can keep: it must stay empty.
type chromeStorage struct {
	Cookie    string            `json:"cookie"`
	Local     map[string]string `json:"local"`
	Session   map[string]string `json:"session"`
	IndexedDB []string          `json:"indexedDB"`
	Caches    []string          `json:"caches"`
}

const chromeStorageJS = `(async () => {
  const dump = (s) => Object.fromEntries(Array.from({ length: s.length }, (_, i) => [s.key(i), s.getItem(s.key(i))]));
  const dbs = indexedDB.databases ? (await indexedDB.databases()).map((d) => d.name) : [];
  const cacheNames = self.caches ? await caches.keys() : [];
  return { cookie: document.cookie, local: dump(localStorage), session: dump(sessionStorage), indexedDB: dbs, caches: cacheNames };
})()`

// chromeCookieWant says whether a snapshot expects the session cookie.
type chromeCookieWant int

const (
	chromeCookieSet    chromeCookieWant = iota // exactly the session cookie
	chromeCookieGone                           // no cookie at all
	chromeCookieEither                         // none, or the session cookie
)

// snapshot records what the browser holds now (cookies, web storage, the
// DOM and input values) as scan items, and checks the session cookie and
// empty storage. It returns the session cookie's value, or "".
func (b *chromeTab) snapshot(label string, want chromeCookieWant) (items []chromeItem, cookieValue string) {
	t := b.t
	t.Helper()
	st := chromeEval[chromeStorage](b, chromeStorageJS)
	stJSON, _ := json.Marshal(st)
	items = append(items, chromeItem{where: label + ": document.cookie and web storage", text: string(stJSON), received: true})
	if st.Cookie != "" || len(st.Local) > 0 || len(st.Session) > 0 || len(st.IndexedDB) > 0 || len(st.Caches) > 0 {
		t.Errorf("%s: the page can read or keeps data (want none): %s", label, stJSON)
	}

	// DOMStorage as DevTools sees it, in case the page hid something.
	ctx, cancel := context.WithTimeout(b.ctx, chromeWait)
	defer cancel()
	tree, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
	if err != nil {
		t.Fatalf("%s: frame tree: %v", label, err)
	}
	key, err := chromedp.Call(ctx, storage.GetStorageKey, storage.GetStorageKeyParams{FrameID: tree.FrameTree.Frame.ID})
	if err != nil {
		t.Fatalf("%s: storage key: %v", label, err)
	}
	for _, local := range []bool{true, false} {
		res, err := chromedp.Call(ctx, domstorage.GetDOMStorageItems, domstorage.GetDOMStorageItemsParams{
			StorageID: &domstorage.StorageID{StorageKey: domstorage.SerializedStorageKey(key.StorageKey), IsLocalStorage: local},
		})
		if err != nil {
			t.Fatalf("%s: DOMStorage items: %v", label, err)
		}
		j, _ := json.Marshal(res.Entries)
		items = append(items, chromeItem{where: fmt.Sprintf("%s: DOMStorage local=%t", label, local), text: string(j), received: true})
		if len(res.Entries) > 0 {
			t.Errorf("%s: DOMStorage (local=%t) holds %s", label, local, j)
		}
	}

	// Cookies as the browser stores them, which the page cannot see.
	netCookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base + "/"}})
	if err != nil {
		t.Fatalf("%s: Network.getCookies: %v", label, err)
	}
	allCookies, err := chromedp.Call(ctx, storage.GetCookies, storage.GetCookiesParams{})
	if err != nil {
		t.Fatalf("%s: Storage.getCookies: %v", label, err)
	}
	for name, list := range map[string][]*network.Cookie{"Network.getCookies": netCookies.Cookies, "Storage.getCookies": allCookies.Cookies} {
		j, _ := json.Marshal(list)
		items = append(items, chromeItem{where: label + ": " + name, text: string(j), received: true})
		var names []string
		for _, ck := range list {
			names = append(names, ck.Name)
		}
		if want == chromeCookieGone || (want == chromeCookieEither && len(list) == 0) {
			if len(list) != 0 {
				t.Errorf("%s: %s: cookies %v remain, want none", label, name, names)
			}
			continue
		}
		if len(list) != 1 || list[0].Name != "tickgate" {
			t.Errorf("%s: %s: cookies %v, want exactly the session cookie \"tickgate\"", label, name, names)
			continue
		}
		ck := list[0]
		if !ck.HTTPOnly || ck.SameSite != network.CookieSameSiteStrict || ck.Path != "/" || ck.Domain != "127.0.0.1" {
			t.Errorf("%s: %s: session cookie HttpOnly=%t SameSite=%q Path=%q Domain=%q, want HttpOnly, Strict, /, host-only 127.0.0.1",
				label, name, ck.HTTPOnly, ck.SameSite, ck.Path, ck.Domain)
		}
		if len(ck.Value) < 20 {
			t.Errorf("%s: %s: session cookie value is %d characters, too short to be an unguessable id", label, name, len(ck.Value))
		}
		cookieValue = ck.Value
	}

	html := chromeEval[string](b, `document.documentElement.outerHTML`)
	items = append(items, chromeItem{where: label + ": DOM", text: html, received: true})
	inputs := chromeEval[string](b, `JSON.stringify([...document.querySelectorAll('input, textarea')].map((i) => [i.id, i.value]))`)
	items = append(items, chromeItem{where: label + ": input values", text: inputs, received: true})
	return items, cookieValue
}

// chromeForm is one way a secret could travel.
type chromeForm struct {
	name   string
	encode func(string) string
	folds  bool // matched regardless of case
}

var chromeForms = []chromeForm{
	{"verbatim", func(s string) string { return s }, true},
	{"query-escaped", url.QueryEscape, true},
	{"path-escaped", url.PathEscape, true},
	{"base64", func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }, false},
	{"base64url", func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }, false},
}

// chromeLeak reports in which form secret occurs in text, or "".
func chromeLeak(text, secret string) string {
	lower := strings.ToLower(text)
	for _, f := range chromeForms {
		v := f.encode(secret)
		if strings.Contains(text, v) || (f.folds && strings.Contains(lower, strings.ToLower(v))) {
			return f.name
		}
	}
	return ""
}

// chromeCheckSecrets is the proof: the vendor key is in nothing the
// browser sent, received or holds, nor in the server log; the password is
// only in the sign-in request bodies; the session cookie's value is in no
// body, frame, DOM, storage or log.
func chromeCheckSecrets(t *testing.T, items []chromeItem, serverLog string, cookieValues []string) {
	t.Helper()
	scanned, loginBodies := 0, 0
	for _, it := range items {
		scanned += len(it.text)
		if form := chromeLeak(it.text, testKey); form != "" {
			t.Errorf("the vendor key (%s) is in the %s", form, it.where)
		}
		if it.login {
			if strings.Contains(it.text, testPassword) {
				loginBodies++
			}
		} else if form := chromeLeak(it.text, testPassword); form != "" {
			t.Errorf("the password (%s) is in the %s", form, it.where)
		}
		for _, cv := range cookieValues {
			if cv == "" || !strings.Contains(it.text, cv) {
				continue
			}
			if chromeCookiePlace(it.where) {
				continue
			}
			t.Errorf("the session cookie's value is in the %s", it.where)
		}
	}
	// Positive control: the recording holds what the page typed, so a
	// leak would have been seen.
	if loginBodies == 0 {
		t.Errorf("no sign-in request body with the password was recorded: the capture is blind")
	}
	t.Logf("scanned %d recorded items, %d bytes, %d bytes of server log", len(items), scanned, len(serverLog))
	for _, secret := range []struct{ name, value string }{{"vendor key", testKey}, {"password", testPassword}} {
		if form := chromeLeak(serverLog, secret.value); form != "" {
			t.Errorf("the %s (%s) is in the server log", secret.name, form)
		}
	}
	for _, cv := range cookieValues {
		if cv != "" && strings.Contains(serverLog, cv) {
			t.Errorf("the session cookie's value is in the server log")
		}
	}
}

// chromeCookiePlace says whether the item named where may hold the session
// cookie: the cookie travels in headers (Cookie, Set-Cookie) and DevTools
// reports it among the cookies; it belongs in no body, frame, DOM or log.
func chromeCookiePlace(where string) bool {
	switch {
	case strings.HasPrefix(where, "request body "), strings.HasPrefix(where, "response body "):
		return false
	case strings.HasPrefix(where, "request "), strings.HasPrefix(where, "response "),
		strings.HasPrefix(where, "WebSocket handshake "), strings.HasSuffix(where, "getCookies"):
		return true
	}
	return false
}

// chromeCheckConsole fails on console errors, uncaught exceptions, CSP
// violations and browser log errors other than the expected 401s and those
// allowed says the test caused.
func chromeCheckConsole(t *testing.T, b *chromeTab, allowed func(*cdplog.Entry) bool) {
	t.Helper()
	if csp := b.raw(`window.__tg.csp`); csp != "[]" {
		t.Errorf("CSP violations reported to the page: %s", csp)
	}
	c := b.cap
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.consoleErrors {
		t.Errorf("console error: %s", s)
	}
	for _, s := range c.exceptions {
		t.Errorf("uncaught exception: %s", s)
	}
	for _, e := range c.logEntries {
		csp := e.Source == cdplog.EntrySourceSecurity || strings.Contains(e.Text, "Content Security Policy") || strings.Contains(e.Text, "Content-Security-Policy")
		// Chromium logs every non-2xx fetch; the page asks /auth/session
		// before signing in and tries a wrong password, both 401.
		expected401 := e.Source == cdplog.EntrySourceNetwork && strings.Contains(e.Text, "status of 401") &&
			(strings.HasSuffix(e.URL, "/auth/session") || strings.HasSuffix(e.URL, "/auth/login"))
		if csp || (e.Level == cdplog.EntryLevelError && !expected401 && (allowed == nil || !allowed(e))) {
			t.Errorf("browser log %s/%s: %s %s", e.Source, e.Level, e.Text, e.URL)
		}
	}
}

// chromeLogRecords parses the server's JSON log lines.
func chromeLogRecords(log string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(log, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

// chromeWaitLog waits until the server logged a record that matches.
func chromeWaitLog(t *testing.T, inst *instance, what string, match func(map[string]any) bool) {
	t.Helper()
	deadline := time.Now().Add(chromeWait)
	for {
		if slices.ContainsFunc(chromeLogRecords(inst.stderr.String()), match) {
			return
		}
		if time.Now().After(deadline) {
			var ws []string
			for _, line := range strings.Split(inst.stderr.String(), "\n") {
				if strings.Contains(line, `"ws `) || strings.Contains(line, "session") || strings.Contains(line, "/auth/") {
					ws = append(ws, line)
				}
			}
			t.Fatalf("server never logged %s within %v; WebSocket and session records:\n%s", what, chromeWait, strings.Join(ws, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func chromeWSClose(code float64) func(map[string]any) bool {
	return func(r map[string]any) bool { return r["msg"] == "ws close" && r["code"] == code && r["user"] == "demo" }
}

// quiet checks for d that no new WebSocket is opened and /auth/session is
// not asked again: a reconnect loop would do one or the other within the
// first backoff step (at most 1 s).
func (b *chromeTab) quiet(what string, d time.Duration) {
	b.t.Helper()
	sockets, checks := b.cap.socketCount(), b.cap.requests("/auth/session")
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if n := b.cap.socketCount(); n != sockets {
			b.t.Fatalf("%s: the page opened %d more WebSocket(s)", what, n-sockets)
		}
		if n := b.cap.requests("/auth/session"); n != checks {
			b.t.Fatalf("%s: the page asked /auth/session %d more time(s)", what, n-checks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// chromeSocketRecord is what chromeInstrumentJS saw of one WebSocket.
type chromeSocketRecord struct {
	URL        string  `json:"url"`
	Code       *int    `json:"code"`
	Reason     string  `json:"reason"`
	PageClosed bool    `json:"pageClosed"`
	OpenedAt   float64 `json:"openedAt"` // performance.now(), ms
	ClosedAt   float64 `json:"closedAt"`
}

// TestBrowserDemo walks the demo as a user in headless Chromium and proves
// from the DevTools record that the vendor key never reaches the browser.
func TestBrowserDemo(t *testing.T) {
	chromeNeed(t)
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword})
	b := chromeOpen(t, inst.url)

	b.do(chromedp.Navigate(inst.url + "/"))
	b.until("login form", b.loginView())

	// The page is served with the security headers the CSP check relies on.
	doc, ok := b.cap.find(func(x *chromeExchange) bool { return x.resType == network.ResourceTypeDocument && x.status != 0 })
	if !ok {
		t.Fatalf("the document's response was not recorded\n%s", b.cap.summary())
	}
	hdr := chromeHeaders(doc.respHeaders)
	for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "nosniff", "no-referrer"} {
		if !strings.Contains(hdr, want) {
			t.Errorf("the page's response headers lack %q:\n%s", want, hdr)
		}
	}

	var scan []chromeItem
	var cookies []string

	// A wrong password shows an error and keeps the form.
	b.signIn("demo", "not the password")
	b.until("invalid credentials message", chromeTextIncludes("login-message", "Invalid username or password"))
	b.until("still on the login form", b.loginView())
	if v := chromeEval[string](b, `document.getElementById('password').value`); v != "" {
		t.Errorf("the password field still holds %d characters after a failed sign-in", len(v))
	}

	b.signIn("demo", testPassword)
	b.until("signed in", b.appView()+` && document.getElementById('user').textContent === 'demo'`)
	if v := chromeEval[string](b, `document.getElementById('password').value`); v != "" {
		t.Errorf("the password field still holds %d characters after signing in", len(v))
	}
	items, cv := b.snapshot("signed in", chromeCookieSet)
	scan, cookies = append(scan, items...), append(cookies, cv)

	// Quote through the REST proxy.
	b.typeInto("quote-symbol", "aapl")
	b.submit("quote-form")
	b.until("AAPL quote", `(() => {
		const r = document.getElementById('quote-result');
		const q = (f) => r.querySelector('[data-field=' + f + ']')?.textContent ?? '';
		return !r.classList.contains('error') && q('symbol') === 'AAPL' && parseFloat(q('last')) > 0 &&
			parseFloat(q('bid')) > 0 && parseFloat(q('ask')) > 0 && q('time') !== '—';
	})()`)
	if x, ok := b.cap.find(func(x *chromeExchange) bool { return strings.HasSuffix(x.url, "/api/demo/v1/quote/AAPL") }); !ok || x.status != 200 {
		t.Errorf("the quote request was not recorded as 200: %+v", x)
	}

	// Live ticks for the default symbols: their prices move.
	b.until("feed live", `document.getElementById('connection-status').dataset.state === 'live'`)
	for _, sym := range []string{"AAPL", "MSFT"} {
		b.priceChanges(sym, b.price(sym))
	}

	// Subscribe TSLA: its row appears and updates.
	b.typeInto("subscribe-symbol", "tsla")
	b.submit("subscribe-form")
	b.priceChanges("TSLA", b.price("TSLA"))
	b.until("three rows", `[...document.querySelectorAll('#ticker tr')].map((r) => r.dataset.symbol).join() === 'AAPL,MSFT,TSLA'`)
	// Price changes are highlighted by direction.
	b.until("a price marked up or down", `document.querySelector('#ticker td[data-field=last].up, #ticker td[data-field=last].down') !== null`)
	chromeScreenshot(t, b)

	// Unsubscribe TSLA: the row goes and no more TSLA data arrives.
	b.click(`#ticker tr[data-symbol="TSLA"] button`)
	b.until("TSLA row removed", `!document.querySelector('#ticker tr[data-symbol="TSLA"]')`)
	// Screen readers hear the change (the table itself is not a live region).
	b.until("removal announced", `document.getElementById('ticker-announce').getAttribute('aria-live') === 'polite' && `+
		chromeTextIncludes("ticker-announce", "TSLA removed"))
	// The relay drops queued TSLA data before it acknowledges, so after
	// the acknowledgement no TSLA tick may come, however many others do.
	b.cap.waitFor(t, "the unsubscribed acknowledgement for TSLA and 10 data frames after it", func() bool {
		msgs := b.cap.receivedLocked()
		ack := slices.IndexFunc(msgs, func(m wsMsg) bool { return m.Type == "unsubscribed" && slices.Contains(m.Symbols, "TSLA") })
		if ack < 0 {
			return false
		}
		data := 0
		for _, m := range msgs[ack+1:] {
			if m.Type == "data" {
				data++
			}
		}
		return data >= 10
	})
	msgs := b.cap.received()
	ack := slices.IndexFunc(msgs, func(m wsMsg) bool { return m.Type == "unsubscribed" && slices.Contains(m.Symbols, "TSLA") })
	for _, m := range msgs[ack+1:] {
		if m.Type == "data" && hasDataFor("TSLA")(m) {
			t.Errorf("TSLA data arrived after its unsubscribed acknowledgement")
			break
		}
	}
	if !slices.ContainsFunc(msgs[:ack], func(m wsMsg) bool { return m.Type == "data" && hasDataFor("TSLA")(m) }) {
		t.Errorf("no TSLA data was recorded before the unsubscribe")
	}
	if got := chromeEval[string](b, `[...document.querySelectorAll('#ticker tr')].map((r) => r.dataset.symbol).join()`); got != "AAPL,MSFT" {
		t.Errorf("ticker rows = %q, want AAPL,MSFT", got)
	}
	sent := strings.Join(b.cap.sent(), "\n")
	for _, want := range []string{
		`{"action":"subscribe","symbols":["AAPL","MSFT"]}`,
		`{"action":"subscribe","symbols":["TSLA"]}`,
		`{"action":"unsubscribe","symbols":["TSLA"]}`,
	} {
		if !strings.Contains(sent, want) {
			t.Errorf("the page never sent %s; it sent:\n%s", want, sent)
		}
	}

	// The session's idle countdown is shown and runs.
	const countdown = `/^Idle timeout in (29:[0-5]\d|30:00)$/`
	b.until("idle countdown", countdown+`.test(document.getElementById('session-expiry').textContent)`)
	first := chromeEval[string](b, `document.getElementById('session-expiry').textContent`)
	b.until("countdown ticking", fmt.Sprintf(`(() => { const t = document.getElementById('session-expiry').textContent; return %s.test(t) && t !== %s; })()`,
		countdown, chromeJS(first)))

	items, cv = b.snapshot("signed in, before logout", chromeCookieSet)
	scan, cookies = append(scan, items...), append(cookies, cv)

	// Log out: back to the login form, the socket closed by the server
	// with 4001, the cookie cleared, and the page stays put.
	b.click("#logout")
	b.until("login form after logout", b.loginView()+` && `+chromeTextIncludes("login-message", "signed out")+
		` && document.getElementById('account').hidden && document.querySelectorAll('#ticker tr').length === 0`)
	b.cap.waitFor(t, "the WebSocket closed", func() bool {
		for _, s := range b.cap.sockets {
			if !s.closed {
				return false
			}
		}
		return len(b.cap.sockets) > 0
	})
	chromeWaitLog(t, inst, "ws close with 4001 after logout", chromeWSClose(4001))
	// The server ends the session's sockets before it answers the logout,
	// so the page sees 4001 unless it closed the socket first itself.
	if socks := chromeEval[[]chromeSocketRecord](b, `window.__tg.sockets`); len(socks) != 1 || socks[0].Code == nil ||
		(*socks[0].Code != 4001 && !socks[0].PageClosed) {
		t.Errorf("the page's sockets after logout: %+v, want one closed with 4001", socks)
	}
	if x, ok := b.cap.find(func(x *chromeExchange) bool { return strings.HasSuffix(x.url, "/auth/logout") }); !ok || x.status != 204 {
		t.Errorf("logout answered %d, want 204", x.status)
	}
	b.quiet("after logout", 3*time.Second)
	if n := b.cap.socketCount(); n != 1 {
		t.Errorf("the page opened %d WebSockets, want 1", n)
	}

	b.cap.settled(t)
	items, _ = b.snapshot("after logout", chromeCookieGone)
	scan = append(scan, items...)
	scan = append(scan, b.cap.items()...)
	chromeCheckConsole(t, b, nil)
	chromeCheckBodies(t, b.cap)
	chromeCheckControls(t, b)

	if err := inst.stop(); err != nil {
		t.Fatal(err)
	}
	chromeCheckSecrets(t, scan, inst.stderr.String(), cookies)
}

// chromeCheckBodies makes sure every response body was read, so that
// the scan saw it.
func chromeCheckBodies(t *testing.T, c *chromeCapture) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, x := range c.exchanges {
		if x.status == 0 || x.status == 204 || !x.finished {
			continue
		}
		if !x.bodyFetched || x.bodyErr != "" {
			t.Errorf("the body of %s %s (%d) was not read: %s", x.method, x.url, x.status, x.bodyErr)
		}
		n++
	}
	if n == 0 {
		t.Errorf("no response bodies recorded")
	}
}

// chromeCheckControls makes sure the recording saw what a leak would be in:
// the app's script, a quote body, the Set-Cookie header and ticks.
func chromeCheckControls(t *testing.T, b *chromeTab) {
	t.Helper()
	c := b.cap
	c.mu.Lock()
	defer c.mu.Unlock()
	var script, quote, setCookie bool
	for _, x := range c.exchanges {
		switch {
		case strings.HasSuffix(x.url, "/app.js"):
			script = strings.Contains(string(x.body), "pageConfig")
		case strings.HasSuffix(x.url, "/api/demo/v1/quote/AAPL"):
			quote = strings.Contains(string(x.body), `"symbol":"AAPL"`)
		case strings.HasSuffix(x.url, "/auth/login") && x.status == 200:
			h := strings.ToLower(chromeHeaders(x.rawRespHeaders) + x.rawHeadersText)
			setCookie = strings.Contains(h, "set-cookie") && strings.Contains(h, "httponly") && strings.Contains(h, "samesite=strict")
		}
	}
	if !script || !quote || !setCookie {
		t.Errorf("recording incomplete: app.js body %t, quote body %t, Set-Cookie HttpOnly SameSite=Strict %t", script, quote, setCookie)
	}
	ticks := 0
	for _, f := range c.frames {
		if !f.sent && strings.Contains(string(f.data), `"type":"data"`) {
			ticks++
		}
	}
	if ticks == 0 {
		t.Errorf("no data frames recorded")
	}
}

// TestBrowserIdleExpiry: signed in and left alone, the page goes back to
// the login form by itself when the session idles out, and does not try to
// reconnect.
//
// The page's countdown asks /auth/session when it runs out, in phase with
// the sign-in, so it usually learns of the expiry (401) a few milliseconds
// after the deadline and closes the socket itself, before the server's
// once-a-second session check closes it with 4001. "page notices" accepts
// either order; "server closes with 4001" blocks the page's /auth/session
// checks so that the server's 4001 is the only signal.
func TestBrowserIdleExpiry(t *testing.T) {
	chromeNeed(t)
	t.Run("page notices", func(t *testing.T) { chromeIdleExpiry(t, false) })
	t.Run("server closes with 4001", func(t *testing.T) { chromeIdleExpiry(t, true) })
	t.Run("still here keeps the session", chromeStillHere)
}

// chromeStillHere: before idle expiry the page asks "are you still
// there?"; answering pushes the server's idle expiry back (the page's
// ping counts as activity, its own expiry checks do not), and left alone
// afterwards the session still ends.
func chromeStillHere(t *testing.T) {
	// Long enough that the click lands well before expiry on a loaded
	// machine: the notice shows in the last half of the idle window.
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword, "TICKGATE_SESSION_IDLE": "10s"})
	b := chromeOpen(t, inst.url)
	b.do(chromedp.Navigate(inst.url + "/"))
	b.until("login form", b.loginView())
	b.signIn("demo", testPassword)
	b.until("signed in", b.appView())
	b.price("AAPL")

	const notice = `!document.getElementById('idle-notice').hidden`
	const expiresAt = `document.getElementById('session-expiry').dataset.idleExpiresAt`
	b.until("still-here notice", notice+` && /^Idle timeout in 0:0[0-5]$/.test(document.getElementById('session-expiry').textContent)`)
	before := chromeEval[string](b, expiresAt)
	pings := strings.Count(strings.Join(b.cap.sent(), "\n"), `"action":"ping"`)
	b.click("#still-here")
	b.until("expiry pushed back", fmt.Sprintf(`!(%s) && (%s) > %s`, notice, expiresAt, chromeJS(before)))
	b.until("still signed in", b.appView())
	if n := strings.Count(strings.Join(b.cap.sent(), "\n"), `"action":"ping"`); n != pings+1 {
		t.Errorf("the page sent %d pings for one click, want 1", n-pings)
	}

	// Left alone again, the session idles out and the page says so.
	b.untilWithin(30*time.Second, "signed out after idle expiry", b.loginView()+
		` && /inactivity|session has ended|session has expired/i.test(document.getElementById('login-message').textContent)`)
	chromeCheckConsole(t, b, nil)
}

func chromeIdleExpiry(t *testing.T, blockChecks bool) {
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword, "TICKGATE_SESSION_IDLE": "4s"})
	b := chromeOpen(t, inst.url)

	b.do(chromedp.Navigate(inst.url + "/"))
	b.until("login form", b.loginView())
	b.signIn("demo", testPassword)
	b.until("signed in", b.appView())
	if blockChecks {
		b.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, network.SetBlockedURLs, network.SetBlockedURLsParams{
				URLPatterns: []*network.BlockPattern{{URLPattern: "*://*:*/auth/session", Block: true}},
			})
			return err
		}))
	}
	b.price("AAPL") // the feed is open and delivering
	items, cv := b.snapshot("signed in", chromeCookieSet)

	// Nothing more: data pushed to the page is not activity.
	message := `/inactivity|session has ended|session has expired/i`
	if blockChecks {
		message = `/session has ended/`
	}
	b.until("signed out after idle expiry", b.loginView()+` && document.getElementById('account').hidden && `+
		message+`.test(document.getElementById('login-message').textContent)`)
	b.cap.waitFor(t, "the WebSocket closed", func() bool {
		return len(b.cap.sockets) == 1 && b.cap.sockets[b.cap.socketOrder[0]].closed
	})
	socks := chromeEval[[]chromeSocketRecord](b, `window.__tg.sockets`)
	if len(socks) != 1 || socks[0].Code == nil {
		t.Fatalf("the page's sockets: %+v, want one, closed", socks)
	}
	switch s := socks[0]; {
	case *s.Code == 4001:
		chromeWaitLog(t, inst, "the idle session's socket closed with 4001", chromeWSClose(4001))
	case s.PageClosed && !blockChecks:
		expired := 0
		b.cap.mu.Lock()
		for _, x := range b.cap.exchanges {
			if strings.HasSuffix(x.url, "/auth/session") && x.status == 401 {
				expired++
			}
		}
		b.cap.mu.Unlock()
		if expired < 2 { // the first 401 is the page's check before sign-in
			t.Errorf("the page closed its socket (code %d) without /auth/session saying the session ended", *s.Code)
		}
		chromeWaitLog(t, inst, "the socket's close", func(r map[string]any) bool {
			return r["msg"] == "ws close" && r["user"] == "demo" && (r["code"] == float64(4001) || r["code"] == float64(1000))
		})
		t.Logf("the page noticed the expiry first and closed the socket itself (close code %d)", *s.Code)
	default:
		t.Errorf("the socket closed with %d %q (page closed it: %t), want 4001", *s.Code, s.Reason, s.PageClosed)
	}
	b.quiet("after idle expiry", 3*time.Second)

	b.cap.settled(t)
	more, _ := b.snapshot("after idle expiry", chromeCookieEither)
	items = append(items, more...)
	items = append(items, b.cap.items()...)
	chromeCheckConsole(t, b, func(e *cdplog.Entry) bool {
		// The requests this test blocked.
		return blockChecks && strings.Contains(e.Text, "ERR_BLOCKED_BY_CLIENT") && strings.HasSuffix(e.URL, "/auth/session")
	})
	chromeCheckBodies(t, b.cap)
	if err := inst.stop(); err != nil {
		t.Fatal(err)
	}
	chromeCheckSecrets(t, items, inst.stderr.String(), []string{cv})
}

// TestBrowserLeakDetector checks the scan itself (it needs no browser): a
// secret is found in every form it could travel in, and the cookie rule
// tells headers from bodies.
func TestBrowserLeakDetector(t *testing.T) {
	for _, tc := range []struct {
		name, secret, text, want string
	}{
		{"verbatim in JSON", testKey, `{"request":"/v1/quote/AAPL?apikey=` + testKey + `"}`, "verbatim"},
		{"upper case", testKey, "X-Key: " + strings.ToUpper(testKey), "verbatim"},
		{"query-escaped", testPassword, "password=" + url.QueryEscape(testPassword), "query-escaped"},
		{"path-escaped", testPassword, "/login/" + url.PathEscape(testPassword), "path-escaped"},
		{"basic auth", testPassword, "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(testPassword)), "base64"},
		{"base64url", testKey, "token=" + base64.RawURLEncoding.EncodeToString([]byte(testKey)), "base64url"},
		{"absent", testKey, `{"symbol":"AAPL","last":191.2,"key":"demo-vendor-key"}`, ""},
	} {
		if got := chromeLeak(tc.text, tc.secret); got != tc.want {
			t.Errorf("%s: chromeLeak = %q, want %q", tc.name, got, tc.want)
		}
	}
	for where, ok := range map[string]bool{
		"request GET http://127.0.0.1/auth/session":          true,
		"response POST http://127.0.0.1/auth/login":          true,
		"WebSocket handshake request ws://127.0.0.1/ws/demo": true,
		"signed in: Network.getCookies":                      true,
		"request body POST http://127.0.0.1/auth/login":      false,
		"response body GET http://127.0.0.1/auth/session":    false,
		"WebSocket frame 3 (received)":                       false,
		"signed in: DOM":                                     false,
		"console message 0":                                  false,
	} {
		if got := chromeCookiePlace(where); got != ok {
			t.Errorf("chromeCookiePlace(%q) = %t, want %t", where, got, ok)
		}
	}
}

// cutProxy is a TCP forwarder between the browser and tickgate that the
// test can cut, as a lost network would: open connections are broken and
// new ones are closed at once, until restore.
type cutProxy struct {
	ln     net.Listener
	target atomic.Value // "host:port" of tickgate
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.setCut(true)
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target.Load().(string))
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// setCut breaks every open connection and refuses new ones (true), or
// lets connections through again (false).
func (p *cutProxy) setCut(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = on
	if on {
		for c := range p.conns {
			_ = c.Close()
		}
	}
}

// chromeStatusLogJS records every state the connection status shows, so
// that a state the page passes through quickly is not missed by polling.
const chromeStatusLogJS = `(() => {
  const el = document.getElementById('connection-status');
  window.__states = [el.dataset.state + ': ' + el.textContent];
  new MutationObserver(() => window.__states.push(el.dataset.state + ': ' + el.textContent))
    .observe(el, { attributes: true, childList: true, characterData: true, subtree: true });
})()`

// chromeStates is what chromeStatusLogJS recorded, one "state: text" each.
func (b *chromeTab) states() []string {
	b.t.Helper()
	return chromeEval[[]string](b, `window.__states`)
}

// TestBrowserFeedLoss drives the page against the real server while the
// vendor (our own marketsim) misbehaves: the upstream dropped (the relay
// reconnects and the page shows it), the key refused (the relay closes the
// page's socket with 1013, the page says so, keeps the session and comes
// back with backoff once the key works again), and the page's own socket
// breaking the message-rate policy (4008).
func TestBrowserFeedLoss(t *testing.T) {
	chromeNeed(t)
	sim, err := marketsim.New(marketsim.Options{Keys: []string{testKey}, ConnCap: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	// The browser reaches tickgate through a proxy the test can cut.
	proxy := newCutProxy(t)
	pageURL := "http://" + proxy.ln.Addr().String()
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword,
		"TICKGATE_DEMO_VENDOR_URL": sim.URL(), "TICKGATE_PUBLIC_ORIGIN": pageURL})
	// tickgate prints the public origin (the proxy) as the URL to open; its
	// own address is in the start-up log.
	m := regexp.MustCompile(`"msg":"tickgate started","addr":"([^"]+)"`).FindStringSubmatch(inst.stderr.String())
	if m == nil {
		t.Fatalf("no listen address in the log:\n%s", inst.stderr.String())
	}
	proxy.target.Store(m[1])
	b := chromeOpen(t, pageURL)
	b.do(chromedp.Navigate(pageURL + "/"))
	b.until("login form", b.loginView())
	b.signIn("demo", testPassword)
	b.until("signed in", b.appView())
	b.until("feed live", `document.getElementById('connection-status').dataset.state === 'live'`)
	b.price("AAPL")
	b.do(chromedp.Evaluate[chromedp.Void](chromeStatusLogJS))

	// 1. The vendor drops every connection: the relay tells the page, the
	// page shows "reconnecting", then live again, on the same socket.
	if n := sim.DropAll(); n == 0 {
		t.Fatal("DropAll dropped no vendor connection")
	}
	b.cap.waitFor(t, "status reconnecting, then connected", func() bool {
		msgs := b.cap.receivedLocked()
		i := slices.IndexFunc(msgs, func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "reconnecting" })
		return i >= 0 && slices.ContainsFunc(msgs[i:], func(m wsMsg) bool { return m.Type == "status" && m.Upstream == "connected" })
	})
	b.until("live again", `document.getElementById('connection-status').dataset.state === 'live'`)
	states := strings.Join(b.states(), "\n")
	if !strings.Contains(states, "upstream-reconnecting: Vendor feed reconnecting") {
		t.Errorf("the page never showed the vendor reconnecting; it showed:\n%s", states)
	}
	b.priceChanges("AAPL", b.price("AAPL"))
	if n := b.cap.socketCount(); n != 1 {
		t.Errorf("the page opened %d WebSockets across an upstream reconnect, want 1 (the relay reconnects, not the page)", n)
	}

	// 2. The network between browser and server breaks: the socket dies
	// (1006), the page says so and retries with growing waits (each try
	// fails while the network is down; it checks the session first);
	// when the network is back it is live again with its symbols.
	proxy.setCut(true)
	b.until("connection lost shown", `document.getElementById('connection-status').dataset.state === 'reconnecting' && `+
		chromeTextIncludes("connection-status", "connection was lost"))
	b.until("two failed retries", `window.__tg.sockets.length >= 3 && window.__tg.sockets.every((s) => s.code !== null)`)
	b.until("still signed in while offline", b.appView())
	proxy.setCut(false)
	b.untilWithin(30*time.Second, "live after the network is back", `document.getElementById('connection-status').dataset.state === 'live'`)
	b.priceChanges("AAPL", b.price("AAPL"))
	b.until("rows confirmed after the network is back", `document.querySelectorAll('#ticker tr.pending').length === 0`)
	socks := chromeEval[[]chromeSocketRecord](b, `window.__tg.sockets`)
	if socks[0].Code == nil || *socks[0].Code != 1006 || socks[0].PageClosed {
		t.Errorf("the socket the network loss broke: %+v, want 1006", socks[0])
	}
	// Exponential backoff with "equal jitter": attempt k waits between
	// half and all of min(30 s, 1 s·2^k). Lower bounds only: load can make
	// waits longer, never shorter.
	for k := 1; k < len(socks); k++ {
		floor := 500 * math.Pow(2, float64(k-1))
		if gap := socks[k].OpenedAt - socks[k-1].ClosedAt; gap < floor-50 {
			t.Errorf("retry %d came %.0f ms after the previous close, want at least %.0f ms", k, gap, floor)
		}
	}

	// 3. The vendor refuses the key: the relay closes the feed with 1013.
	// The page says so, stays signed in and retries with backoff; once the
	// key works again it is live on a new socket and resubscribed.
	if err := sim.SetKeys("not-" + testKey); err != nil {
		t.Fatal(err)
	}
	sim.DropAll()
	b.until("1013 shown", `document.getElementById('connection-status').dataset.state === 'reconnecting' && `+
		chromeTextIncludes("connection-status", "not available right now"))
	b.until("still signed in", b.appView())
	socks = chromeEval[[]chromeSocketRecord](b, `window.__tg.sockets`)
	if last := socks[len(socks)-1]; last.Code == nil || *last.Code != 1013 {
		t.Errorf("the live socket's close: %+v, want 1013", last)
	}
	if err := sim.SetKeys(testKey); err != nil {
		t.Fatal(err)
	}
	// The page waits at least 5 s after a 1013 and backs off further while
	// the relay still refuses; the relay retries the vendor with its own
	// backoff: allow for a few rounds of both.
	b.untilWithin(90*time.Second, "live after the key works again", `document.getElementById('connection-status').dataset.state === 'live'`)
	b.priceChanges("MSFT", b.price("MSFT"))
	b.until("rows confirmed after resubscribe", `document.querySelectorAll('#ticker tr.pending').length === 0`)
	// Backoff, not a loop: every socket after a 1013 opened at least the
	// page's 5 s floor after that close (a lower bound, which load cannot
	// break), and the session was checked before each try.
	socks = chromeEval[[]chromeSocketRecord](b, `window.__tg.sockets`)
	if len(socks) < 2 {
		t.Errorf("the page opened %d WebSockets, want a new one after 1013", len(socks))
	}
	for i := 1; i < len(socks); i++ {
		if prev := socks[i-1]; prev.Code != nil && *prev.Code == 1013 && socks[i].OpenedAt-prev.ClosedAt < 4900 {
			t.Errorf("socket %d opened %.0f ms after a 1013 close, want at least 5 s", i, socks[i].OpenedAt-prev.ClosedAt)
		}
	}
	if n := b.cap.requests("/auth/session"); n < len(socks) {
		t.Errorf("%d session checks for %d sockets: the page must check the session before reconnecting", n, len(socks))
	}
	// 4. The page's socket breaks the message-rate policy: close 4008, a
	// visible message, the session kept, and a slow retry.
	b.do(chromedp.Evaluate[chromedp.Void](`for (let i = 0; i < 40; i++) window.__tg.last.send('{"action":"ping"}')`))
	b.until("4008 shown", `document.getElementById('connection-status').dataset.state === 'reconnecting' && `+
		chromeTextIncludes("connection-status", "too many messages"))
	socks = chromeEval[[]chromeSocketRecord](b, `window.__tg.sockets`)
	if last := socks[len(socks)-1]; last.Code == nil || *last.Code != 4008 {
		t.Errorf("the last socket's close: %+v, want 4008", last)
	}
	if wait := chromeEval[string](b, `document.getElementById('connection-status').textContent`); !regexp.MustCompile(`Reconnecting in (3\d|[4-9]\d) s`).MatchString(wait) {
		t.Errorf("after 4008 the page says %q, want a retry in 30 s or more", wait)
	}
	b.until("still signed in after 4008", b.appView())

	b.cap.settled(t)
	items, cv := b.snapshot("after feed loss", chromeCookieSet)
	items = append(items, b.cap.items()...)
	chromeCheckConsole(t, b, func(e *cdplog.Entry) bool {
		// The tries while the network was cut.
		return e.Source == cdplog.EntrySourceNetwork && strings.Contains(e.Text, "net::ERR_") &&
			(strings.HasSuffix(e.URL, "/auth/session") || strings.Contains(e.Text, "/ws/demo"))
	})
	if err := inst.stop(); err != nil {
		t.Fatal(err)
	}
	chromeCheckSecrets(t, items, inst.stderr.String(), []string{cv})
}

// TestBrowserLoginRateLimited: past the login limit the page shows the
// server's Retry-After and keeps the button off.
func TestBrowserLoginRateLimited(t *testing.T) {
	chromeNeed(t)
	inst := start(t, map[string]string{"TICKGATE_DEMO_KEY": testKey, "TICKGATE_DEMO_PASSWORD": testPassword,
		"TICKGATE_LIMIT_LOGIN": "2/1m"})
	b := chromeOpen(t, inst.url)
	b.do(chromedp.Navigate(inst.url + "/"))
	b.until("login form", b.loginView())
	for i := range 2 {
		b.signIn("demo", "wrong password")
		b.until(fmt.Sprintf("wrong password %d", i+1), chromeTextIncludes("login-message", "Invalid username or password")+
			` && !document.getElementById('login-submit').disabled`)
		b.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('login-message').textContent = ''`))
	}
	b.signIn("demo", testPassword)
	b.until("429 shown", `/Too many sign-in attempts\. Try again in \d+ s\./.test(document.getElementById('login-message').textContent)`)
	msg := chromeEval[string](b, `document.getElementById('login-message').textContent`)
	x, ok := b.cap.find(func(x *chromeExchange) bool { return strings.HasSuffix(x.url, "/auth/login") && x.status == 429 })
	if !ok {
		t.Fatalf("no 429 recorded\n%s", b.cap.summary())
	}
	var retry string
	for k, v := range x.respHeaders {
		if strings.EqualFold(k, "Retry-After") {
			retry = fmt.Sprint(v)
		}
	}
	if retry == "" || !strings.Contains(msg, "in "+retry+" s") {
		t.Errorf("the page says %q, the server's Retry-After is %q", msg, retry)
	}
	if !chromeEval[bool](b, `document.getElementById('login-submit').disabled`) {
		t.Error("the sign-in button is enabled while the server refuses logins")
	}
	b.until("still on the login form", b.loginView())
	chromeCheckConsole(t, b, func(e *cdplog.Entry) bool {
		return strings.Contains(e.Text, "status of 429") && strings.HasSuffix(e.URL, "/auth/login")
	})
}

// TestBrowserTeamConfig: the same page works, unedited, for a team's own
// configuration: an upstream and two feeds with names of their choosing
// (not "demo"), which the server writes into the page.
func TestBrowserTeamConfig(t *testing.T) {
	chromeNeed(t)
	sim, err := marketsim.New(marketsim.Options{Keys: []string{testKey}, ConnCap: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	hash, err := session.HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "tickgate.yaml")
	writeFile(t, cfg, `upstreams:
  acme:
    base_url: `+sim.URL()+`
    key: {secret: VENDOR_KEY, placement: "query:apikey"}
    routes: [{paths: ["/v1/symbols", "/v1/quote/*"]}]
feeds:
  stocks:
    url: `+sim.StreamURL()+`
    key: {secret: VENDOR_KEY}
    adapter: {preset: marketsim}
  crypto:
    url: `+sim.StreamURL()+`
    key: {secret: VENDOR_KEY}
    adapter: {preset: marketsim}
`)
	inst := start(t, map[string]string{"TICKGATE_CONFIG": cfg, "TICKGATE_USERS": "team:" + hash, "VENDOR_KEY": testKey})
	b := chromeOpen(t, inst.url)
	b.do(chromedp.Navigate(inst.url + "/"))
	b.until("login form", b.loginView())
	b.signIn("team", testPassword)
	b.until("signed in", b.appView())

	// The quote goes to the team's upstream.
	b.typeInto("quote-symbol", "msft")
	b.submit("quote-form")
	b.until("MSFT quote", `document.querySelector('#quote-result [data-field=symbol]')?.textContent === 'MSFT'`)
	if x, ok := b.cap.find(func(x *chromeExchange) bool { return strings.HasSuffix(x.url, "/api/acme/v1/quote/MSFT") }); !ok || x.status != 200 {
		t.Errorf("the quote did not go to /api/acme/v1/quote/MSFT with 200: %+v\n%s", x.status, b.cap.summary())
	}

	// The ticker offers both feeds, the first by name selected, and uses it.
	if got := chromeEval[string](b, `[...document.querySelectorAll('#feed-select option')].map((o) => o.value).join()`); got != "crypto,stocks" {
		t.Errorf("feed choices = %q, want crypto,stocks", got)
	}
	b.until("feed choice shown", `!document.getElementById('feed-field').hidden`)
	b.priceChanges("AAPL", b.price("AAPL"))

	// Switching feeds: a new socket to /ws/stocks, the default symbols, live.
	b.do(chromedp.Evaluate[chromedp.Void](`(() => {
		const sel = document.getElementById('feed-select');
		sel.value = 'stocks';
		sel.dispatchEvent(new Event('change'));
	})()`))
	b.until("second socket", `window.__tg.sockets.length === 2`)
	b.until("live on stocks", `document.getElementById('connection-status').dataset.state === 'live'`)
	b.priceChanges("MSFT", b.price("MSFT"))
	socks := chromeEval[[]chromeSocketRecord](b, `window.__tg.sockets`)
	if !strings.HasSuffix(socks[0].URL, "/ws/crypto") || !strings.HasSuffix(socks[1].URL, "/ws/stocks") {
		t.Errorf("sockets went to %s and %s, want /ws/crypto then /ws/stocks", socks[0].URL, socks[1].URL)
	}
	if socks[0].Code == nil || !socks[0].PageClosed {
		t.Errorf("the first feed's socket was not closed by the page on the switch: %+v", socks[0])
	}
	items, cv := b.snapshot("signed in, team config", chromeCookieSet)
	b.click("#logout")
	b.until("signed out", b.loginView())
	b.cap.settled(t)
	items = append(items, b.cap.items()...)
	chromeCheckConsole(t, b, nil)
	if err := inst.stop(); err != nil {
		t.Fatal(err)
	}
	chromeCheckSecrets(t, items, inst.stderr.String(), []string{cv})
}

// chromeScreenshot saves the signed-in page as a PNG when
// TICKGATE_SCREENSHOT names a file (scripts/screenshot.sh sets it): the
// README's picture comes from this test, so it shows what the test saw.
func chromeScreenshot(t *testing.T, b *chromeTab) {
	t.Helper()
	path := os.Getenv("TICKGATE_SCREENSHOT")
	if path == "" {
		return
	}
	// Nothing that differs between runs but the prices: the countdown and
	// times are real, the caret not shown.
	b.do(chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`))
	ctx, cancel := context.WithTimeout(b.ctx, chromeWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, len(png))
}
