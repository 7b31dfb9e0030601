package proxy

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/tickgate/tickgate/config"
)

// maxErrorBody is the largest 200 body read to look for an error inside
// it; a larger one is passed on as it is (an error envelope is small).
const maxErrorBody = 64 << 10

// bodyErrorRule is a compiled config.ErrorInBody.
type bodyErrorRule struct {
	field    []string
	value    string
	anyValue bool
	code     []string
	probe    []byte // `"name"` of the field's last part: cheap pre-check
}

func compileBodyErrorRule(c config.ErrorInBody) (*bodyErrorRule, error) {
	if c.Field == "" {
		return nil, errors.New("field is required")
	}
	r := &bodyErrorRule{field: strings.Split(c.Field, "."), value: c.Value, anyValue: c.Value == ""}
	if c.CodeField != "" {
		r.code = strings.Split(c.CodeField, ".")
	}
	for _, parts := range [][]string{r.field, r.code} {
		for _, s := range parts {
			if s == "" {
				return nil, errors.New("field names must not be empty (a.b for nested fields)")
			}
		}
	}
	last, _ := json.Marshal(r.field[len(r.field)-1])
	r.probe = last
	return r, nil
}

// match reports whether the JSON body reports an error, and the status
// in it (0 when there is none usable).
func (r *bodyErrorRule) match(body []byte) (status int, isErr bool) {
	if !bytes.Contains(body, r.probe) {
		return 0, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return 0, false
	}
	v, ok := lookup(doc, r.field)
	if !ok || v == nil {
		return 0, false
	}
	text := scalarText(v)
	if r.anyValue {
		if text == "" || text == "false" {
			return 0, false
		}
	} else if text != r.value {
		return 0, false
	}
	if r.code == nil {
		return 0, true
	}
	c, ok := lookup(doc, r.code)
	if !ok {
		return 0, true
	}
	n, err := strconv.Atoi(strings.TrimSpace(scalarText(c)))
	if err != nil || n < 400 || n > 599 {
		return 0, true
	}
	return n, true
}

func lookup(doc map[string]any, path []string) (any, bool) {
	var v any = doc
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[p]; !ok {
			return nil, false
		}
	}
	return v, true
}

// scalarText is a JSON scalar as text; objects and arrays give "{}".
func scalarText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	default:
		return "{}"
	}
}

// inspectBody looks inside a small 200 answer of an upstream whose vendor
// reports errors in the body ({"status":"error","code":401,...}). When it
// finds one, the answer's status becomes the real one, so that the usual
// handling applies: 401/403 invalidate the key and retry once, 429 is
// upstream_rate_limited with a cool-down, 5xx or an error without a
// usable code is 502 upstream_error, another 4xx passes through scrubbed.
// The body is put back for whoever reads it next.
func (st *state) inspectBody(res *http.Response) {
	rule := st.u.errBody
	if rule == nil || res.StatusCode != http.StatusOK || res.Request.Method == http.MethodHead || res.ContentLength > maxErrorBody {
		return
	}
	orig := res.Body
	raw, err := io.ReadAll(io.LimitReader(orig, maxErrorBody+1))
	if err != nil || len(raw) > maxErrorBody {
		// Hand on what was read, then the rest (or the read error).
		var rest io.Reader = orig
		if err != nil {
			rest = errReader{err}
		}
		res.Body = readCloser{io.MultiReader(bytes.NewReader(raw), rest), orig}
		return
	}
	body := raw
	if enc := strings.ToLower(strings.TrimSpace(res.Header.Get("Content-Encoding"))); enc != "" && enc != "identity" {
		plain, ok := decodeSmall(enc, raw)
		if !ok {
			res.Body = readCloser{bytes.NewReader(raw), orig}
			return
		}
		body = plain
		res.Header.Del("Content-Encoding")
		res.Uncompressed = true
	}
	res.Body = readCloser{bytes.NewReader(body), orig}
	res.ContentLength = int64(len(body))
	res.Header.Set("Content-Length", strconv.Itoa(len(body)))
	status, isErr := rule.match(body)
	if !isErr {
		return
	}
	if status == 0 {
		status = http.StatusBadGateway
	}
	st.bodyError = status
	res.StatusCode = status
	res.Status = strconv.Itoa(status) + " " + http.StatusText(status)
}

// decodeSmall decompresses a small gzip or deflate body; ok is false for
// another encoding, a broken stream, or more than maxErrorBody bytes.
func decodeSmall(enc string, raw []byte) ([]byte, bool) {
	var zr io.Reader
	var err error
	switch enc {
	case "gzip", "x-gzip":
		zr, err = gzip.NewReader(bytes.NewReader(raw))
	case "deflate":
		zr, err = zlib.NewReader(bytes.NewReader(raw))
	default:
		return nil, false
	}
	if err != nil {
		return nil, false
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxErrorBody+1))
	if err != nil || len(out) > maxErrorBody {
		return nil, false
	}
	return out, true
}

type readCloser struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
