package proxy

import (
	"bytes"
	"io"
	"math"
	"net/url"
	"strings"
	"sync"

	"github.com/tickgate/tickgate/internal/jsonesc"
	"github.com/tickgate/tickgate/secrets"
)

// redacted replaces every occurrence of a key in what a browser receives.
const redacted = "[redacted]"

// maxURLToken bounds how far the scrubber looks for the end of an absolute
// vendor URL before it gives up rewriting it (the key in it is still
// redacted).
const maxURLToken = 8 << 10

// scrubber rewrites text from one upstream on its way to a browser:
//
//  1. an absolute URL under the upstream's base URL becomes the proxy's own
//     path /api/{name}/..., with the key query parameter removed, so that
//     pagination links (Polygon's next_url) keep working without the key;
//  2. every remaining occurrence of the key, raw or in its URL-encoded and
//     JSON-escaped forms, becomes "[redacted]".
//
// A scrubber is immutable and safe for concurrent use; a scrubReader
// applies it to a stream.
type scrubber struct {
	prefix  string   // "/api/{name}"
	base    string   // base URL without trailing slash, e.g. http://127.0.0.1:7070/v2
	slots   []string // key parameter names removed from rewritten URLs (any case)
	keys    []string // key forms, longest first
	needles []needle // what transform searches for
	maxLen  int      // longest needle
}

type needle struct {
	b    []byte
	base bool // an absolute base URL (plain or JSON-escaped), else a key form
}

func newScrubber(prefix, base, slot string, keyValues ...string) *scrubber {
	s := &scrubber{prefix: prefix, base: base, slots: []string{slot}}
	seen := map[string]bool{"": true}
	for _, k := range keyValues {
		for _, f := range keyForms(k) {
			if !seen[f] {
				seen[f] = true
				s.keys = append(s.keys, f)
			}
		}
	}
	// Longest first, so that a form that contains another (the key "a\"
	// and its JSON form "a\\") is replaced as a whole.
	for i := 1; i < len(s.keys); i++ {
		for j := i; j > 0 && len(s.keys[j]) > len(s.keys[j-1]); j-- {
			s.keys[j], s.keys[j-1] = s.keys[j-1], s.keys[j]
		}
	}
	for _, k := range s.keys {
		s.needles = append(s.needles, needle{b: []byte(k)})
	}
	if base != "" {
		s.needles = append(s.needles, needle{b: []byte(base), base: true})
		if esc := strings.ReplaceAll(base, "/", `\/`); esc != base {
			s.needles = append(s.needles, needle{b: []byte(esc), base: true})
		}
	}
	for _, n := range s.needles {
		s.maxLen = max(s.maxLen, len(n.b))
	}
	return s
}

// keyForms returns the spellings of k a vendor may echo
// (secrets.Spellings: Go's, Python's and .NET's encoders).
func keyForms(k string) []string {
	return secrets.Spellings(secrets.NewValue(k))
}

func toLowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// containsKey reports whether s holds any form of the key.
func (s *scrubber) containsKey(v string) bool {
	for _, k := range s.keys {
		if strings.Contains(v, k) {
			return true
		}
	}
	return false
}

// containsKeyFold is containsKey ignoring case, for header names (which
// Go canonicalizes, changing the case of a key inside them).
func (s *scrubber) containsKeyFold(v string) bool {
	v = strings.ToLower(v)
	for _, k := range s.keys {
		if strings.Contains(v, strings.ToLower(k)) {
			return true
		}
	}
	return false
}

// redactString replaces every key form in v.
func (s *scrubber) redactString(v string) string {
	for _, k := range s.keys {
		if strings.Contains(v, k) {
			v = strings.ReplaceAll(v, k, redacted)
		}
	}
	return v
}

// String applies transform to a complete value (a header value).
func (s *scrubber) String(v string) string {
	out, _ := s.transform(nil, []byte(v), true)
	return string(out)
}

// transform appends the scrubbed form of in to dst and returns how many
// bytes of in it consumed. Unless final, it holds back a tail that could
// be the start of a key or of an unfinished vendor URL; the caller passes
// that tail again, followed by more input. With final, all of in is
// consumed.
func (s *scrubber) transform(dst, in []byte, final bool) ([]byte, int) {
	var nextBuf [16]int
	var next []int
	if len(s.needles) <= len(nextBuf) {
		next = nextBuf[:len(s.needles)]
	} else {
		next = make([]int, len(s.needles))
	}
	for i := range next {
		next[i] = -1 // unknown
	}
	pos := 0
	for {
		at, k := s.find(in, pos, next)
		if k < 0 {
			if final {
				return append(dst, in[pos:]...), len(in)
			}
			safe := max(len(in)-(s.maxLen-1), pos)
			return append(dst, in[pos:safe]...), safe
		}
		dst = append(dst, in[pos:at]...)
		if !final && len(in)-at < s.maxLen {
			// A longer needle may start here too: wait until it would fit.
			return dst, at
		}
		n := s.needles[k]
		if !n.base {
			dst = append(dst, redacted...)
			pos = at + len(n.b)
			continue
		}
		end := urlEnd(in, at+len(n.b))
		if end < 0 {
			if !final && len(in)-at <= maxURLToken {
				return dst, at // wait for the rest of the URL
			}
			if final {
				end = len(in)
			}
		}
		if end >= 0 && end-at <= maxURLToken {
			if out, ok := s.rewriteURL(in[at:end]); ok {
				dst = append(dst, out...)
				pos = end
				continue
			}
		}
		// Not a URL under the base (e.g. https://api.vendor.com.evil/) or
		// an overlong one: leave it; keys inside are still redacted.
		dst = append(dst, n.b...)
		pos = at + len(n.b)
	}
}

// find returns the position and index of the earliest needle at or after
// pos (the longest one on a tie), or k = -1. next caches, per needle, its
// next position in in: -1 unknown, MaxInt none.
func (s *scrubber) find(in []byte, pos int, next []int) (at, k int) {
	at, k = math.MaxInt, -1
	for i, n := range s.needles {
		if next[i] < pos {
			if j := bytes.Index(in[pos:], n.b); j >= 0 {
				next[i] = pos + j
			} else {
				next[i] = math.MaxInt
			}
		}
		if p := next[i]; p < at || (p == at && p != math.MaxInt && len(n.b) > len(s.needles[k].b)) {
			at, k = p, i
		}
	}
	if k >= 0 && at == math.MaxInt {
		k = -1
	}
	return at, k
}

// urlEnd returns the index at which a URL token continuing at start ends,
// or -1 when in ends first. The token may hold JSON escapes "\/" and
// "\uXXXX"; it ends at white space, control characters, quotes, angle
// brackets, a backquote or any other backslash escape.
func urlEnd(in []byte, start int) int {
	for i := start; i < len(in); i++ {
		switch c := in[i]; {
		case c <= ' ' || c == 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`':
			return i
		case c == '\\':
			if i+1 >= len(in) {
				return -1
			}
			switch in[i+1] {
			case '/':
				i++
				continue
			case 'u':
				if i+6 > len(in) {
					return -1
				}
				if _, ok := jsonesc.Hex4(in, i+2); ok {
					i += 5
					continue
				}
			}
			return i
		}
	}
	return -1
}

// rewriteURL turns an absolute URL under the base (possibly JSON-escaped)
// into /api/{name}/... without the key parameter, with every key form
// redacted, escaped again the way it came. ok is false when the token is
// not a URL under the base.
func (s *scrubber) rewriteURL(token []byte) (out []byte, ok bool) {
	dec, escSlash, escUnicode := jsonUnescape(token)
	rest, found := strings.CutPrefix(dec, s.base)
	if !found || rest != "" && rest[0] != '/' && rest[0] != '?' && rest[0] != '#' {
		return nil, false
	}
	res := s.relative(rest)
	if bytes.IndexByte(token, '\\') < 0 {
		return []byte(res), true
	}
	return jsonEscape(nil, res, escSlash, escUnicode), true
}

// relative maps the part of a vendor URL after the base ("/v1/x?a=b#f")
// to the proxy's path, without the key parameter and with keys redacted.
func (s *scrubber) relative(rest string) string {
	frag := ""
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest, frag = rest[:i], rest[i:]
	}
	p, q, hasQuery := strings.Cut(rest, "?")
	var b strings.Builder
	b.Grow(len(s.prefix) + len(rest) + len(frag))
	b.WriteString(s.prefix)
	b.WriteString(p)
	if hasQuery {
		if q = removeParam(q, s.slots...); q != "" {
			b.WriteByte('?')
			b.WriteString(q)
		}
	}
	b.WriteString(frag)
	return s.redactString(b.String())
}

// removeParam drops every pair of the raw query q whose name is one of
// slots in any case (also as slot[] or slot[x], which PHP-style parsers
// merge).
func removeParam(q string, slots ...string) string {
	if len(slots) == 0 || q == "" {
		return q
	}
	var b strings.Builder
	for pair := range strings.SplitSeq(q, "&") {
		if pair == "" || isSlotParam(pair, slots...) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pair)
	}
	return b.String()
}

// isSlotParam reports whether the raw query pair names a key slot.
func isSlotParam(pair string, slots ...string) bool {
	name, _, _ := strings.Cut(pair, "=")
	if dn, err := url.QueryUnescape(name); err == nil {
		name = dn
	}
	if i := strings.IndexByte(name, '['); i > 0 {
		name = name[:i]
	}
	for _, slot := range slots {
		if slot != "" && strings.EqualFold(name, slot) {
			return true
		}
	}
	return false
}

// jsonUnescape decodes the "\/" and "\uXXXX" escapes urlEnd lets into a
// token and reports which kinds it saw.
func jsonUnescape(b []byte) (s string, escSlash, escUnicode bool) {
	out, escSlash, escUnicode := jsonesc.Unescape(b)
	return string(out), escSlash, escUnicode
}

// jsonEscape appends s escaped for the inside of a JSON string.
func jsonEscape(dst []byte, s string, escSlash, escHTML bool) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '/' && escSlash:
			dst = append(dst, '\\', '/')
		case c < 0x20 || c == 0x7f || escHTML && (c == '<' || c == '>' || c == '&'):
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// readSize is how much a scrubReader reads from its source at a time.
const readSize = 32 << 10

// scrubReader streams src through a scrubber, holding back only the few
// bytes that could start a key or an unfinished vendor URL, so that a key
// split across reads (down to one byte at a time) is still found.
type scrubReader struct {
	s      *scrubber
	src    io.Reader
	closer io.Closer
	in     []byte // input not yet transformed
	out    []byte // transformed, from off on not yet read
	off    int
	err    error      // sticky source error; io.EOF at the end
	pool   *sync.Pool // of *[]byte; nil allocates
	inBuf  *[]byte
	closed bool
	// afterSource, if set, runs after the source ended or was closed:
	// http.Response bodies fill in Response.Trailer then.
	afterSource func()
}

func newScrubReader(s *scrubber, src io.Reader, closer io.Closer, pool *sync.Pool) *scrubReader {
	r := &scrubReader{s: s, src: src, closer: closer, pool: pool}
	if pool != nil {
		r.inBuf = pool.Get().(*[]byte)
		r.in = (*r.inBuf)[:0]
	}
	return r
}

// Read returns scrubbed bytes. After a source error other than io.EOF,
// input not yet scrubbed is discarded, never passed on.
func (r *scrubReader) Read(p []byte) (int, error) {
	for r.off == len(r.out) {
		r.out, r.off = r.out[:0], 0
		if r.err != nil {
			return 0, r.err
		}
		r.fill()
	}
	n := copy(p, r.out[r.off:])
	r.off += n
	return n, nil
}

// fill reads once from the source and transforms what it can.
func (r *scrubReader) fill() {
	if r.closed {
		r.err = io.ErrClosedPipe
		return
	}
	if cap(r.in)-len(r.in) < 4<<10 {
		grown := make([]byte, len(r.in), 2*cap(r.in)+readSize)
		copy(grown, r.in)
		r.in = grown
	}
	n, err := r.src.Read(r.in[len(r.in):min(cap(r.in), len(r.in)+readSize)])
	r.in = r.in[:len(r.in)+n]
	if err != nil {
		r.err = err
		if r.afterSource != nil {
			r.afterSource()
		}
		if err != io.EOF {
			r.in = r.in[:0]
			return
		}
	}
	var used int
	r.out, used = r.s.transform(r.out, r.in, r.err == io.EOF)
	r.in = r.in[:copy(r.in, r.in[used:])]
}

// prime reads until at least limit scrubbed bytes are buffered or the
// source ends. complete reports that the whole body is buffered.
func (r *scrubReader) prime(limit int) (complete bool, err error) {
	for len(r.out)-r.off < limit && r.err == nil {
		r.fill()
	}
	switch r.err {
	case nil:
		return false, nil
	case io.EOF:
		return len(r.in) == 0, nil
	default:
		return false, r.err
	}
}

// buffered is the number of scrubbed bytes waiting to be read.
func (r *scrubReader) buffered() int { return len(r.out) - r.off }

// Close closes the source and returns the read buffer to its pool.
func (r *scrubReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.err == nil {
		r.err = io.ErrClosedPipe
	}
	if r.inBuf != nil {
		*r.inBuf = (*r.inBuf)[:0]
		r.pool.Put(r.inBuf)
	}
	r.in, r.inBuf = nil, nil
	var err error
	if r.closer != nil {
		err = r.closer.Close()
	}
	if r.afterSource != nil {
		r.afterSource()
	}
	return err
}

// limitReader fails with errTooLarge when its source has more than n
// bytes left.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var b [1]byte
		n, err := l.r.Read(b[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
