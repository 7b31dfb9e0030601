package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tickgate/tickgate/session"
)

// hashPassword reads one password line from stdin and prints its argon2id
// hash for TICKGATE_USERS.
func hashPassword(stdin io.Reader, stdout io.Writer) error {
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("hash-password: reading stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return errors.New("hash-password: no password on stdin (usage: echo -n 'secret' | tickgate hash-password)")
	}
	if len(pw) < 8 {
		return errors.New("hash-password: password shorter than 8 characters")
	}
	hash, err := session.HashPassword(pw)
	if err != nil {
		return fmt.Errorf("hash-password: %w", err)
	}
	fmt.Fprintln(stdout, hash)
	return nil
}
