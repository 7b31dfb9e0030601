package awssm_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"go.uber.org/goleak"

	"github.com/tickgate/tickgate/secrets"
	"github.com/tickgate/tickgate/secrets/awssm"
	"github.com/tickgate/tickgate/secrets/awssm/smtest"
)

func TestMain(m *testing.M) {
	// Nothing from the machine running the tests may reach the SDK.
	smtest.UnsetAWSEnv()
	goleak.VerifyTestMain(m)
}

// Secret values used by the tests; none may appear in an error or a log.
const (
	keyA  = "sk-live-ALPHA-7c1e9a"
	keyB  = "sk-live-BRAVO-22d0f4"
	keyC  = "sk-live-CHARLIE-90ab"
	keyA2 = "sk-live-ALPHA-ROTATED-51e3"
	keyB2 = "sk-live-BRAVO-ROTATED-8f02"
)

var allKeys = []string{keyA, keyB, keyC, keyA2, keyB2, "VERYSECRET", "ALPHA", "BRAVO"}

const mainID = "tickgate/prod"

// logBuf collects log output from concurrent writers.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type harness struct {
	sm   *smtest.Server
	p    *awssm.Provider
	logs *logBuf
	log  *slog.Logger
}

// newHarness starts a fake Secrets Manager and a provider using it with
// the real SDK. cfg.LoadOptions are applied after the fake's.
func newHarness(t *testing.T, cfg awssm.Config) *harness {
	t.Helper()
	return newHarnessOn(t, smtest.New(t), cfg)
}

// newHarnessOn is newHarness on an existing fake.
func newHarnessOn(t *testing.T, sm *smtest.Server, cfg awssm.Config) *harness {
	t.Helper()
	h := &harness{sm: sm, logs: &logBuf{}}
	h.log = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Logger = h.log
	cfg.LoadOptions = append(h.sm.LoadOptions(), cfg.LoadOptions...)
	p, err := awssm.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	h.p = p
	t.Cleanup(func() { assertNoLeak(t, "logs", h.logs.String()) })
	return h
}

func (h *harness) cache(cfg secrets.CacheConfig) *secrets.Cache {
	cfg.Logger = h.log
	c := secrets.NewCache(h.p, cfg)
	return c
}

// assertNoLeak fails if text contains any test secret value.
func assertNoLeak(t *testing.T, what, text string) {
	t.Helper()
	for _, k := range allKeys {
		if strings.Contains(text, k) {
			t.Errorf("%s contain a secret value %q:\n%s", what, k, text)
		}
	}
}

// clock is a settable clock for secrets.Cache.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Unix(1_700_000_000, 0).UnixNano())
	return c
}
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func reveal(v secrets.Value, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return v.Reveal()
}

func TestLoadManyNamesFromOneJSONSecretWithOneCall(t *testing.T) {
	t.Parallel()
	h := newHarness(t, awssm.Config{SecretID: mainID})
	ver := h.sm.Put(mainID, `{"A":"`+keyA+`","B":"`+keyB+`","C":" `+keyC+`\n"}`)
	c := h.cache(secrets.CacheConfig{})
	ctx := context.Background()

	if _, _, ok := h.p.Version("A"); ok {
		t.Fatal("Version known before any read")
	}
	if err := c.Load(ctx, "A", "B", "C"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"A": keyA, "B": keyB, "C": keyC} {
		if got := reveal(c.Get(ctx, name)); got != want {
			t.Errorf("Get(%s) = %q, want %q", name, got, want)
		}
	}
	if got, want := h.sm.Calls(), 1; got != want {
		t.Fatalf("AWS calls after loading 3 names = %d, want %d", got, want)
	}
	id, created, ok := h.p.Version("B")
	if !ok || id != ver || created.IsZero() || time.Since(created) > time.Hour {
		t.Fatalf("Version(B) = %q, %v, %v; want %q and a recent time", id, created, ok, ver)
	}

	// A refresh round of every name is one more call, not three.
	c.RefreshAll(ctx)
	if got, want := h.sm.Calls(), 2; got != want {
		t.Fatalf("AWS calls after a refresh round = %d, want %d", got, want)
	}
	c.RefreshAll(ctx)
	if got, want := h.sm.CallsFor(mainID), 3; got != want {
		t.Fatalf("AWS calls after two refresh rounds = %d, want %d", got, want)
	}
}

func TestSameNameAgainAlwaysReadsAWS(t *testing.T) {
	t.Parallel()
	h := newHarness(t, awssm.Config{SecretID: mainID})
	h.sm.Put(mainID, `{"A":"`+keyA+`","B":"`+keyB+`"}`)
	ctx := context.Background()
	steps := []struct {
		name  string
		calls int
	}{
		{"A", 1}, // first read
		{"B", 1}, // answered by the same read
		{"A", 2}, // A again: a refresh or Invalidate must see AWS now
		{"B", 2}, // B not yet answered by the second read
		{"B", 3},
	}
	for i, s := range steps {
		if _, err := h.p.Get(ctx, s.name); err != nil {
			t.Fatal(err)
		}
		if got := h.sm.Calls(); got != s.calls {
			t.Fatalf("step %d Get(%s): %d AWS calls, want %d", i, s.name, got, s.calls)
		}
	}
}

func TestShareWindow(t *testing.T) {
	t.Parallel()
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		clk := newClock()
		h := newHarness(t, awssm.Config{SecretID: mainID, Now: clk.Now, ShareFor: time.Second})
		h.sm.Put(mainID, `{"A":"`+keyA+`","B":"`+keyB+`"}`)
		ctx := context.Background()
		if _, err := h.p.Get(ctx, "A"); err != nil {
			t.Fatal(err)
		}
		clk.Add(2 * time.Second)
		if _, err := h.p.Get(ctx, "B"); err != nil {
			t.Fatal(err)
		}
		if got, want := h.sm.Calls(), 2; got != want {
			t.Fatalf("calls = %d, want %d (read older than ShareFor reused)", got, want)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, awssm.Config{SecretID: mainID, ShareFor: -1})
		h.sm.Put(mainID, `{"A":"`+keyA+`","B":"`+keyB+`"}`)
		ctx := context.Background()
		for _, n := range []string{"A", "B", "A"} {
			if _, err := h.p.Get(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := h.sm.Calls(), 3; got != want {
			t.Fatalf("calls = %d, want %d", got, want)
		}
	})
}

func TestPerKeySecrets(t *testing.T) {
	t.Parallel()
	sm := smtest.New(t)
	sm.Put(mainID, `{"MAIN":"`+keyA+`"}`)
	sm.Put("vendor/plain", "  "+keyB+"\n")
	sm.Put("vendor/json", `{"api_key":"`+keyC+`","other":"`+keyA2+`"}`)
	sm.Put("vendor/arn", keyB2)
	h := newHarnessOn(t, sm, awssm.Config{
		SecretID: mainID,
		PerKey: map[string]string{
			"PLAIN":  "vendor/plain",
			"FIELD":  "vendor/json#api_key",
			"FIELD2": "vendor/json#other",
			"BY_ARN": sm.ARN("vendor/arn"),
		},
	})
	c := h.cache(secrets.CacheConfig{})
	ctx := context.Background()
	if err := c.Load(ctx, "MAIN", "PLAIN", "FIELD", "FIELD2", "BY_ARN"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"MAIN": keyA, "PLAIN": keyB, "FIELD": keyC, "FIELD2": keyA2, "BY_ARN": keyB2} {
		if got := reveal(c.Get(ctx, name)); got != want {
			t.Errorf("Get(%s) = %q, want %q", name, got, want)
		}
	}
	for id, want := range map[string]int{mainID: 1, "vendor/plain": 1, "vendor/json": 1, sm.ARN("vendor/arn"): 1} {
		if got := sm.CallsFor(id); got != want {
			t.Errorf("calls for %s = %d, want %d", id, got, want)
		}
	}
}

func TestRotationThroughRefreshAll(t *testing.T) {
	t.Parallel()
	h := newHarness(t, awssm.Config{SecretID: mainID})
	v1 := h.sm.Put(mainID, `{"A":"`+keyA+`","B":"`+keyB+`"}`)
	var results []string
	var mu sync.Mutex
	c := h.cache(secrets.CacheConfig{OnRefresh: func(r string) { mu.Lock(); results = append(results, r); mu.Unlock() }})
	ctx := context.Background()
	if err := c.Load(ctx, "A", "B"); err != nil {
		t.Fatal(err)
	}
	v2 := h.sm.Put(mainID, `{"A":"`+keyA2+`","B":"`+keyB+`"}`)
	c.RefreshAll(ctx)
	if got := reveal(c.Get(ctx, "A")); got != keyA2 {
		t.Fatalf("after rotation A = %q, want the new key", got)
	}
	if got := reveal(c.Get(ctx, "B")); got != keyB {
		t.Fatalf("after rotation B = %q, want unchanged", got)
	}
	if id, _, _ := h.p.Version("A"); id != v2 || v1 == v2 {
		t.Fatalf("Version(A) = %q, want %q", id, v2)
	}
	mu.Lock()
	got := strings.Join(results, ",")
	mu.Unlock()
	if !strings.Contains(got, "rotated") || strings.Count(got, "error") != 0 {
		t.Fatalf("refresh results = %s", got)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "AWS secret has a new version") || !strings.Contains(logs, v2) {
		t.Fatalf("no version change logged:\n%s", logs)
	}
	if got, want := h.sm.Calls(), 2; got != want {
		t.Fatalf("calls = %d, want %d", got, want)
	}
}

func TestRotationThroughInvalidate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, awssm.Config{SecretID: mainID})
	h.sm.Put(mainID, `{"A":"`+keyA+`","B":"`+keyB+`"}`)
	clk := newClock()
	c := h.cache(secrets.CacheConfig{Now: clk.Now})
	ctx := context.Background()
	if err := c.Load(ctx, "A", "B"); err != nil {
		t.Fatal(err)
	}
	staleA, _ := c.Get(ctx, "A")
	staleB, _ := c.Get(ctx, "B")
	h.sm.Put(mainID, `{"A":"`+keyA2+`","B":"`+keyB2+`"}`)
	clk.Add(time.Minute) // past MinReread

	v, err := c.Invalidate(ctx, "A", staleA)
	if err != nil || v.Reveal() != keyA2 {
		t.Fatalf("Invalidate(A) = %q, %v", v.Reveal(), err)
	}
	if got, want := h.sm.Calls(), 2; got != want {
		t.Fatalf("calls after Invalidate(A) = %d, want %d", got, want)
	}
	// B, rotated in the same secret, is answered by the read A caused.
	v, err = c.Invalidate(ctx, "B", staleB)
	if err != nil || v.Reveal() != keyB2 {
		t.Fatalf("Invalidate(B) = %q, %v", v.Reveal(), err)
	}
	if got, want := h.sm.Calls(), 2; got != want {
		t.Fatalf("calls after Invalidate(B) = %d, want %d", got, want)
	}
}

func TestAWSFailureKeepsStaleValue(t *testing.T) {
	t.Parallel()
	for _, kind := range []smtest.Failure{smtest.FailInternal, smtest.FailDenied, smtest.FailThrottle, smtest.FailGarbage} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, awssm.Config{SecretID: mainID})
			h.sm.Put(mainID, `{"A":"`+keyA+`"}`)
			clk := newClock()
			var errorsSeen atomic.Int64
			c := h.cache(secrets.CacheConfig{Now: clk.Now, OnRefresh: func(r string) {
				if r == "error" {
					errorsSeen.Add(1)
				}
			}})
			ctx := context.Background()
			if err := c.Load(ctx, "A"); err != nil {
				t.Fatal(err)
			}
			stale, _ := c.Get(ctx, "A")
			h.sm.Put(mainID, `{"A":"`+keyA2+`"}`)
			h.sm.Fail(smtest.All, kind)

			c.RefreshAll(ctx)
			if got := reveal(c.Get(ctx, "A")); got != keyA {
				t.Fatalf("after failed refresh A = %q, want the last good value", got)
			}
			clk.Add(time.Minute)
			v, err := c.Invalidate(ctx, "A", stale)
			if err == nil || v.Reveal() != keyA {
				t.Fatalf("Invalidate during failure = %q, %v; want old value and an error", v.Reveal(), err)
			}
			if !strings.Contains(err.Error(), `"`+mainID+`"`) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error does not name the secret on one line: %v", err)
			}
			assertNoLeak(t, "error", err.Error())
			if n := errorsSeen.Load(); n != 2 {
				t.Fatalf("refresh errors counted = %d, want 2", n)
			}
			if logs := h.logs.String(); !strings.Contains(logs, "keeping last good value") || !strings.Contains(logs, mainID) {
				t.Fatalf("failed refresh not logged with the secret id:\n%s", logs)
			}

			h.sm.Fail(smtest.All, smtest.FailNone)
			c.RefreshAll(ctx)
			if got := reveal(c.Get(ctx, "A")); got != keyA2 {
				t.Fatalf("after recovery A = %q, want the rotated value", got)
			}
		})
	}
}

// TestStartupFailures covers every way Load can fail at start-up: one
// line per secret naming the secret id (and field), the problem, and no
// value.
func TestStartupFailures(t *testing.T) {
	t.Parallel()
	deadPort := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}
	failingCreds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no credentials: VERYSECRET")
	})
	staticCreds := func(akid, secret string) config.LoadOptionsFunc {
		return config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}, nil
		}))
	}

	cases := []struct {
		name    string
		setup   func(t *testing.T, sm *smtest.Server)
		cfg     awssm.Config
		opts    func(t *testing.T) []func(*config.LoadOptions) error
		secret  string // name passed to Load
		kind    error
		want    []string // substrings of the error
		noCalls bool
	}{
		{
			name:   "missing secret",
			secret: "A", kind: secrets.ErrNotFound,
			want: []string{`secret A: AWS secret "tickgate/prod": not found: no such secret, or it has no version labelled AWSCURRENT (request id smtest-`},
		},
		{
			name:   "deleted secret",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Put(mainID, `{"A":"`+keyA+`"}`); sm.Delete(mainID) },
			secret: "A", kind: secrets.ErrNotFound,
			want: []string{`"tickgate/prod"`, "not found"},
		},
		{
			name:   "missing version stage",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Put(mainID, `{"A":"`+keyA+`"}`) },
			cfg:    awssm.Config{SecretID: mainID, VersionStage: "AWSPENDING"},
			secret: "A", kind: secrets.ErrNotFound,
			want: []string{`"tickgate/prod"`, "AWSPENDING"},
		},
		{
			name:   "missing field",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Put(mainID, `{"B":"`+keyB+`","C":"`+keyC+`"}`) },
			secret: "A", kind: secrets.ErrNotFound,
			want: []string{`secret A: AWS secret "tickgate/prod" field "A": not in the JSON object (it has 2 fields)`},
		},
		{
			name:   "field differs in case",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Put(mainID, `{"vendor_key":"`+keyB+`"}`) },
			secret: "VENDOR_KEY", kind: secrets.ErrNotFound,
			want: []string{`field "VENDOR_KEY"`, "differs only in upper/lower case"},
		},
		{
			name:   "not JSON",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Put(mainID, keyA) },
			secret: "A", kind: awssm.ErrFormat,
			want: []string{`"tickgate/prod"`, "not valid JSON (syntax error at byte", `{"NAME":"value"}`},
		},
		{
			name:   "broken JSON",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Put(mainID, `{"A":"`+keyA+`",}`) },
			secret: "A", kind: awssm.ErrFormat,
			want: []string{"not valid JSON"},
		},
		{
			name:   "JSON array",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Put(mainID, `["`+keyA+`"]`) },
			secret: "A", kind: awssm.ErrFormat,
			want: []string{"a JSON array, not an object"},
		},
		{
			name:   "JSON string",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Put(mainID, `"`+keyA+`"`) },
			secret: "A", kind: awssm.ErrFormat,
			want: []string{"a JSON string, not an object"},
		},
		{
			name:   "field not a string",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Put(mainID, `{"A":{"k":"`+keyA+`"}}`) },
			secret: "A", kind: awssm.ErrFormat,
			want: []string{`field "A": a JSON object, not a string`},
		},
		{
			name:   "field a number",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Put(mainID, `{"A":12345}`) },
			secret: "A", kind: awssm.ErrFormat,
			want: []string{`field "A": a JSON number, not a string`},
		},
		{
			name:   "field null",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Put(mainID, `{"A":null}`) },
			secret: "A", kind: awssm.ErrFormat,
			want: []string{`field "A": a JSON null, not a string`},
		},
		{
			name:   "empty field",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Put(mainID, `{"A":"  "}`) },
			secret: "A", kind: secrets.ErrEmpty,
			want: []string{`field "A": empty`},
		},
		{
			name:   "empty secret string",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Put(mainID, "") },
			secret: "A", kind: secrets.ErrEmpty,
			want: []string{`"tickgate/prod"`, "empty"},
		},
		{
			name:   "binary secret",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.PutBinary(mainID, []byte(keyA)) },
			secret: "A", kind: awssm.ErrFormat,
			want: []string{`secret A: AWS secret "tickgate/prod": binary data`},
		},
		{
			name:   "plain per-key secret holding JSON",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Put("vendor/x", `{"key":"`+keyA+`"}`) },
			cfg:    awssm.Config{PerKey: map[string]string{"X": "vendor/x"}},
			secret: "X", kind: awssm.ErrFormat,
			want: []string{`secret X: AWS secret "vendor/x": a JSON object, not a plain value`, `"vendor/x#FIELD"`},
		},
		{
			name:   "name not configured",
			cfg:    awssm.Config{PerKey: map[string]string{"X": "vendor/x"}},
			secret: "Y", kind: secrets.ErrNotFound,
			want:    []string{"secret Y:", "TICKGATE_AWS_SECRET_ID"},
			noCalls: true,
		},
		{
			name: "access denied",
			setup: func(t *testing.T, sm *smtest.Server) {
				sm.Put(mainID, `{"A":"`+keyA+`"}`)
				sm.Fail(mainID, smtest.FailDenied)
			},
			secret: "A", kind: awssm.ErrAccessDenied,
			want: []string{`secret A: AWS secret "tickgate/prod": access denied: the role needs secretsmanager:GetSecretValue on "tickgate/prod" (request id smtest-`},
		},
		{
			name: "KMS decrypt denied",
			setup: func(t *testing.T, sm *smtest.Server) {
				sm.Put(mainID, `{"A":"`+keyA+`"}`)
				sm.Fail(mainID, smtest.FailDecrypt)
			},
			secret: "A", kind: awssm.ErrAccessDenied,
			want: []string{`"tickgate/prod"`, "kms:Decrypt"},
		},
		{
			name:   "internal error",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Fail(smtest.All, smtest.FailInternal) },
			secret: "A", kind: awssm.ErrService,
			want: []string{`"tickgate/prod"`, "InternalServiceError"},
		},
		{
			name:   "throttled",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Fail(smtest.All, smtest.FailThrottle) },
			secret: "A", kind: awssm.ErrService,
			want: []string{`"tickgate/prod"`, "throttling"},
		},
		{
			name:   "unreadable answer",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Fail(smtest.All, smtest.FailGarbage) },
			secret: "A", kind: awssm.ErrService,
			want: []string{`"tickgate/prod"`, "could not be read"},
		},
		{
			name: "unreachable endpoint",
			opts: func(t *testing.T) []func(*config.LoadOptions) error {
				return []func(*config.LoadOptions) error{config.WithBaseEndpoint(deadPort(t))}
			},
			secret: "A", kind: awssm.ErrUnreachable,
			want:    []string{`secret A: AWS secret "tickgate/prod": Secrets Manager unreachable: dial 127.0.0.1:`, "connection refused"},
			noCalls: true,
		},
		{
			name:   "timeout",
			setup:  func(t *testing.T, sm *smtest.Server) { sm.Fail(smtest.All, smtest.FailHang) },
			cfg:    awssm.Config{SecretID: mainID, Timeout: 300 * time.Millisecond},
			secret: "A", kind: awssm.ErrUnreachable,
			want: []string{`"tickgate/prod"`, "unreachable: no answer within"},
		},
		{
			name: "no credentials",
			opts: func(t *testing.T) []func(*config.LoadOptions) error {
				return []func(*config.LoadOptions) error{config.WithCredentialsProvider(failingCreds)}
			},
			secret: "A", kind: awssm.ErrNoCredentials,
			want:    []string{`"tickgate/prod"`, "no AWS credentials found"},
			noCalls: true,
		},
		{
			name: "unknown access key",
			opts: func(t *testing.T) []func(*config.LoadOptions) error {
				return []func(*config.LoadOptions) error{staticCreds("AKIAUNKNOWN", "x")}
			},
			secret: "A", kind: awssm.ErrNoCredentials,
			want: []string{`"tickgate/prod"`, "does not recognise the access key (UnrecognizedClientException)"},
		},
		{
			name: "wrong secret key",
			opts: func(t *testing.T) []func(*config.LoadOptions) error {
				return []func(*config.LoadOptions) error{staticCreds(smtest.AccessKeyID, "wrong")}
			},
			secret: "A", kind: awssm.ErrNoCredentials,
			want: []string{`"tickgate/prod"`, "signature", "InvalidSignatureException"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			if cfg.SecretID == "" && cfg.PerKey == nil {
				cfg.SecretID = mainID
			}
			if tc.opts != nil {
				cfg.LoadOptions = tc.opts(t)
			}
			h := newHarness(t, cfg)
			if tc.setup != nil {
				tc.setup(t, h.sm)
			}
			c := h.cache(secrets.CacheConfig{})
			err := c.Load(context.Background(), tc.secret)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			msg := err.Error()
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %q is not %v", msg, tc.kind)
			}
			var ae *awssm.Error
			if !errors.As(err, &ae) || ae.Name != tc.secret {
				t.Errorf("error %q is not an *awssm.Error for %s", msg, tc.secret)
			}
			if strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if !strings.HasPrefix(msg, "secret "+tc.secret+": ") {
				t.Errorf("error %q does not start with the secret's name", msg)
			}
			assertNoLeak(t, "error", msg)
			if tc.noCalls && h.sm.Calls() != 0 {
				t.Errorf("%d calls reached the server, want none", h.sm.Calls())
			}
			if c.Loaded(tc.secret) {
				t.Error("secret marked loaded after a failure")
			}
		})
	}
}

// TestOneCallForManyFailingNames: three names in a missing secret fail
// with one line each, from one AWS call.
func TestOneCallForManyFailingNames(t *testing.T) {
	t.Parallel()
	h := newHarness(t, awssm.Config{SecretID: mainID})
	c := h.cache(secrets.CacheConfig{})
	err := c.Load(context.Background(), "A", "B", "C")
	if err == nil {
		t.Fatal("Load succeeded")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %q", err.Error())
	}
	for i, n := range []string{"A", "B", "C"} {
		if !strings.HasPrefix(lines[i], "secret "+n+`: AWS secret "tickgate/prod"`) {
			t.Errorf("line %d = %q", i, lines[i])
		}
	}
	if got := h.sm.Calls(); got != 1 {
		t.Fatalf("calls = %d, want 1", got)
	}
}

func TestNewConfigErrors(t *testing.T) {
	t.Parallel()
	sm := smtest.New(t)
	cases := []struct {
		name string
		cfg  awssm.Config
		kind error
		want string
	}{
		{"nothing configured", awssm.Config{}, awssm.ErrConfig, "TICKGATE_AWS_SECRET_ID"},
		{"id with space", awssm.Config{SecretID: "tickgate prod"}, awssm.ErrConfig, `"tickgate prod": secret id contains spaces`},
		{"per-key empty field", awssm.Config{PerKey: map[string]string{"K": "vendor/x#"}}, awssm.ErrConfig, `secret K: AWS secret "vendor/x": per-key reference "vendor/x#": nothing after "#"`},
		{"per-key empty id", awssm.Config{PerKey: map[string]string{"K": ""}}, awssm.ErrConfig, "empty secret id"},
		{"per-key empty name", awssm.Config{PerKey: map[string]string{"": "vendor/x"}}, awssm.ErrConfig, "empty name"},
		{"no region", awssm.Config{SecretID: mainID, LoadOptions: []func(*config.LoadOptions) error{config.WithRegion("")}}, awssm.ErrNoRegion,
			`AWS secret "tickgate/prod": no AWS region: set AWS_REGION`},
		{"bad region", awssm.Config{SecretID: mainID, LoadOptions: []func(*config.LoadOptions) error{config.WithRegion("US East")}}, awssm.ErrNoRegion,
			`AWS secret "tickgate/prod": AWS region "US East" is not a region name`},
		{"unknown profile", awssm.Config{SecretID: mainID, LoadOptions: []func(*config.LoadOptions) error{config.WithSharedConfigProfile("nope")}}, awssm.ErrConfig,
			`AWS profile "nope" not found`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.LoadOptions = append(sm.LoadOptions(), tc.cfg.LoadOptions...)
			p, err := awssm.New(context.Background(), tc.cfg)
			if err == nil {
				p.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("New error = %q (is %v: %v), want one line containing %q", err, tc.kind, errors.Is(err, tc.kind), tc.want)
			}
		})
	}
	if sm.Calls() != 0 {
		t.Fatalf("New made %d AWS calls", sm.Calls())
	}
}

// TestConcurrentInvalidateOneCall: 500 requests rejected by the vendor at
// once cause one AWS call, whether they name one secret or several held
// by the same JSON secret. Not parallel: it counts parked goroutines.
func TestConcurrentInvalidateOneCall(t *testing.T) {
	for _, names := range [][]string{{"A"}, {"A", "B", "C", "D", "E"}} {
		t.Run(strings.Join(names, ""), func(t *testing.T) {
			h := newHarness(t, awssm.Config{SecretID: mainID})
			h.sm.Put(mainID, `{"A":"a1","B":"b1","C":"c1","D":"d1","E":"e1"}`)
			clk := newClock()
			c := h.cache(secrets.CacheConfig{Now: clk.Now})
			ctx := context.Background()
			if err := c.Load(ctx, names...); err != nil {
				t.Fatal(err)
			}
			stale := make(map[string]secrets.Value)
			for _, n := range names {
				stale[n], _ = c.Get(ctx, n)
			}
			h.sm.Put(mainID, `{"A":"a2","B":"b2","C":"c2","D":"d2","E":"e2"}`)
			clk.Add(time.Minute)
			before := h.sm.Calls()

			resume := h.sm.Pause()
			defer resume()
			var wg sync.WaitGroup
			got := make([]string, 500)
			for i := range got {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n := names[i%len(names)]
					v, err := c.Invalidate(ctx, n, stale[n])
					if err != nil {
						t.Error(err)
					}
					got[i] = n + "=" + v.Reveal()
				}()
			}
			waitFor(t, "the AWS call to arrive", func() bool { return h.sm.Calls() > before })
			// Resume once every caller waits on the read, so the test
			// exercises 500 callers sharing one flight.
			waitFor(t, "500 callers waiting on the read", func() bool { return parkedIn("secrets.(*Cache).readUnless") >= len(got) })
			resume()
			wg.Wait()
			for i, g := range got {
				n := names[i%len(names)]
				if want := n + "=" + strings.ToLower(n) + "2"; g != want {
					t.Fatalf("caller %d got %s, want %s", i, g, want)
				}
			}
			if n := h.sm.Calls() - before; n != 1 {
				t.Fatalf("500 concurrent Invalidate calls made %d AWS calls, want 1", n)
			}
		})
	}
}

func TestCloseCancelsAndRefuses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, awssm.Config{SecretID: mainID, Timeout: time.Minute})
	h.sm.Put(mainID, `{"A":"`+keyA+`"}`)
	h.sm.Fail(smtest.All, smtest.FailHang)
	done := make(chan error, 1)
	go func() {
		_, err := h.p.Get(context.Background(), "A")
		done <- err
	}()
	waitFor(t, "the AWS call to arrive", func() bool { return h.sm.Calls() > 0 })
	if err := h.p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, awssm.ErrClosed) {
			t.Fatalf("Get during Close = %v, want ErrClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Get still blocked after Close")
	}
	if _, err := h.p.Get(context.Background(), "A"); !errors.Is(err, awssm.ErrClosed) || !strings.Contains(err.Error(), "secret A") {
		t.Fatalf("Get after Close = %v", err)
	}
	if err := h.p.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCallerContext(t *testing.T) {
	t.Parallel()
	h := newHarness(t, awssm.Config{SecretID: mainID, Timeout: time.Minute})
	h.sm.Put(mainID, `{"A":"`+keyA+`"}`)
	h.sm.Fail(smtest.All, smtest.FailHang)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := h.p.Get(ctx, "A")
	if !errors.Is(err, awssm.ErrUnreachable) || !strings.Contains(err.Error(), `secret A: AWS secret "tickgate/prod"`) {
		t.Fatalf("Get past the caller's deadline = %v", err)
	}
}

func TestVersionStage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, awssm.Config{SecretID: mainID, VersionStage: "AWSPREVIOUS"})
	v1 := h.sm.Put(mainID, `{"A":"`+keyA+`"}`)
	h.sm.Put(mainID, `{"A":"`+keyA2+`"}`)
	if got := reveal(h.p.Get(context.Background(), "A")); got != keyA {
		t.Fatalf("AWSPREVIOUS read %q", got)
	}
	if id, _, _ := h.p.Version("A"); id != v1 {
		t.Fatalf("Version = %s, want %s", id, v1)
	}
}

// TestDefaultChainFromEnvironment uses no LoadOptions: region, keys and
// AWS_ENDPOINT_URL_SECRETS_MANAGER come from the environment as in
// production. Not parallel: it sets the process environment.
func TestDefaultChainFromEnvironment(t *testing.T) {
	sm := smtest.New(t)
	sm.Setenv(t)
	sm.Put(mainID, `{"A":"`+keyA+`"}`)
	p, err := awssm.New(context.Background(), awssm.Config{SecretID: mainID})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got := reveal(p.Get(context.Background(), "A")); got != keyA {
		t.Fatalf("Get = %q", got)
	}
	if sm.Calls() != 1 {
		t.Fatalf("calls = %d", sm.Calls())
	}
}

func TestDefaultChainNoCredentials(t *testing.T) {
	sm := smtest.New(t)
	sm.Setenv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	p, err := awssm.New(context.Background(), awssm.Config{SecretID: mainID})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Get(context.Background(), "A")
	if !errors.Is(err, awssm.ErrNoCredentials) || !strings.Contains(err.Error(), `"tickgate/prod"`) {
		t.Fatalf("Get = %v, want ErrNoCredentials naming the secret", err)
	}
	if sm.Calls() != 0 {
		t.Fatalf("an unsigned request reached the server")
	}
}

func TestDefaultChainNoRegion(t *testing.T) {
	sm := smtest.New(t)
	sm.Setenv(t)
	t.Setenv("AWS_REGION", "")
	_, err := awssm.New(context.Background(), awssm.Config{SecretID: mainID})
	if !errors.Is(err, awssm.ErrNoRegion) || !strings.Contains(err.Error(), `"tickgate/prod"`) {
		t.Fatalf("New = %v, want ErrNoRegion naming the secret", err)
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	cases := []struct {
		e    awssm.Error
		want string
	}{
		{awssm.Error{Name: "K", SecretID: "a/b", Field: "K", Problem: "gone", RequestID: "r1"}, `secret K: AWS secret "a/b" field "K": gone (request id r1)`},
		{awssm.Error{SecretID: "a/b", Problem: "no region"}, `AWS secret "a/b": no region`},
		{awssm.Error{Problem: "nothing"}, `AWS Secrets Manager: nothing`},
		{awssm.Error{Name: "K", SecretID: "a\nb\"c", Problem: "x"}, `secret K: AWS secret "a?b\"c": x`},
	}
	for _, tc := range cases {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

// parkedIn counts goroutines blocked in a select directly in function fn
// (their top frame), e.g. "secrets.(*Cache).read".
func parkedIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.SplitN(g, "\n", 3)
		if len(lines) >= 2 && strings.Contains(lines[0], "[select") && strings.Contains(lines[1], fn+"(") {
			count++
		}
	}
	return count
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
