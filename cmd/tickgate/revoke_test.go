package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRevokeUserCommand: `tickgate revoke-user NAME`, run by an operator
// against the shared Redis, ends the user's sessions on the running
// replicas: their sockets close with 4001 and the cookies stop working.
func TestRevokeUserCommand(t *testing.T) {
	insts, env := startReplicas(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := newBrowser(t, insts[0].url, &recorder{})
	login(t, a)
	onB := browserWithCookie(t, insts[1].url, a)
	waitA := watchClose(ctx, openFeed(ctx, t, a, "SPY"))
	waitB := watchClose(ctx, openFeed(ctx, t, onB, "SPY"))

	cli := map[string]string{"TICKGATE_ADMIN_ADDR": ""}
	for k, v := range env {
		cli[k] = v
	}
	began := time.Now()
	out, stderr, err := runWith(t, []string{"revoke-user", "demo"}, cli, "")
	if err != nil || out != "revoked 1 session(s) of user demo\n" {
		t.Fatalf("revoke-user: err=%v out=%q stderr=%q", err, out, stderr)
	}
	wantClosed4001(t, "socket on A", waitA, began)
	wantClosed4001(t, "socket on B", waitB, began)
	wantStatus(t, "cookie on A", a, http.MethodGet, "/auth/session", http.StatusUnauthorized)
	wantStatus(t, "cookie on B", onB, http.MethodGet, "/auth/session", http.StatusUnauthorized)

	out, _, err = runWith(t, []string{"revoke-user", "demo"}, cli, "")
	if err != nil || !strings.HasPrefix(out, "revoked 0 session(s)") {
		t.Fatalf("second revoke: err=%v out=%q", err, out)
	}
}

// TestRevokeUserCommandErrors: usage and the memory store are one clear
// line each.
func TestRevokeUserCommandErrors(t *testing.T) {
	t.Parallel()
	if _, _, err := runWith(t, []string{"revoke-user"}, map[string]string{}, ""); err == nil || err.Error() != "usage: tickgate revoke-user NAME" {
		t.Errorf("no name: %v", err)
	}
	_, stderr, err := runWith(t, []string{"revoke-user", "alice"}, map[string]string{}, "")
	if err == nil || !strings.Contains(stderr, "sessions are in the memory of the running server") {
		t.Errorf("memory store: err=%v stderr=%q", err, stderr)
	}
}
