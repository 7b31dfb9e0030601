package redisstore

import "errors"

var (
	// ErrInvalidConfig is wrapped by New's validation errors.
	ErrInvalidConfig = errors.New("redisstore: invalid config")
	// ErrMalformedRecord: the value stored under a session key is not a
	// record this package wrote (a hash with fields u, c, l and e). Get
	// returns it wrapped; GetMany leaves such keys out of its result.
	ErrMalformedRecord = errors.New("malformed session record")
)

// errTimeSyntax: a stored time is not what appendTime writes.
var errTimeSyntax = errors.New("time: want decimal Unix seconds")
