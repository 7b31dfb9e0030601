package secrets

import (
	"fmt"
	"log/slog"
)

const redacted = "[redacted]"

// Value holds a secret. Every way of printing it prints "[redacted]".
type Value struct{ s string }

// NewValue wraps s.
func NewValue(s string) Value { return Value{s: s} }

// Reveal returns the secret text. Call it only where the value goes on the
// wire to the vendor.
func (v Value) Reveal() string { return v.s }

// IsZero reports whether the value is empty.
func (v Value) IsZero() bool { return v.s == "" }

// Equal reports whether two values hold the same secret.
func (v Value) Equal(o Value) bool { return v.s == o.s }

func (Value) String() string                { return redacted }
func (Value) GoString() string              { return redacted }
func (Value) LogValue() slog.Value          { return slog.StringValue(redacted) }
func (Value) MarshalJSON() ([]byte, error)  { return []byte(`"` + redacted + `"`), nil }
func (Value) MarshalText() ([]byte, error)  { return []byte(redacted), nil }
func (Value) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redacted)) }

var (
	_ fmt.Stringer   = Value{}
	_ fmt.GoStringer = Value{}
	_ fmt.Formatter  = Value{}
	_ slog.LogValuer = Value{}
)
