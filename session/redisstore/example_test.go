package redisstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/tickgate/tickgate/session"
	"github.com/tickgate/tickgate/session/redisstore"
)

// The examples need a Redis server, so they are compiled but not run.

func ExampleNew() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	st, err := redisstore.New(redisstore.Config{
		URL:       "redis://127.0.0.1:6379/0",
		OpTimeout: 300 * time.Millisecond, // a store outage answers 503 within this
		Logger:    logger,
	})
	if err != nil {
		logger.Error("session store", "err", err)
		return
	}
	defer st.Close()

	ctx := context.Background()
	if err := st.Ping(ctx); err != nil {
		logger.Warn("session store not ready", "err", err) // /readyz says 503
	}
	now := time.Now()
	rec := session.Record{
		Key:       "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", // SHA-256 of the session id
		User:      "alice",
		CreatedAt: now,
		LastSeen:  now,
		ExpiresAt: now.Add(12 * time.Hour),
	}
	if err := st.Create(ctx, rec, 30*time.Minute); err != nil {
		logger.Error("login", "err", err)
	}
}

func ExampleStore_DeleteUser() {
	st, err := redisstore.New(redisstore.Config{URL: "redis://127.0.0.1:6379/0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	ctx := context.Background()

	// Log alice out everywhere, and tell every replica to close her
	// WebSockets.
	keys, err := st.DeleteUser(ctx, "alice")
	for _, key := range keys {
		_ = st.Publish(ctx, key)
	}
	if err != nil {
		fmt.Println(err)
	}
}

func ExampleStore_Subscribe() {
	st, err := redisstore.New(redisstore.Config{URL: "redis://127.0.0.1:6379/0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()

	ended := make(chan string, 64)
	stop := st.Subscribe(context.Background(), func(key string) {
		select {
		case ended <- key: // the Manager closes this session's WebSockets
		default: // never block the subscription; the periodic check catches up
		}
	})
	defer stop()
}
