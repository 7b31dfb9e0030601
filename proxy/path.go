package proxy

import (
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tickgate/tickgate/config"
)

// maxPathBytes bounds the escaped path after /api/{upstream}.
const maxPathBytes = 2048

// checkPath validates the escaped request path that follows
// /api/{upstream} and returns it decoded. It decodes first, then checks
// the decoded path, so that an encoding cannot smuggle a separator or a
// dot segment past the allowlist: the vendor sees exactly the segments the
// route patterns were matched against.
//
// Refused (reason returned, for the debug log): an empty or relative
// path, more than maxPathBytes, encoded slash or backslash (%2f, %5c),
// encoded dots (%2e), double encoding (%25), a bad escape, "." or ".."
// segments, empty segments (a trailing slash is allowed and must then be
// in the pattern), backslashes, semicolons (path parameters, as in the
// "..;/" bypass of some Java servers), control characters and invalid
// UTF-8.
//
// A path accepted here needs no cleaning: path.Clean would change nothing
// but a trailing slash.
func checkPath(escaped string) (decoded, reason string) {
	if escaped == "" || escaped[0] != '/' {
		return "", "path must start with /"
	}
	if len(escaped) > maxPathBytes {
		return "", "path too long"
	}
	for i := 0; i < len(escaped); i++ {
		switch c := escaped[i]; {
		case c == '\\':
			return "", "backslash"
		case c == ';':
			return "", "semicolon"
		case c < 0x20 || c == 0x7f:
			return "", "control character"
		case c == '%':
			if i+2 >= len(escaped) {
				return "", "bad escape"
			}
			switch strings.ToLower(escaped[i+1 : i+3]) {
			case "2f", "5c":
				return "", "encoded separator"
			case "2e":
				return "", "encoded dot"
			case "25":
				return "", "double encoding"
			}
		}
	}
	decoded, err := url.PathUnescape(escaped)
	if err != nil {
		return "", "bad escape"
	}
	if !utf8.ValidString(decoded) {
		return "", "invalid UTF-8"
	}
	for i := 0; i < len(decoded); i++ {
		if c := decoded[i]; c < 0x20 || c == 0x7f || c == '\\' || c == ';' || c == '%' {
			return "", "forbidden character"
		}
	}
	rest := decoded[1:]
	for {
		seg, after, more := strings.Cut(rest, "/")
		switch {
		case seg == "." || seg == "..":
			return "", "dot segment"
		case seg == "" && more:
			return "", "empty segment"
		}
		if !more {
			return decoded, ""
		}
		rest = after
	}
}

// route is one config.Route compiled: patterns split into segments.
type route struct {
	methods  []string
	patterns [][]string
	cacheTTL time.Duration // -1: the upstream's
	maxBody  int64         // largest request body of methods other than GET and HEAD
}

func compilePattern(p string) []string { return strings.Split(p[1:], "/") }

// matchPattern reports whether the decoded, checked path matches pat
// (config.MatchSegments: the rules routes and roles share).
func matchPattern(pat []string, path string) bool { return config.MatchSegments(pat, path) }

// matchRoute reports whether method may reach path. When the path is open
// to other methods only, allow lists them (for 405 and its Allow header);
// when no pattern matches, allow is nil.
func matchRoute(routes []route, method, path string) (ok bool, allow []string) {
	r, allow := findRoute(routes, method, path)
	return r != nil, allow
}

// findRoute is matchRoute returning the first route that lets method
// reach path.
func findRoute(routes []route, method, path string) (*route, []string) {
	var allow []string
	for i := range routes {
		r := &routes[i]
		matched := false
		for _, pat := range r.patterns {
			if matchPattern(pat, path) {
				matched = true
				break
			}
		}
		if !matched {
			continue
		}
		for _, m := range r.methods {
			if m == method {
				return r, nil
			}
			if !contains(allow, m) {
				allow = append(allow, m)
			}
		}
	}
	return nil, allow
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
