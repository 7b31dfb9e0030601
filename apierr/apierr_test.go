package apierr

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	Write(rec, &Error{Status: 429, Code: "rate_limited", Message: "slow down", RetryAfter: 3, Err: errors.New("secret detail")})
	if got, want := rec.Code, 429; got != want {
		t.Fatalf("status = %d, want %d", got, want)
	}
	if got, want := rec.Body.String(), `{"error":{"code":"rate_limited","message":"slow down"}}`+"\n"; got != want {
		t.Fatalf("body = %q, want %q", got, want)
	}
	if got, want := rec.Header().Get("Retry-After"), "3"; got != want {
		t.Fatalf("Retry-After = %q, want %q", got, want)
	}
}

func TestWriteHidesUnknownErrors(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	Write(rec, errors.New("dial tcp: apikey=SECRET"))
	if got, want := rec.Code, http.StatusInternalServerError; got != want {
		t.Fatalf("status = %d, want %d", got, want)
	}
	if got, want := rec.Body.String(), `{"error":{"code":"internal","message":"internal error"}}`+"\n"; got != want {
		t.Fatalf("body = %q, want %q", got, want)
	}
}
