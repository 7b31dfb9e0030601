package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
)

// profileKinds are the snapshot profiles SaveProfile fetches; the timed
// CPU profile is SaveCPUProfile.
var profileKinds = map[string]bool{"heap": true, "goroutine": true, "allocs": true}

// maxCPUSeconds bounds a CPU profile's length (the load generators' HTTP
// client gives up after 30 s).
const maxCPUSeconds = 25

// maxProfile bounds a saved profile's size.
const maxProfile = 64 << 20

// SaveProfile fetches the named runtime profile (heap, goroutine or allocs)
// from the admin listener at addr (loopback only; /debug/pprof/KIND) and
// writes it, gzipped protobuf as served, to file for `go tool pprof`.
func SaveProfile(ctx context.Context, client *http.Client, addr, kind, file string) error {
	if !profileKinds[kind] {
		return fmt.Errorf("loadgen: profile %q is not heap, goroutine or allocs", kind)
	}
	return saveProfile(ctx, client, "http://"+addr+"/debug/pprof/"+kind, kind, file)
}

// SaveCPUProfile records seconds (1 to 25) of CPU profile from the admin
// listener at addr (loopback only; /debug/pprof/profile) into file. It
// returns when the profile is written: run the load meanwhile.
func SaveCPUProfile(ctx context.Context, client *http.Client, addr string, seconds int, file string) error {
	if seconds < 1 || seconds > maxCPUSeconds {
		return fmt.Errorf("loadgen: a CPU profile lasts 1 to %d seconds, not %d", maxCPUSeconds, seconds)
	}
	return saveProfile(ctx, client, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, seconds), "cpu", file)
}

func saveProfile(ctx context.Context, client *http.Client, url, kind, file string) error {
	if err := CheckLoopbackURL(url); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return errors.New("loadgen: building the profile request failed")
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("loadgen: profile: %s", describeError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("loadgen: profile %s answered %d", kind, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProfile+1))
	if err != nil {
		return fmt.Errorf("loadgen: profile: %s", describeError(err))
	}
	if len(body) > maxProfile {
		return fmt.Errorf("loadgen: profile %s is over %d bytes", kind, maxProfile)
	}
	if err := os.WriteFile(file, body, 0o600); err != nil {
		return fmt.Errorf("loadgen: saving profile: %w", err)
	}
	return nil
}
