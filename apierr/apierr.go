// Package apierr is the one place where failures become HTTP responses.
//
// Every error body tickgate sends has the shape of the contract (DESIGN 1.4):
//
//	{"error":{"code":"<snake_case>","message":"<human text>"}}
//
// The split follows tailscale's HTTPError: Code and Message are fixed text
// meant for the client; Err carries details for the log and is never sent.
// Nothing that reaches Message may contain a key, a cookie, a session id or a
// password, so messages are written as constants by the caller.
package apierr

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Error is an HTTP-facing error with a stable code.
type Error struct {
	Status  int    // HTTP status code
	Code    string // stable snake_case code, part of the contract
	Message string // fixed human text for the client
	// RetryAfter, when positive, is sent as Retry-After in whole seconds.
	RetryAfter int
	Err        error // cause, for the log only
}

// New returns an Error without a cause.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// Wrap returns an Error that keeps err as its cause for the log.
func Wrap(err error, status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message, Err: err}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

type body struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Write sends err as a contract error body. An error that is not an *Error
// becomes a generic 500 whose text is not revealed.
func Write(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = New(http.StatusInternalServerError, "internal", "internal error")
	}
	var b body
	b.Error.Code = e.Code
	b.Error.Message = e.Message
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(b)
}

// Respond is shorthand for Write(w, New(status, code, message)).
func Respond(w http.ResponseWriter, status int, code, message string) {
	Write(w, New(status, code, message))
}
