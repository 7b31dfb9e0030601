package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/internal/redisconn"
	"github.com/tickgate/tickgate/relay"
)

// openFeedSharing returns how the feeds' upstream connections are shared
// with the other replicas: nil (each process connects on its own) unless
// TICKGATE_SESSION_STORE=redis, which means several replicas; then one
// replica per feed holds the vendor connection under a lease in Redis on
// TICKGATE_REDIS_URL, under TICKGATE_REDIS_PREFIX + "feed:". A Redis that
// does not answer at start-up is an error. close releases the client;
// call it after the App is closed.
func openFeedSharing(ctx context.Context, s config.Settings, log *slog.Logger) (sh *relay.Sharing, close func(), err error) {
	if s.SessionStore != "redis" {
		return nil, func() {}, nil
	}
	conn, err := redisconn.New("feed sharing", s.RedisURL, nil, limitPingTimeout, log)
	if err != nil {
		return nil, nil, fmt.Errorf("TICKGATE_REDIS_URL: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("TICKGATE_REDIS_URL: %w", err)
	}
	log.Info("feeds shared with the other replicas through Redis")
	return &relay.Sharing{Client: conn.Client, Prefix: s.RedisPrefix + "feed:"}, func() { _ = conn.Close() }, nil
}
