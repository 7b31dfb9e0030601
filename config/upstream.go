package config

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Upstream is a vendor REST API reachable under /api/{name}/.
type Upstream struct {
	// BaseURL is the vendor's base, e.g. https://api.vendor.com. https is
	// required except for loopback hosts.
	BaseURL string `yaml:"base_url"`
	// Key says which secret holds the vendor key and where it goes.
	Key KeyRef `yaml:"key"`
	// Routes open paths of the vendor to browsers; anything else is 404.
	Routes []Route `yaml:"routes"`
	// Headers are set on every upstream request (e.g. Accept-Encoding: gzip).
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one upstream request. Default 15s.
	Timeout Duration `yaml:"timeout"`
	// MaxResponseBytes caps a response body. Default 10 MiB.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
}

// KeyRef names the secret holding a vendor key and where the key goes.
type KeyRef struct {
	// Secret is the secret's name in the secrets provider.
	Secret string `yaml:"secret"`
	// Placement is query:<param>, header:<name> or bearer. For feeds it is
	// optional: the adapter's auth decides where the key goes.
	Placement string `yaml:"placement"`
}

// Route opens a set of paths for a set of methods.
type Route struct {
	// Methods allowed; default GET and HEAD.
	Methods []string `yaml:"methods"`
	// Paths are patterns of the vendor's path: "/v1/quote/*" (one segment
	// per *), "/v1/reference/**" (any rest, at the end only).
	Paths []string `yaml:"paths"`
}

var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// KeySlot splits a placement into its kind ("query", "header", "bearer")
// and name (the parameter or header name; "Authorization" for bearer).
func (k KeyRef) KeySlot() (kind, name string) {
	if k.Placement == "bearer" {
		return "bearer", "Authorization"
	}
	kind, name, _ = strings.Cut(k.Placement, ":")
	if kind == "header" {
		name = http.CanonicalHeaderKey(name)
	}
	return kind, name
}

func (k KeyRef) secretNames() []string {
	if k.Secret == "" {
		return nil
	}
	return []string{k.Secret}
}

func (k KeyRef) validate(where string, placementRequired bool, p *Problems) {
	if k.Secret == "" {
		p.Addf("%s.key.secret: required", where)
	}
	if k.Placement == "" && !placementRequired {
		return
	}
	kind, name := k.KeySlot()
	switch kind {
	case "bearer":
	case "query", "header":
		if name == "" || strings.ContainsAny(name, " \t\r\n:=&?#") {
			p.Addf("%s.key.placement: %q needs a valid name after %s:", where, k.Placement, kind)
		}
	default:
		p.Addf("%s.key.placement: %q is not query:<param>, header:<name> or bearer", where, k.Placement)
	}
}

func (u Upstream) validate(where string, p *Problems) {
	base, err := url.Parse(u.BaseURL)
	switch {
	case u.BaseURL == "":
		p.Addf("%s.base_url: required", where)
	case err != nil || base.Host == "" || base.User != nil || base.RawQuery != "" || base.Fragment != "":
		p.Addf("%s.base_url: %q is not a URL like https://api.vendor.com", where, u.BaseURL)
	case base.Scheme == "https":
	case base.Scheme == "http" && IsLoopbackHost(base.Hostname()):
	case base.Scheme == "http":
		p.Addf("%s.base_url: http is allowed only for loopback hosts; use https", where)
	default:
		p.Addf("%s.base_url: scheme %q is not https", where, base.Scheme)
	}
	u.Key.validate(where, true, p)
	if len(u.Routes) == 0 {
		p.Addf("%s.routes: at least one route is required (nothing else is forwarded)", where)
	}
	for i, r := range u.Routes {
		for _, m := range r.Methods {
			if !knownMethods[m] {
				p.Addf("%s.routes[%d].methods: %q is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", where, i, m)
			}
		}
		if len(r.Paths) == 0 {
			p.Addf("%s.routes[%d].paths: at least one path pattern is required", where, i)
		}
		for _, pat := range r.Paths {
			if err := ValidatePattern(pat); err != "" {
				p.Addf("%s.routes[%d].paths: %q %s", where, i, pat, err)
			}
		}
	}
	for h, v := range u.Headers {
		if h == "" || strings.ContainsAny(h, " \t\r\n:") || strings.ContainsAny(v, "\r\n\x00") {
			p.Addf("%s.headers: %q has an invalid name or value", where, h)
		}
	}
	if u.Timeout < 0 {
		p.Addf("%s.timeout: must not be negative", where)
	}
	if u.MaxResponseBytes < 0 {
		p.Addf("%s.max_response_bytes: must not be negative", where)
	}
}

// ValidatePattern returns "" when pat is a valid path pattern, else why not.
func ValidatePattern(pat string) string {
	if !strings.HasPrefix(pat, "/") {
		return "must start with /"
	}
	segs := strings.Split(pat[1:], "/")
	for i, s := range segs {
		switch {
		case s == "**" && i != len(segs)-1:
			return "may use ** only as the last segment"
		case s == "." || s == "..":
			return "must not contain . or .. segments"
		case s == "" && i != len(segs)-1:
			return "must not contain empty segments"
		case strings.ContainsAny(s, "%\\?#"):
			return "must not contain %, \\, ? or #"
		case s != "*" && s != "**" && strings.Contains(s, "*"):
			return "may use * only as a whole segment"
		}
	}
	return ""
}

// IsLoopbackHost reports whether host is localhost or a loopback address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
