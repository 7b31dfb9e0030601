package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tickgate/tickgate/config"
	"github.com/tickgate/tickgate/session"
)

// revokeUser ends every session of one user in the shared session store
// and tells every running replica to close that user's WebSockets (4001):
// what an operator runs after removing a user, changing their roles or
// suspecting a stolen cookie. With the memory store the sessions live in
// the server process, which this command cannot reach.
func revokeUser(ctx context.Context, env environment, name string, stdout, stderr io.Writer) error {
	s, err := config.FromEnv(env.lookup)
	if err != nil {
		return printProblems(stderr, err)
	}
	if s.SessionStore != "redis" {
		return printProblems(stderr, errors.New("revoke-user: sessions are in the memory of the running server (TICKGATE_SESSION_STORE=memory); restart it to end them all, or use TICKGATE_SESSION_STORE=redis"))
	}
	log, _, err := newLogger(s, stderr)
	if err != nil {
		return printProblems(stderr, err)
	}
	store, events, err := openStore(ctx, s, log)
	if err != nil {
		return printProblems(stderr, err)
	}
	defer store.Close()
	users, err := session.ParseUsers("")
	if err != nil {
		return err
	}
	m, err := session.NewManager(session.Config{Store: store, Events: events, Users: users, Logger: log, AllowedOrigins: s.PublicOrigins})
	if err != nil {
		return printProblems(stderr, err)
	}
	defer m.Close()
	n, err := m.RevokeUser(ctx, name)
	if err != nil {
		return printProblems(stderr, err)
	}
	fmt.Fprintf(stdout, "revoked %d session(s) of user %s\n", n, name)
	return nil
}
