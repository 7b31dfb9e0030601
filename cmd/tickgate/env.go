package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/joho/godotenv"
)

// environment is the real environment with a .env file underneath it: a
// variable set in the process always wins over the file, so a stale .env
// can never override a deployment's settings.
type environment struct {
	real    func(string) (string, bool)
	fromEnv map[string]string
}

func (e environment) lookup(name string) (string, bool) {
	if v, ok := e.real(name); ok {
		return v, true
	}
	v, ok := e.fromEnv[name]
	return v, ok
}

func (e environment) get(name string) string {
	v, _ := e.lookup(name)
	return v
}

// loadEnv reads TICKGATE_ENV_FILE (default .env in the working directory).
// A missing default .env is fine; a missing explicit file is an error.
func loadEnv(real func(string) (string, bool)) (environment, error) {
	path, explicit := real("TICKGATE_ENV_FILE")
	if !explicit || path == "" {
		path, explicit = ".env", false
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !explicit {
			return environment{real: real}, nil
		}
		return environment{}, fmt.Errorf("TICKGATE_ENV_FILE: %w", err)
	}
	defer f.Close()
	m, err := godotenv.Parse(f)
	if err != nil {
		// godotenv's messages can quote the offending line, which may hold
		// a secret; name the file only.
		return environment{}, fmt.Errorf("%s: not a valid .env file", path)
	}
	return environment{real: real, fromEnv: m}, nil
}
