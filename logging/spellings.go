package logging

import "github.com/tickgate/tickgate/secrets"

// spellings returns v as a log line may carry it: the forms a vendor's or
// a library's encoders write (URL-encoded in either hex case, JSON-escaped
// in its variants), as the proxy and the relay scrub them.
func spellings(v string) []string {
	return secrets.Spellings(secrets.NewValue(v))
}
