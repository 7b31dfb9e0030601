package awssm

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/tickgate/tickgate/secrets"
)

// ref says where one tickgate secret lives in Secrets Manager.
type ref struct {
	id    string // secret id: name or ARN
	field string // JSON field; "" means the whole SecretString is the value
}

// parseRef parses a PerKey reference: "secret-id" (the whole secret string
// is the value) or "secret-id#field" (the secret is a JSON object and the
// value is that field). '#' cannot occur in a Secrets Manager name or ARN.
func parseRef(s string) (ref, error) {
	id, field, hasField := strings.Cut(s, "#")
	if err := checkID(id); err != nil {
		return ref{}, err
	}
	if hasField && field == "" {
		return ref{id: id}, errors.New(`nothing after "#": write "secret-id#field", or just "secret-id" for a plain-text secret`)
	}
	if strings.IndexFunc(field, unicode.IsControl) >= 0 {
		return ref{id: id}, errors.New("field name has control characters")
	}
	return ref{id: id, field: field}, nil
}

// checkID rejects ids Secrets Manager could never hold, so the mistake is
// reported at start-up rather than as a not-found from AWS.
func checkID(id string) error {
	switch {
	case id == "":
		return errors.New("empty secret id")
	case len(id) > 2048:
		return errors.New("secret id longer than 2048 characters")
	case strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return errors.New("secret id contains spaces or control characters")
	}
	return nil
}

// problem is an extraction failure: a message naming no value, the
// sentinel it matches, and whether it is about the field rather than the
// whole secret.
type problem struct {
	msg   string
	kind  error
	field bool
}

// extract returns the value r selects from a fetched secret string. It
// never puts any part of text into a problem: encoding/json's syntax
// errors quote the offending character, so only their offset is used.
// Surrounding white space is trimmed, since no vendor key has any and a
// stray newline from `--secret-string file://key.txt` is common.
func extract(text string, r ref) (string, *problem) {
	if r.field == "" {
		v := strings.TrimSpace(text)
		if v == "" {
			return "", &problem{msg: "empty secret string", kind: secrets.ErrEmpty}
		}
		if v[0] == '{' && json.Valid([]byte(v)) {
			return "", &problem{msg: fmt.Sprintf(`a JSON object, not a plain value; reference one field as "%s#FIELD"`, oneLine(r.id, 2048)), kind: ErrFormat}
		}
		return v, nil
	}
	obj, p := object(text)
	if p != nil {
		return "", p
	}
	raw, ok := obj[r.field]
	if !ok {
		return "", &problem{msg: "not in the JSON object (" + fieldHint(obj, r.field) + ")", kind: secrets.ErrNotFound, field: true}
	}
	if k := jsonKind(raw); k != "string" {
		return "", &problem{msg: fmt.Sprintf("a JSON %s, not a string", k), kind: ErrFormat, field: true}
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", &problem{msg: "not a valid JSON string", kind: ErrFormat, field: true}
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return "", &problem{msg: "empty", kind: secrets.ErrEmpty, field: true}
	}
	return v, nil
}

// object parses text as a JSON object of name → value.
func object(text string) (map[string]json.RawMessage, *problem) {
	const want = `; store a JSON object such as {"NAME":"value"}`
	t := strings.TrimSpace(text)
	if t == "" {
		return nil, &problem{msg: "empty secret string" + want, kind: secrets.ErrEmpty}
	}
	if !json.Valid([]byte(t)) {
		msg := "not valid JSON"
		var se *json.SyntaxError
		if err := json.Unmarshal([]byte(t), new(any)); errors.As(err, &se) {
			msg = fmt.Sprintf("not valid JSON (syntax error at byte %d)", se.Offset)
		}
		return nil, &problem{msg: msg + want, kind: ErrFormat}
	}
	if k := jsonKind([]byte(t)); k != "object" {
		return nil, &problem{msg: "a JSON " + k + ", not an object" + want, kind: ErrFormat}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(t), &obj); err != nil {
		return nil, &problem{msg: "not a valid JSON object" + want, kind: ErrFormat}
	}
	return obj, nil
}

// jsonKind names the type of a valid JSON text from its first byte.
func jsonKind(raw []byte) string {
	s := strings.TrimLeft(string(raw), " \t\r\n")
	if s == "" {
		return "nothing"
	}
	switch s[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// fieldHint describes the fields an object has without naming them: a
// field name is normally a secret's name, but someone who wrote the object
// the wrong way round ({"value":"NAME"}) would see keys printed.
func fieldHint(obj map[string]json.RawMessage, field string) string {
	for n := range obj {
		if strings.EqualFold(n, field) {
			return "a field differs only in upper/lower case"
		}
	}
	switch len(obj) {
	case 0:
		return "it has no fields"
	case 1:
		return "it has 1 field"
	default:
		return fmt.Sprintf("it has %d fields", len(obj))
	}
}
