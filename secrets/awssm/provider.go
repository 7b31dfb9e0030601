package awssm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go/logging"

	"github.com/tickgate/tickgate/secrets"
)

// DefaultVersionStage is the staging label read when Config.VersionStage is
// empty: the version Secrets Manager rotation makes current.
const DefaultVersionStage = "AWSCURRENT"

// Config configures a Provider. Zero values are safe defaults except that
// SecretID or PerKey must name at least one secret.
type Config struct {
	// SecretID is the secret (name or ARN) holding a JSON object of
	// secret name → value, e.g. {"VENDOR_KEY":"…","TICKGATE_DEMO_KEY":"…"}.
	// From TICKGATE_AWS_SECRET_ID. Every name not in PerKey is read here.
	SecretID string
	// PerKey maps a secret name to a secret of its own: "id" when the
	// whole secret string is the value, "id#field" when the secret is a
	// JSON object and the value is that field. id is a name or an ARN.
	PerKey map[string]string
	// VersionStage is the staging label read. Default AWSCURRENT.
	VersionStage string
	// ShareFor is how long one read of a Secrets Manager secret answers
	// for the other names it holds, so a refresh round of N names in one
	// JSON secret costs one AWS call. A name asked for again (a refresh or
	// an Invalidate of that name) always causes a new read. Default 5s;
	// negative: every Get reads from AWS.
	ShareFor time.Duration
	// Timeout bounds one GetSecretValue call (with the SDK's retries) when
	// the caller's context has no earlier deadline. Default 10s.
	Timeout time.Duration
	// Logger receives reads, version changes and SDK warnings; never a
	// value. Default: discard.
	Logger *slog.Logger
	// LoadOptions are passed to config.LoadDefaultConfig after the
	// provider's own, e.g. to point tests at a local endpoint (see smtest).
	LoadOptions []func(*config.LoadOptions) error
	// Now is the clock for ShareFor. Default time.Now.
	Now func() time.Time
}

// Provider reads secrets from AWS Secrets Manager. It implements
// secrets.Provider; put a secrets.Cache in front of it.
type Provider struct {
	client  *secretsmanager.Client
	closers []interface{ CloseIdleConnections() }
	log     *slog.Logger
	now     func() time.Time
	main    string
	perKey  map[string]ref
	stage   string
	share   time.Duration
	timeout time.Duration

	base context.Context // cancelled by Close
	stop context.CancelFunc

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup         // calls in progress; Add under mu while !closed
	flights  map[string]*flight     // by secret id
	last     map[string]*fetched    // by secret id
	versions map[string]versionInfo // by secret name
}

// versionInfo describes the secret version a value came from.
type versionInfo struct {
	ID      string    // Secrets Manager VersionId
	Created time.Time // CreatedDate of that version
}

// fetched is the result of one GetSecretValue call.
type fetched struct {
	at      time.Time
	text    string
	binary  bool
	version versionInfo
	err     *Error          // nil on success; Name unset
	served  map[string]bool // names already answered from this read
}

var _ secrets.Provider = (*Provider)(nil)

// New loads the AWS configuration through the SDK's default chain (region,
// credentials, AWS_ENDPOINT_URL_SECRETS_MANAGER, shared config files) and
// returns a provider. It makes no AWS call: the first Get (normally
// secrets.Cache.Load at start-up) reports a missing secret, missing
// credentials or an unreachable endpoint.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	perKey, err := checkConfig(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.VersionStage == "" {
		cfg.VersionStage = DefaultVersionStage
	}
	if cfg.ShareFor == 0 {
		cfg.ShareFor = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	firstID := cfg.SecretID
	if firstID == "" {
		firstID = perKey[slices.Sorted(maps.Keys(perKey))[0]].id
	}

	opts := append([]func(*config.LoadOptions) error{
		config.WithLogger(sdkLogger(cfg.Logger)),
		// Request/response logging would print secret values.
		config.WithClientLogMode(0),
	}, cfg.LoadOptions...)
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, &Error{SecretID: firstID, Problem: loadProblem(err), Kind: ErrConfig}
	}
	if awsCfg.Region == "" {
		return nil, &Error{SecretID: firstID, Problem: "no AWS region: set AWS_REGION, or region in the AWS config file", Kind: ErrNoRegion}
	}
	if strings.Trim(awsCfg.Region, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return nil, &Error{SecretID: firstID, Problem: "AWS region " + quote(awsCfg.Region) + " is not a region name like us-east-1", Kind: ErrNoRegion}
	}

	p := &Provider{
		log:      cfg.Logger,
		now:      cfg.Now,
		main:     cfg.SecretID,
		perKey:   perKey,
		stage:    cfg.VersionStage,
		share:    cfg.ShareFor,
		timeout:  cfg.Timeout,
		flights:  make(map[string]*flight),
		last:     make(map[string]*fetched),
		versions: make(map[string]versionInfo),
	}
	p.base, p.stop = context.WithCancel(context.Background())
	p.client = secretsmanager.NewFromConfig(awsCfg, func(o *secretsmanager.Options) {
		o.ClientLogMode = 0
		if o.Credentials != nil {
			o.Credentials = markedCredentials{o.Credentials}
		}
		// The SDK clones its HTTP client per service and hides the
		// transport; freeze it into an *http.Client we can close.
		if b, ok := o.HTTPClient.(*awshttp.BuildableClient); ok {
			o.HTTPClient = b.Freeze()
		}
		if c, ok := o.HTTPClient.(interface{ CloseIdleConnections() }); ok {
			p.closers = append(p.closers, c)
		}
	})
	attrs := []any{"region", awsCfg.Region, "secret_id", cfg.SecretID, "per_key", len(perKey), "version_stage", p.stage}
	if ep := p.client.Options().BaseEndpoint; ep != nil {
		if u, err := url.Parse(*ep); err == nil {
			attrs = append(attrs, "endpoint_host", u.Host)
		}
	}
	p.log.Info("AWS Secrets Manager provider ready", attrs...)
	return p, nil
}

// checkConfig validates cfg and parses PerKey.
func checkConfig(cfg Config) (map[string]ref, error) {
	var errs []error
	if cfg.SecretID == "" && len(cfg.PerKey) == 0 {
		errs = append(errs, &Error{Problem: "no secret configured: set TICKGATE_AWS_SECRET_ID", Kind: ErrConfig})
	}
	if cfg.SecretID != "" {
		if err := checkID(cfg.SecretID); err != nil {
			errs = append(errs, &Error{SecretID: cfg.SecretID, Problem: err.Error(), Kind: ErrConfig})
		}
	}
	perKey := make(map[string]ref, len(cfg.PerKey))
	for _, name := range slices.Sorted(maps.Keys(cfg.PerKey)) {
		if name == "" {
			errs = append(errs, &Error{Problem: "per-key secret with an empty name", Kind: ErrConfig})
			continue
		}
		r, err := parseRef(cfg.PerKey[name])
		if err != nil {
			errs = append(errs, &Error{Name: oneLine(name, 200), SecretID: r.id, Problem: "per-key reference " + quote(cfg.PerKey[name]) + ": " + err.Error(), Kind: ErrConfig})
			continue
		}
		perKey[name] = r
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return perKey, nil
}

// loadProblem describes a LoadDefaultConfig failure without the text of
// shared-config parse errors, which can quote a credentials file.
func loadProblem(err error) string {
	var noProfile config.SharedConfigProfileNotExistError
	var loadErr config.SharedConfigLoadError
	switch {
	case errors.As(err, &noProfile):
		return fmt.Sprintf("AWS profile %s not found in the shared config files (check AWS_PROFILE)", quote(noProfile.Profile))
	case errors.As(err, &loadErr):
		return fmt.Sprintf("cannot read the AWS shared config file %s", quote(loadErr.Filename))
	}
	return "cannot load the AWS configuration: " + oneLine(err.Error(), 300)
}

// sdkLogger sends the SDK's own warnings to slog.
func sdkLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		level := slog.LevelDebug
		if c == logging.Warn {
			level = slog.LevelWarn
		}
		l.Log(context.Background(), level, "aws sdk: "+oneLine(fmt.Sprintf(format, v...), 500))
	})
}

// Get returns the secret name: a field of the JSON secret SecretID, or the
// secret PerKey names. Its errors are *Error.
func (p *Provider) Get(ctx context.Context, name string) (secrets.Value, error) {
	r, ok := p.perKey[name]
	if !ok {
		if p.main == "" {
			return secrets.Value{}, &Error{Name: name, Problem: "not configured: no TICKGATE_AWS_SECRET_ID and no per-key secret for this name", Kind: secrets.ErrNotFound}
		}
		r = ref{id: p.main, field: name}
	}
	f, err := p.fetch(ctx, r.id, name)
	if err != nil {
		err.Name = name
		return secrets.Value{}, err
	}
	if f.err != nil {
		e := *f.err
		e.Name = name
		return secrets.Value{}, &e
	}
	if f.binary {
		return secrets.Value{}, &Error{Name: name, SecretID: r.id, Problem: "binary data (SecretBinary), not a string", Kind: ErrFormat}
	}
	v, prob := extract(f.text, r)
	if prob != nil {
		e := &Error{Name: name, SecretID: r.id, Problem: prob.msg, Kind: prob.kind}
		if prob.field {
			e.Field = r.field
		}
		return secrets.Value{}, e
	}
	p.mu.Lock()
	p.versions[name] = f.version
	p.mu.Unlock()
	return secrets.NewValue(v), nil
}

// Version returns the Secrets Manager version of the last value Get
// returned for name, and when that version was created.
func (p *Provider) Version(name string) (versionID string, created time.Time, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.versions[name]
	return v.ID, v.Created, ok
}

// flight is one GetSecretValue call in progress; done closes when f is set.
type flight struct {
	done chan struct{}
	f    *fetched
}

// fetch returns a read of secret id for name: a recent read that has not
// yet answered for name, else the call in flight for id, else a new call.
// The choice is made under p.mu, and a finished call replaces p.last and
// leaves p.flights in one step, so a caller can never miss both and start
// a second call.
func (p *Provider) fetch(ctx context.Context, id, name string) (*fetched, *Error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, &Error{SecretID: id, Problem: "the provider is closed", Kind: ErrClosed}
	}
	if f := p.last[id]; f != nil && p.share > 0 && p.now().Sub(f.at) < p.share && !f.served[name] {
		f.served[name] = true
		p.mu.Unlock()
		return f, nil
	}
	fl := p.flights[id]
	if fl == nil {
		fl = &flight{done: make(chan struct{})}
		p.flights[id] = fl
		p.inflight.Add(1)
		go p.call(ctx, id, fl)
	}
	p.mu.Unlock()

	select {
	case <-fl.done:
		p.mu.Lock()
		fl.f.served[name] = true
		p.mu.Unlock()
		return fl.f, nil
	case <-ctx.Done():
		kind, what := ErrUnreachable, "no answer from Secrets Manager before the caller's deadline"
		if errors.Is(ctx.Err(), context.Canceled) {
			what = "the read was cancelled"
		}
		return nil, &Error{SecretID: id, Problem: what, Kind: kind}
	}
}

// call makes one GetSecretValue call for fl. It runs on its own goroutine,
// owned by p (Close waits for it), detached from the first caller's
// cancellation since others may be waiting, but bounded by that caller's
// deadline, Timeout and Close.
func (p *Provider) call(caller context.Context, id string, fl *flight) {
	defer p.inflight.Done()
	start := time.Now()
	deadline := start.Add(p.timeout)
	if d, ok := caller.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(context.WithoutCancel(caller), deadline)
	defer cancel()
	defer context.AfterFunc(p.base, cancel)()

	out, err := p.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId:     aws.String(id),
		VersionStage: aws.String(p.stage),
	})
	waited := time.Since(start)
	f := &fetched{served: make(map[string]bool)}
	if err != nil {
		f.err = classify(err, id, p.stage, waited, p.base.Err() != nil)
		p.log.Debug("AWS secret read failed", "secret_id", id, "err", f.err, "duration", waited)
	} else {
		f.text = aws.ToString(out.SecretString)
		f.binary = out.SecretString == nil && out.SecretBinary != nil
		f.version = versionInfo{ID: aws.ToString(out.VersionId), Created: aws.ToTime(out.CreatedDate)}
		p.log.Debug("AWS secret read", "secret_id", id, "version_id", f.version.ID, "duration", waited)
	}

	// Only this call can set p.last[id] until it leaves p.flights, so
	// prev stays valid while logging outside the lock.
	p.mu.Lock()
	prev := p.last[id]
	p.mu.Unlock()
	if err == nil && prev != nil && prev.err == nil && prev.version.ID != f.version.ID {
		p.log.Info("AWS secret has a new version", "secret_id", id, "version_id", f.version.ID, "previous_version_id", prev.version.ID)
	}

	p.mu.Lock()
	f.at = p.now()
	p.last[id] = f
	delete(p.flights, id)
	fl.f = f
	close(fl.done)
	p.mu.Unlock()
}

// Close waits for AWS calls in flight (cancelling them) and closes idle
// connections. Get fails with ErrClosed afterwards. Safe to call twice.
func (p *Provider) Close() error {
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	if already {
		return nil
	}
	p.stop()
	p.inflight.Wait()
	for _, c := range p.closers {
		c.CloseIdleConnections()
	}
	return nil
}
