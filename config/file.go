package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// File is the YAML configuration: upstreams, feeds and limits.
type File struct {
	Upstreams map[string]Upstream `yaml:"upstreams"`
	Feeds     map[string]Feed     `yaml:"feeds"`
	Limits    Limits              `yaml:"limits"`
	Guard     Guard               `yaml:"guard"`
}

// Limits override the environment's default rate limits.
type Limits struct {
	IP      Limit `yaml:"ip"`      // default per client IP; TICKGATE_LIMIT_IP when empty
	Session Limit `yaml:"session"` // default per session; TICKGATE_LIMIT_SESSION when empty
}

// Duration is a time.Duration written as "10s" in YAML.
type Duration time.Duration

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 500ms, 10s)", b)
	}
	*d = Duration(v)
	return nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// names are upstream and feed names: they appear in URLs and metric labels.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

var envRefRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Load reads and validates the YAML file at path, expanding ${NAME} through
// getenv. A reference to an unset variable is an error.
func Load(path string, getenv func(string) string) (File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("TICKGATE_CONFIG: %w", err)
	}
	return Parse(b, getenv)
}

// Parse is Load on bytes.
func Parse(b []byte, getenv func(string) string) (File, error) {
	var p Problems
	expanded := envRefRE.ReplaceAllFunc(b, func(m []byte) []byte {
		name := string(envRefRE.FindSubmatch(m)[1])
		v := getenv(name)
		if v == "" {
			p.Addf("config: ${%s} is not set in the environment", name)
		}
		return []byte(v)
	})
	if err := p.Err(); err != nil {
		return File{}, err
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return File{}, fmt.Errorf("config: %s: %w", cleanYAMLError(err), ErrInvalid)
	}
	return f, f.Validate()
}

// yamlTypeRE matches the Go type names yaml.v3 puts in its errors.
var yamlTypeRE = regexp.MustCompile(` in type [\w.\[\]*]+`)

func cleanYAMLError(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	s = strings.ReplaceAll(s, "unmarshal errors:\n  ", "")
	s = yamlTypeRE.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "into config.", "into ")
	return strings.ReplaceAll(s, "\n  ", "; ")
}

// Validate checks the file and returns every problem, one per line.
func (f File) Validate() error {
	var p Problems
	if len(f.Upstreams) == 0 && len(f.Feeds) == 0 {
		p.Addf("config: no upstreams and no feeds; nothing to serve")
	}
	for _, name := range sortedKeys(f.Upstreams) {
		if !nameRE.MatchString(name) {
			p.Addf("upstreams.%s: name must be lower-case letters, digits, - or _", name)
		}
		f.Upstreams[name].validate("upstreams."+name, &p)
	}
	for _, name := range sortedKeys(f.Feeds) {
		if !nameRE.MatchString(name) {
			p.Addf("feeds.%s: name must be lower-case letters, digits, - or _", name)
		}
		f.Feeds[name].validate("feeds."+name, &p)
	}
	f.Guard.validate("guard", f.Feeds, &p)
	f.validateAWSSecrets(&p)
	return p.Err()
}

// keyRef is one key reference and where it sits in the file.
type keyRef struct {
	field string // "upstreams.x.key", "upstreams.x.keys[1]", "feeds.y.key"
	ref   KeyRef
}

// keyRefs returns every key reference in the file, in a stable order.
func (f File) keyRefs() []keyRef {
	var out []keyRef
	for _, name := range sortedKeys(f.Upstreams) {
		u := f.Upstreams[name]
		if len(u.Keys) > 0 {
			for i, k := range u.Keys {
				out = append(out, keyRef{fmt.Sprintf("upstreams.%s.keys[%d]", name, i), k})
			}
		} else {
			out = append(out, keyRef{"upstreams." + name + ".key", u.Key})
		}
	}
	for _, name := range sortedKeys(f.Feeds) {
		out = append(out, keyRef{"feeds." + name + ".key", f.Feeds[name].Key})
	}
	return out
}

// validateAWSSecrets refuses one secret name read from two places.
func (f File) validateAWSSecrets(p *Problems) {
	first := map[string]keyRef{}
	for _, k := range f.keyRefs() {
		if k.ref.Secret == "" {
			continue
		}
		prev, seen := first[k.ref.Secret]
		if !seen {
			first[k.ref.Secret] = k
			continue
		}
		if prev.ref.AWSSecret != k.ref.AWSSecret {
			p.Addf("%s.aws_secret: secret %s is read from %q here and from %q at %s; give every reference to it the same aws_secret",
				k.field, k.ref.Secret, k.ref.AWSSecret, prev.ref.AWSSecret, prev.field)
		}
	}
}

// AWSSecrets maps each secret name whose key has an aws_secret of its own
// to that reference ("id" or "id#field").
func (f File) AWSSecrets() map[string]string {
	out := map[string]string{}
	for _, k := range f.keyRefs() {
		if k.ref.Secret != "" && k.ref.AWSSecret != "" {
			out[k.ref.Secret] = k.ref.AWSSecret
		}
	}
	return out
}

// SecretNames returns every secret the file references, sorted, once each.
func (f File) SecretNames() []string {
	set := map[string]bool{}
	for _, k := range f.keyRefs() {
		for _, s := range k.ref.secretNames() {
			set[s] = true
		}
	}
	return sortedKeys(set)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
