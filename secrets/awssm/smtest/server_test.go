package smtest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/tickgate/tickgate/secrets/awssm/smtest"
)

func TestMain(m *testing.M) {
	smtest.UnsetAWSEnv()
	goleak.VerifyTestMain(m)
}

// newClient returns a real SDK client for sm on a transport closed when
// the test ends.
func newClient(t *testing.T, sm *smtest.Server, opts ...func(*config.LoadOptions) error) *secretsmanager.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	opts = append(append(sm.LoadOptions(), config.WithHTTPClient(&http.Client{Transport: tr})), opts...)
	cfg, err := config.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return secretsmanager.NewFromConfig(cfg)
}

func get(ctx context.Context, c *secretsmanager.Client, in secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error) {
	return c.GetSecretValue(ctx, &in)
}

func TestSDKRoundTripAndRotation(t *testing.T) {
	t.Parallel()
	sm := smtest.New(t)
	c := newClient(t, sm)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	v1 := sm.Put("app/key", "one")
	v2 := sm.Put("app/key", "two")
	v3 := sm.Put("app/key", "three")
	if v1 == v2 || v2 == v3 {
		t.Fatal("Put reused a VersionId")
	}

	out, err := get(ctx, c, secretsmanager.GetSecretValueInput{SecretId: aws.String("app/key")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.SecretString); got != "three" || aws.ToString(out.VersionId) != v3 {
		t.Fatalf("current = %q %s", got, aws.ToString(out.VersionId))
	}
	if aws.ToString(out.Name) != "app/key" || aws.ToString(out.ARN) != sm.ARN("app/key") || !strings.HasPrefix(sm.ARN("app/key"), "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/key-") {
		t.Fatalf("name/ARN = %s %s", aws.ToString(out.Name), aws.ToString(out.ARN))
	}
	if len(out.VersionStages) != 1 || out.VersionStages[0] != "AWSCURRENT" {
		t.Fatalf("stages = %v", out.VersionStages)
	}
	if cd := aws.ToTime(out.CreatedDate); cd.Before(before) || cd.After(time.Now().Add(time.Second)) {
		t.Fatalf("CreatedDate = %v", cd)
	}

	cases := []struct {
		name string
		in   secretsmanager.GetSecretValueInput
		want string
	}{
		{"previous", secretsmanager.GetSecretValueInput{SecretId: aws.String("app/key"), VersionStage: aws.String("AWSPREVIOUS")}, "two"},
		{"by version id", secretsmanager.GetSecretValueInput{SecretId: aws.String("app/key"), VersionId: aws.String(v1)}, "one"},
		{"by ARN", secretsmanager.GetSecretValueInput{SecretId: aws.String(sm.ARN("app/key"))}, "three"},
		{"by partial ARN", secretsmanager.GetSecretValueInput{SecretId: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:app/key")}, "three"},
	}
	for _, tc := range cases {
		out, err := get(ctx, c, tc.in)
		if err != nil || aws.ToString(out.SecretString) != tc.want {
			t.Errorf("%s: %v %v", tc.name, out, err)
		}
	}

	_, err = get(ctx, c, secretsmanager.GetSecretValueInput{SecretId: aws.String("app/key"), VersionStage: aws.String("AWSPENDING")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("missing stage: %v", err)
	}
	sm.Delete("app/key")
	if _, err = get(ctx, c, secretsmanager.GetSecretValueInput{SecretId: aws.String("app/key")}); !errors.As(err, &nf) {
		t.Fatalf("deleted: %v", err)
	}

	sm.PutBinary("app/bin", []byte{0, 1, 2})
	out, err = get(ctx, c, secretsmanager.GetSecretValueInput{SecretId: aws.String("app/bin")})
	if err != nil || out.SecretString != nil || !bytes.Equal(out.SecretBinary, []byte{0, 1, 2}) {
		t.Fatalf("binary: %+v %v", out, err)
	}
	if got, want := sm.Calls(), 8; got != want {
		t.Fatalf("Calls = %d, want %d", got, want)
	}
	if got, want := sm.CallsFor("app/key"), 5; got != want {
		t.Fatalf("CallsFor(app/key) = %d, want %d", got, want)
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	sm := smtest.New(t)
	c := newClient(t, sm)
	ctx := context.Background()
	sm.Put("a", "x")
	sm.Put("b", "y")

	code := func(id string) string {
		_, err := get(ctx, c, secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode()
		}
		if err != nil {
			return "other: " + err.Error()
		}
		return ""
	}
	sm.Fail(smtest.All, smtest.FailInternal)
	sm.Fail("a", smtest.FailDenied)
	if got := code("a"); got != "AccessDeniedException" {
		t.Fatalf("a: %s", got)
	}
	if got := code("b"); got != "InternalServiceError" {
		t.Fatalf("b: %s", got)
	}
	sm.Fail("a", smtest.FailThrottle)
	if got := code("a"); got != "ThrottlingException" {
		t.Fatalf("a throttle: %s", got)
	}
	sm.Fail("a", smtest.FailDecrypt)
	if got := code("a"); got != "DecryptionFailure" {
		t.Fatalf("a decrypt: %s", got)
	}
	sm.Fail("a", smtest.FailNone) // back to the All failure
	if got := code("a"); got != "InternalServiceError" {
		t.Fatalf("a after none: %s", got)
	}
	sm.Fail(smtest.All, smtest.FailNone)
	if got := code("a"); got != "" {
		t.Fatalf("a healthy: %s", got)
	}
	if got := code("missing"); got != "ResourceNotFoundException" {
		t.Fatalf("missing: %s", got)
	}
	sm.Fail("a", smtest.FailGarbage)
	if got := code("a"); !strings.HasPrefix(got, "other: ") {
		t.Fatalf("garbage decoded: %s", got)
	}
}

func TestPauseHoldsRequests(t *testing.T) {
	t.Parallel()
	sm := smtest.New(t)
	c := newClient(t, sm)
	sm.Put("a", "x")
	resume := sm.Pause()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := get(context.Background(), c, secretsmanager.GetSecretValueInput{SecretId: aws.String("a")})
			errs <- err
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for sm.Calls() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("requests did not arrive")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-errs:
		t.Fatalf("a paused request returned: %v", err)
	default:
	}
	resume()
	resume()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestHangUntilClientGivesUpOrServerCloses(t *testing.T) {
	t.Parallel()
	sm := smtest.New(t)
	c := newClient(t, sm)
	sm.Put("a", "x")
	sm.Fail(smtest.All, smtest.FailHang)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := get(ctx, c, secretsmanager.GetSecretValueInput{SecretId: aws.String("a")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang: %v", err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := get(context.Background(), c, secretsmanager.GetSecretValueInput{SecretId: aws.String("a")})
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for sm.Calls() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("request did not arrive")
		}
		time.Sleep(5 * time.Millisecond)
	}
	sm.Close() // must not wait for the hanging handler
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("hanging request succeeded")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("request still hanging after Close")
	}
	sm.Close()
}

// rawPost sends a request with the given headers and body, unsigned unless
// the headers say otherwise.
func rawPost(t *testing.T, url string, hdr map[string]string, body string) (int, map[string]string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, map[string]string, http.Header) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]string
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, resp.Header
}

func TestProtocolChecks(t *testing.T) {
	t.Parallel()
	sm := smtest.New(t)
	sm.Put("a", "x")
	good := map[string]string{"X-Amz-Target": "secretsmanager.GetSecretValue", "Content-Type": "application/x-amz-json-1.1"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return m
	}
	const sig = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct {
		name   string
		hdr    map[string]string
		status int
		code   string
	}{
		{"no auth", good, 400, "MissingAuthenticationTokenException"},
		{"wrong target", with("X-Amz-Target", "secretsmanager.ListSecrets"), 400, "UnknownOperationException"},
		{"wrong content type", with("Content-Type", "application/json"), 400, "SerializationException"},
		{"not sigv4", with("Authorization", "Bearer abc"), 400, "IncompleteSignatureException"},
		{"no signature", with("Authorization", "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date"), 400, "IncompleteSignatureException"},
		{"wrong service", with("Authorization", "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature="+sig), 400, "InvalidSignatureException"},
		{"wrong region", with("Authorization", "AWS4-HMAC-SHA256 Credential=test/20240101/eu-west-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date, Signature="+sig), 400, "InvalidSignatureException"},
		{"no date", with("Authorization", "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date, Signature="+sig), 400, "IncompleteSignatureException"},
	}
	for _, tc := range cases {
		status, body, hdr := rawPost(t, sm.URL(), tc.hdr, `{"SecretId":"a"}`)
		if status != tc.status || body["__type"] != tc.code || body["message"] == "" || hdr.Get("x-amzn-RequestId") == "" || hdr.Get("Content-Type") != "application/x-amz-json-1.1" {
			t.Errorf("%s: %d %v %v", tc.name, status, body, hdr)
		}
	}
	if status, body, _ := rawPost(t, sm.URL()+"/other", good, `{}`); status != 404 || body["__type"] != "UnknownOperationException" {
		t.Errorf("other path: %d %v", status, body)
	}
}

// TestSignatureVerified signs a request with the SDK's signer, then
// tampers with it: the server must notice.
func TestSignatureVerified(t *testing.T) {
	t.Parallel()
	sm := smtest.New(t)
	sm.Put("a", "x")
	signed := func(body, akid, secret string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, sm.URL()+"/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		sum := sha256.Sum256([]byte(body))
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret},
			req, hex.EncodeToString(sum[:]), "secretsmanager", smtest.Region, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	if status, body, _ := do(t, signed(`{"SecretId":"a"}`, smtest.AccessKeyID, smtest.SecretAccessKey)); status != 200 || body["SecretString"] != "x" {
		t.Fatalf("signed request: %d %v", status, body)
	}
	req := signed(`{"SecretId":"a"}`, smtest.AccessKeyID, smtest.SecretAccessKey)
	req.Body = io.NopCloser(strings.NewReader(`{"SecretId":"b"}`))
	if status, body, _ := do(t, req); status != 400 || body["__type"] != "InvalidSignatureException" {
		t.Fatalf("tampered body: %d %v", status, body)
	}
	req = signed(`{"SecretId":"a"}`, smtest.AccessKeyID, smtest.SecretAccessKey)
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue ")
	req.Header.Set("X-Amz-Date", "20000101T000000Z")
	if status, body, _ := do(t, req); status != 400 || !strings.Contains(body["__type"], "Signature") {
		t.Fatalf("tampered date: %d %v", status, body)
	}
	if status, body, _ := do(t, signed(`{"SecretId":"a"}`, smtest.AccessKeyID, "wrong")); status != 400 || body["__type"] != "InvalidSignatureException" {
		t.Fatalf("wrong secret key: %d %v", status, body)
	}
	if status, body, _ := do(t, signed(`{"SecretId":"a"}`, "AKIAOTHER", smtest.SecretAccessKey)); status != 400 || body["__type"] != "UnrecognizedClientException" {
		t.Fatalf("unknown key: %d %v", status, body)
	}
	if status, body, _ := do(t, signed(`not json`, smtest.AccessKeyID, smtest.SecretAccessKey)); status != 400 || body["__type"] != "SerializationException" {
		t.Fatalf("bad body: %d %v", status, body)
	}
	if status, body, _ := do(t, signed(`{}`, smtest.AccessKeyID, smtest.SecretAccessKey)); status != 400 || body["__type"] != "InvalidParameterException" {
		t.Fatalf("no SecretId: %d %v", status, body)
	}
}

// TestSetenv: with only the environment Setenv gives, the SDK's default
// chain reaches the fake. Not parallel: it sets the process environment.
func TestSetenv(t *testing.T) {
	sm := smtest.New(t)
	sm.Setenv(t)
	sm.Put("a", "x")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("a")})
	if err != nil || aws.ToString(out.SecretString) != "x" {
		t.Fatalf("%v %v", out, err)
	}
	if env := sm.Env(); env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] != sm.URL() || env["AWS_EC2_METADATA_DISABLED"] != "true" {
		t.Fatalf("Env = %v", env)
	}
}
