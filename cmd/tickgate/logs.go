package main

import (
	"io"
	"log/slog"
	"net/url"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/logging"
	"github.com/tickgate/tickgate/secrets"
)

// newLogger builds the one logger every package receives, and the
// Redactor behind it that the secrets cache and the demo password feed.
func newLogger(s config.Settings, w io.Writer) (*slog.Logger, *logging.Redactor, error) {
	red := logging.NewRedactor()
	log, err := logging.New(w, logging.Options{Format: s.LogFormat, Level: s.LogLevel, Redactor: red})
	if err != nil {
		return nil, nil, err
	}
	// The Redis URL may carry a password; the stores' errors may quote
	// the URL.
	if u, err := url.Parse(s.RedisURL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			red.Set("redis_password", pw)
		}
	}
	return log, red, nil
}

// revealAll is the text of every value, for the log scrubber only.
func revealAll(vs []secrets.Value) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.Reveal())
	}
	return out
}
