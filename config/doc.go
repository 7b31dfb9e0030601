// Package config reads tickgate's settings and validates them with one
// clear message per problem.
//
// # Settings
//
// Deployment settings come from environment variables (contract table in
// DESIGN 1.3). [FromEnv] takes a getenv function, so cmd/tickgate stays the
// only reader of the process environment and tests pass a map.
//
// # File
//
// Upstreams, feeds and limits come from a strict YAML file: an unknown key
// is an error, and ${NAME} is expanded from the environment before parsing.
// [Demo] builds the same structure for demo mode.
//
// Secret values are never part of a config: a config names secrets, and the
// secrets package reads them.
package config
