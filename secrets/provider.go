package secrets

import (
	"context"
	"fmt"
)

// Provider reads one named secret. Implementations return an error wrapping
// ErrNotFound or ErrEmpty when the secret is missing or empty; their errors
// name the secret and never contain its value.
type Provider interface {
	Get(ctx context.Context, name string) (Value, error)
}

// Env reads secrets from environment variables through a getenv function,
// so that cmd/tickgate stays the only reader of the real environment.
type Env struct {
	getenv func(string) string
}

// NewEnv returns a provider reading variables through getenv.
func NewEnv(getenv func(string) string) *Env { return &Env{getenv: getenv} }

// Get returns the variable name; unset and empty are both errors.
func (e *Env) Get(_ context.Context, name string) (Value, error) {
	v := e.getenv(name)
	if v == "" {
		return Value{}, fmt.Errorf("secret %s: %w (set it in the environment or .env)", name, ErrNotFound)
	}
	return NewValue(v), nil
}

var _ Provider = (*Env)(nil)
