package redisstore

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Revocation events: when a session ends on one replica (logout, revoke,
// DeleteUser), the others must close its WebSockets within seconds.
// Publish announces the session's key on the channel Prefix + "revoked"
// and every replica's Subscribe callback receives it. Redis pub/sub is
// at-most-once: a replica disconnected from Redis misses events, so the
// Manager's periodic check of watched sessions remains the backstop.

// Publish announces that the session stored under key has ended. It
// returns session.ErrInvalidArgument for a key that cannot name a record.
func (s *Store) Publish(ctx context.Context, key string) error {
	const op = "publish"
	if !validKey(key) {
		return invalid(op)
	}
	if s.closed.Load() {
		return errClosed(op)
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := s.client.Publish(ctx, s.channel, key).Err(); err != nil {
		return fail(op, err)
	}
	return nil
}

// subscription is one Subscribe call: a go-redis PubSub and the goroutine
// that hands its messages to the callback.
type subscription struct {
	ps      *redis.PubSub
	stopped atomic.Bool   // set before ps is closed; later messages are dropped
	done    chan struct{} // closed when the goroutine has returned
	once    sync.Once
}

// end closes the PubSub, which makes the goroutine return.
func (sub *subscription) end() {
	sub.once.Do(func() {
		sub.stopped.Store(true)
		_ = sub.ps.Close()
	})
}

// Subscribe calls fn with the key of every session announced by Publish,
// on any replica sharing the Redis server and Prefix, until stop is
// called, ctx is done or the Store is closed. fn runs on one goroutine
// owned by the subscription, one call at a time; it should return quickly
// and must not call stop (stop waits for that goroutine).
//
// Subscribe waits up to OpTimeout for Redis to confirm the subscription,
// so that events published after it returns normally arrive. If Redis
// does not answer, it logs a warning and returns anyway: the subscription
// keeps reconnecting in the background (go-redis pings it every few
// seconds and resubscribes after a failure). After Close, or with a ctx
// already done, it returns a no-op stop and fn is never called. stop is
// safe to call twice; call it (or cancel ctx and call it) to release the
// subscription.
func (s *Store) Subscribe(ctx context.Context, fn func(key string)) (stop func()) {
	if s.closed.Load() || ctx.Err() != nil {
		return func() {}
	}
	waitCtx, cancel := s.opCtx(ctx)
	ps := s.client.Subscribe(waitCtx, s.channel)
	// Any reply before the confirmation is impossible; an error means
	// Redis did not answer in time.
	if _, err := ps.Receive(waitCtx); err != nil {
		s.log.Warn("redisstore: subscribe: Redis has not confirmed the revocation channel yet; retrying in the background", "err", err)
	}
	cancel()

	sub := &subscription{ps: ps, done: make(chan struct{})}
	msgs := ps.Channel()
	go func() {
		defer close(sub.done)
		for msg := range msgs { // closed once ps is closed
			if !sub.stopped.Load() {
				fn(msg.Payload)
			}
		}
		if !sub.stopped.Load() {
			s.log.Warn("redisstore: subscribe: the Redis client was closed; revocation events no longer arrive")
		}
	}()
	stopCtx := context.AfterFunc(ctx, sub.end)

	s.mu.Lock()
	if s.closed.Load() { // Close ran meanwhile and did not see sub
		s.mu.Unlock()
		stopCtx()
		sub.end()
		<-sub.done
		return func() {}
	}
	s.subs[sub] = struct{}{}
	s.mu.Unlock()

	return func() {
		stopCtx()
		sub.end()
		<-sub.done
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}
}

// stopSubscriptions ends every subscription and waits for its goroutine.
// Close calls it after marking the Store closed, so none is added after.
func (s *Store) stopSubscriptions() {
	s.mu.Lock()
	subs := make([]*subscription, 0, len(s.subs))
	for sub := range s.subs {
		subs = append(subs, sub)
	}
	clear(s.subs)
	s.mu.Unlock()
	for _, sub := range subs {
		sub.end()
	}
	for _, sub := range subs {
		<-sub.done
	}
}
