package smtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test identity the server accepts. Requests signed with any other access
// key get UnrecognizedClientException; with a wrong secret key,
// InvalidSignatureException.
const (
	AccessKeyID     = "test"
	SecretAccessKey = "test"
	Region          = "us-east-1"
	AccountID       = "123456789012"
)

// All, passed to Fail, applies a failure to every secret id.
const All = "*"

// Failure is an injected failure for Fail.
type Failure string

// Failures Fail can inject.
const (
	FailNone     Failure = "none"     // answer normally again
	FailDenied   Failure = "denied"   // 400 AccessDeniedException
	FailInternal Failure = "internal" // 500 InternalServiceError
	FailThrottle Failure = "throttle" // 400 ThrottlingException
	FailDecrypt  Failure = "decrypt"  // 400 DecryptionFailure (KMS)
	FailGarbage  Failure = "garbage"  // 200 with a body that is not JSON
	FailHang     Failure = "hang"     // no answer until the client gives up or the server closes
)

const target = "secretsmanager.GetSecretValue"

// Server is a fake AWS Secrets Manager endpoint. It is safe for concurrent
// use.
type Server struct {
	hs       *httptest.Server
	closing  chan struct{}
	closeOne sync.Once
	missing  string

	mu      sync.Mutex
	secrets map[string]*secret // by name
	fail    map[string]Failure // by id as requested, or All
	calls   map[string]int     // by SecretId as requested
	total   int
	paused  chan struct{} // non-nil while paused; closed on resume
	reqSeq  int
}

type secret struct {
	name     string
	arn      string
	versions []*version // oldest first
}

type version struct {
	id      string
	text    *string
	binary  []byte
	created time.Time
	stages  []string
}

// New starts a server on 127.0.0.1 and closes it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := Start()
	t.Cleanup(s.Close)
	return s
}

// Start starts a server on 127.0.0.1 that the caller must Close; New is
// the usual way in a test. Start is for examples and TestMain.
func Start() *Server {
	s := &Server{
		closing: make(chan struct{}),
		secrets: make(map[string]*secret),
		fail:    make(map[string]Failure),
		calls:   make(map[string]int),
		// A path that does not exist, for the SDK's shared config files.
		missing: filepath.Join(os.TempDir(), "smtest-"+randomHex(8), "none"),
	}
	s.hs = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the endpoint, e.g. http://127.0.0.1:43127.
func (s *Server) URL() string { return s.hs.URL }

// Close releases paused and hanging requests and stops the server. Safe to
// call twice; New registers it with t.Cleanup.
func (s *Server) Close() {
	s.closeOne.Do(func() {
		close(s.closing)
		s.hs.Close()
	})
}

// Put stores secretString as the new AWSCURRENT version of secret id (a
// name), creating the secret if needed; the previous current version
// becomes AWSPREVIOUS. This is a rotation. It returns the new VersionId.
func (s *Server) Put(id, secretString string) string {
	return s.put(id, &version{text: &secretString})
}

// PutCreated is Put with the version's CreatedDate set to created, for
// tests of key age.
func (s *Server) PutCreated(id, secretString string, created time.Time) string {
	return s.put(id, &version{text: &secretString, created: created.Truncate(time.Millisecond)})
}

// PutBinary stores a SecretBinary version, as `aws secretsmanager
// create-secret --secret-binary` does.
func (s *Server) PutBinary(id string, b []byte) string {
	return s.put(id, &version{binary: append([]byte(nil), b...)})
}

func (s *Server) put(id string, v *version) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[id]
	if sec == nil {
		sec = &secret{name: id, arn: fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", Region, AccountID, id, randomHex(3))}
		s.secrets[id] = sec
	}
	v.id = uuid()
	if v.created.IsZero() {
		v.created = time.Now().Truncate(time.Millisecond)
	}
	v.stages = []string{"AWSCURRENT"}
	for _, old := range sec.versions {
		switch {
		case slices.Contains(old.stages, "AWSCURRENT"):
			old.stages = []string{"AWSPREVIOUS"}
		case slices.Contains(old.stages, "AWSPREVIOUS"):
			old.stages = nil
		}
	}
	sec.versions = append(sec.versions, v)
	return v.id
}

// ARN returns the ARN of secret id, which GetSecretValue also accepts.
func (s *Server) ARN(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := s.secrets[id]; sec != nil {
		return sec.arn
	}
	return ""
}

// Delete removes secret id; reads get ResourceNotFoundException.
func (s *Server) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.secrets, id)
}

// Fail makes reads of id (or of every secret, with All) fail with kind
// until Fail(id, FailNone). A failure set for an id wins over All.
func (s *Server) Fail(id string, kind Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kind == FailNone || kind == "" {
		delete(s.fail, id)
		return
	}
	s.fail[id] = kind
}

// Calls returns how many GetSecretValue requests arrived, whatever their
// outcome (including rejected signatures and injected failures).
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// CallsFor returns how many GetSecretValue requests named id (as sent: a
// name and its ARN count separately).
func (s *Server) CallsFor(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[id]
}

// Pause holds every request that arrives (after counting it) until resume
// is called, the client gives up, or the server closes. It lets a test
// have many callers waiting on one AWS call. resume is safe to call twice.
func (s *Server) Pause() (resume func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused == nil {
		s.paused = make(chan struct{})
	}
	ch := s.paused
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.paused == ch {
				s.paused = nil
			}
			s.mu.Unlock()
			close(ch)
		})
	}
}

// getRequest is the GetSecretValue request body.
type getRequest struct {
	SecretID     string `json:"SecretId"`
	VersionID    string `json:"VersionId"`
	VersionStage string `json:"VersionStage"`
}

// getResponse is the GetSecretValue response body.
type getResponse struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	VersionID     string   `json:"VersionId"`
	SecretString  *string  `json:"SecretString,omitempty"`
	SecretBinary  []byte   `json:"SecretBinary,omitempty"` // base64, as AWS sends it
	VersionStages []string `json:"VersionStages"`
	CreatedDate   float64  `json:"CreatedDate"` // epoch seconds
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.reqSeq++
	reqID := fmt.Sprintf("smtest-%06d-%s", s.reqSeq, randomHex(4))
	s.mu.Unlock()
	w.Header().Set("x-amzn-RequestId", reqID)

	if r.Method != http.MethodPost || r.URL.Path != "/" {
		awsError(w, http.StatusNotFound, "UnknownOperationException", "only POST / is served")
		return
	}
	if got := r.Header.Get("X-Amz-Target"); got != target {
		awsError(w, http.StatusBadRequest, "UnknownOperationException", "unsupported X-Amz-Target")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		awsError(w, http.StatusBadRequest, "SerializationException", "Content-Type must be application/x-amz-json-1.1")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		awsError(w, http.StatusBadRequest, "SerializationException", "unreadable body")
		return
	}
	var req getRequest
	jsonErr := json.Unmarshal(body, &req)

	s.mu.Lock()
	s.total++
	s.calls[req.SecretID]++
	s.mu.Unlock()

	if code, msg := checkAuth(r, body); code != "" {
		awsError(w, http.StatusBadRequest, code, msg)
		return
	}
	if jsonErr != nil {
		awsError(w, http.StatusBadRequest, "SerializationException", "body is not a JSON object")
		return
	}
	if req.SecretID == "" {
		awsError(w, http.StatusBadRequest, "InvalidParameterException", "SecretId is required")
		return
	}

	s.mu.Lock()
	paused := s.paused
	kind, ok := s.fail[req.SecretID]
	if !ok {
		kind = s.fail[All]
	}
	s.mu.Unlock()
	if paused != nil && !s.wait(r, paused) {
		abort()
	}

	switch kind {
	case FailDenied:
		awsError(w, http.StatusBadRequest, "AccessDeniedException", fmt.Sprintf(
			"User: arn:aws:sts::%s:assumed-role/tickgate/test is not authorized to perform: secretsmanager:GetSecretValue on resource: %s because no identity-based policy allows the secretsmanager:GetSecretValue action",
			AccountID, req.SecretID))
		return
	case FailInternal:
		awsError(w, http.StatusInternalServerError, "InternalServiceError", "An error occurred on the server side.")
		return
	case FailThrottle:
		awsError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	case FailDecrypt:
		awsError(w, http.StatusBadRequest, "DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key.")
		return
	case FailGarbage:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = io.WriteString(w, "<html>proxy error</html>")
		return
	case FailHang:
		s.wait(r, nil)
		abort()
	}

	resp, code, msg := s.lookup(req)
	if code != "" {
		awsError(w, http.StatusBadRequest, code, msg)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(resp)
}

// abort drops the connection without an answer, as a dead endpoint
// would; net/http recovers this panic silently.
func abort() { panic(http.ErrAbortHandler) }

// wait blocks until ch closes (true), or the request or server ends
// (false). A nil ch waits for the latter only.
func (s *Server) wait(r *http.Request, ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-r.Context().Done():
	case <-s.closing:
	}
	return false
}

func (s *Server) lookup(req getRequest) (getResponse, string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[req.SecretID]
	if sec == nil {
		for _, c := range s.secrets {
			// A full ARN, or a partial one without the random suffix.
			if c.arn == req.SecretID || (strings.HasPrefix(req.SecretID, "arn:") && c.arn[:strings.LastIndexByte(c.arn, '-')] == req.SecretID) {
				sec = c
				break
			}
		}
	}
	if sec == nil {
		return getResponse{}, "ResourceNotFoundException", "Secrets Manager can't find the specified secret."
	}
	stage := req.VersionStage
	if stage == "" && req.VersionID == "" {
		stage = "AWSCURRENT"
	}
	for i := len(sec.versions) - 1; i >= 0; i-- {
		v := sec.versions[i]
		if (req.VersionID == "" || v.id == req.VersionID) && (stage == "" || slices.Contains(v.stages, stage)) {
			return getResponse{
				ARN:           sec.arn,
				Name:          sec.name,
				VersionID:     v.id,
				SecretString:  v.text,
				SecretBinary:  v.binary,
				VersionStages: append([]string(nil), v.stages...),
				CreatedDate:   float64(v.created.UnixMilli()) / 1000,
			}, "", ""
		}
	}
	return getResponse{}, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: " + stage
}

// awsError writes an AWS JSON 1.1 error body.
func awsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func uuid() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
