package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/guard"
	"github.com/tickgate/tickgate/guard/redislimit"
)

// limitPingTimeout bounds the start-up check that the rate-limit Redis
// answers.
const limitPingTimeout = 5 * time.Second

// openLimitStore returns the stores of the rate limits that
// TICKGATE_LIMIT_STORE names: nil (memory, per process) or the Redis
// backend on TICKGATE_REDIS_URL under TICKGATE_REDIS_PREFIX + "ratelimit:",
// so that every replica shares every limit. A Redis that does not answer
// at start-up is an error: limits silently kept per replica would
// multiply them by the number of replicas. close releases the backend;
// call it after the App is closed.
func openLimitStore(ctx context.Context, s config.Settings, log *slog.Logger) (stores guard.StoreFactory, close func(), err error) {
	if s.LimitStore != "redis" {
		return nil, func() {}, nil
	}
	b, err := redislimit.New(redislimit.Config{
		URL:    s.RedisURL,
		Prefix: s.RedisPrefix + "ratelimit:",
		Logger: log.With("component", "redislimit"),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("TICKGATE_REDIS_URL: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, limitPingTimeout)
	defer cancel()
	if err := b.Ping(pctx); err != nil {
		_ = b.Close()
		return nil, nil, fmt.Errorf("TICKGATE_REDIS_URL: rate-limit store (TICKGATE_LIMIT_STORE=redis) not answering: %w", err)
	}
	return b.Store, func() { _ = b.Close() }, nil
}

// checkGuard builds the guard section as serve would: the geo database
// is opened and read, every network rule and route limit compiled, and
// the rate-limit Redis (TICKGATE_LIMIT_STORE=redis) asked to answer. It
// returns every problem found, one line each.
func checkGuard(ctx context.Context, st *setup, log *slog.Logger) error {
	var problems config.Problems
	stores, closeStores, err := openLimitStore(ctx, st.settings, log)
	if err != nil {
		problems.Addf("%v", err)
		stores, closeStores = nil, func() {}
	}
	defer closeStores()
	g, err := guard.New(guard.Config{Rules: st.file.Guard, Stores: stores, Logger: log, GeoReload: -1})
	if err != nil {
		problems.Addf("%v", err)
		return problems.Err()
	}
	g.Close()
	return problems.Err()
}
