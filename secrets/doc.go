// Package secrets loads vendor keys and other secret values and keeps them
// out of every log line, error and response.
//
// # Values
//
// A secret is a [Value]. Its String, GoString, Format, MarshalJSON, MarshalText
// and LogValue all print "[redacted]"; only [Value.Reveal] gives the text, and
// only the code that puts the key on the wire calls it.
//
// # Providers
//
// A [Provider] reads one named secret. [Env] reads the process environment
// (after .env has been loaded by cmd/tickgate). The AWS Secrets Manager
// provider lives in secrets/awssm so that only that package imports the AWS
// SDK.
//
// # Cache
//
// A [Cache] sits in front of a provider: it loads the referenced secrets at
// start-up (failing with the secret's name, never its value), refreshes them
// periodically, keeps the last good value when a refresh fails, and re-reads a
// secret on [Cache.Invalidate], single-flighted, when a vendor rejects a key.
package secrets
