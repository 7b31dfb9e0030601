package config

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid configuration")

// Problems collects validation problems, one line each.
type Problems []string

// Addf records one problem.
func (p *Problems) Addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// Err returns nil when there are no problems, else an error whose message
// is the problems joined by newlines and which wraps ErrInvalid.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return &problemsError{p}
}

type problemsError struct{ p Problems }

func (e *problemsError) Error() string { return strings.Join(e.p, "\n") }
func (e *problemsError) Unwrap() error { return ErrInvalid }

// Lines returns the individual problems of an error from this package, or
// the error's text as one line.
func Lines(err error) []string {
	var pe *problemsError
	if errors.As(err, &pe) {
		return pe.p
	}
	return []string{err.Error()}
}
