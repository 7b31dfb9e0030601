package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/tickgate/tickgate/apierr"
)

// DefaultMaxBodyBytes caps a request body when the route sets no
// max_body_bytes.
const DefaultMaxBodyBytes = 1 << 20

// errBodyTooLarge ends the read of a request body past its route's limit.
var errBodyTooLarge = errors.New("request body is larger than the route's max_body_bytes")

// bodyTooLarge is the answer to a request body over its limit.
func bodyTooLarge(limit int64, method string) *apierr.Error {
	if limit == 0 {
		return apierr.New(http.StatusRequestEntityTooLarge, "body_too_large", method+" requests take no body")
	}
	return apierr.New(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body is larger than %d bytes", limit))
}

// bodyLimit returns the largest request body allowed for method on rt: 0
// for GET and HEAD, which take none.
func bodyLimit(rt *route, method string) int64 {
	if method == http.MethodGet || method == http.MethodHead {
		return 0
	}
	return rt.maxBody
}

// hasBody reports whether r announces a body.
func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody || len(r.TransferEncoding) > 0
}

// limitedBody reads a request body and fails with errBodyTooLarge past
// n bytes, flagging over (read by the handler goroutine after the
// transport's writer goroutine gave up).
type limitedBody struct {
	rc   io.ReadCloser
	left int64 // bytes still allowed
	over *atomic.Bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		b.over.Store(true)
		// The byte past the limit is not passed on: the vendor never
		// sees more than the limit.
		return n - 1, errBodyTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
