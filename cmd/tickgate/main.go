// Command tickgate is the backend-for-frontend that keeps market-data
// vendor keys on the server. With no TICKGATE_CONFIG it runs in demo mode
// against an in-process simulated vendor.
//
//	go run ./cmd/tickgate                  # serve (demo mode by default)
//	go run ./cmd/tickgate check-config     # validate settings and secrets
//	go run ./cmd/tickgate hash-password    # argon2id hash for TICKGATE_USERS
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

func main() {
	// go-redis prints its own dial failures to stderr, outside the
	// structured log and ahead of tickgate's one-line start-up errors;
	// the stores report the same failures through the logger.
	redis.SetLogger(quietRedis{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintln(os.Stderr, "tickgate: "+oneLine(err))
		}
		os.Exit(1)
	}
}

// quietRedis discards go-redis's internal log lines.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// errReported means the problems were already printed, one per line.
var errReported = errors.New("reported")

func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

// run is the whole program, so tests can run it with their own
// environment and output.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	if cmd == "revoke-user" {
		if len(args) != 1 || args[0] == "" {
			return errors.New("usage: tickgate revoke-user NAME")
		}
		env, err := loadEnv(lookupEnv)
		if err != nil {
			return err
		}
		return revokeUser(ctx, env, args[0], stdout, stderr)
	}
	if len(args) > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", cmd, args)
	}
	switch cmd {
	case "serve":
		env, err := loadEnv(lookupEnv)
		if err != nil {
			return err
		}
		return serve(ctx, env, stderr)
	case "check-config":
		env, err := loadEnv(lookupEnv)
		if err != nil {
			return err
		}
		return checkConfig(ctx, env, stdout, stderr)
	case "hash-password":
		return hashPassword(stdin, stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, "usage: tickgate [serve | check-config | hash-password | revoke-user NAME]")
		return nil
	default:
		return fmt.Errorf("unknown command %q (want serve, check-config, hash-password or revoke-user)", cmd)
	}
}
