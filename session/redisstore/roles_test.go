package redisstore

import (
	"errors"
	"slices"
	"testing"
)

// TestDecodeRecordRoles: the roles field is optional (records written
// before roles existed have none) and must be a string when present.
func TestDecodeRecordRoles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		vals      []any
		roles     []string
		found     bool
		malformed bool
	}{
		{"roles", []any{"alice", "1", "2.5", "3", "realtime,trading"}, []string{"realtime", "trading"}, true, false},
		{"no roles field", []any{"alice", "1", "2.5", "3", nil}, nil, true, false},
		{"empty roles field", []any{"alice", "1", "2.5", "3", ""}, nil, true, false},
		{"absent record", []any{nil, nil, nil, nil, nil}, nil, false, false},
		{"roles without a record", []any{nil, nil, nil, nil, "trading"}, nil, false, true},
		{"roles of another type", []any{"alice", "1", "2.5", "3", int64(1)}, nil, false, true},
		{"six fields", []any{"alice", "1", "2.5", "3", "", ""}, nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, found, err := decodeRecord("k", tt.vals)
			if got := errors.Is(err, ErrMalformedRecord); got != tt.malformed {
				t.Fatalf("err = %v, malformed = %v, want %v", err, got, tt.malformed)
			}
			if found != tt.found || !slices.Equal(rec.Roles, tt.roles) {
				t.Fatalf("found %v roles %q, want %v %q", found, rec.Roles, tt.found, tt.roles)
			}
		})
	}
	if got := joinRoles([]string{"a", "b"}); got != "a,b" || len(splitRoles(got)) != 2 || splitRoles("") != nil {
		t.Fatalf("joinRoles/splitRoles do not round-trip: %q", got)
	}
}
