package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestStartProcWaitsForItsURL(t *testing.T) {
	script := `echo starting; echo '{"msg":"tickgate started","admin_addr":"127.0.0.1:9999"}'; echo "tickgate: open http://127.0.0.1:4321/" >&2; exec sleep 30`
	p, u, err := startProc(context.Background(), "fake", "/bin/sh", []string{"-c", script}, nil, t.TempDir(), "tickgate: open ")
	if err != nil {
		t.Fatal(err)
	}
	if u != "http://127.0.0.1:4321" {
		t.Errorf("URL = %q", u)
	}
	for deadline := time.Now().Add(5 * time.Second); p.adminAddr() == "" && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := p.adminAddr(); got != "127.0.0.1:9999" {
		t.Errorf("admin address = %q", got)
	}
	if err := p.alive(); err != nil {
		t.Errorf("alive: %v", err)
	}
	p.stop()
	if p.alive() == nil {
		t.Error("still alive after stop")
	}
	p.stop() // twice is fine
}

func TestStartProcReportsAnEarlyExit(t *testing.T) {
	_, _, err := startProc(context.Background(), "fake", "/bin/sh", []string{"-c", "echo 'tickgate: TICKGATE_CONFIG: no such file' >&2; exit 1"}, nil, t.TempDir(), "tickgate: open ")
	if err == nil || !strings.Contains(err.Error(), "no such file") || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("err = %v, want the exit and the process's last line", err)
	}
	if _, _, err := startProc(context.Background(), "fake", "/nonexistent/binary", nil, nil, t.TempDir(), "x"); err == nil {
		t.Error("a missing binary started")
	}
}
