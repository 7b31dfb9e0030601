package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// ParseMetrics returns the value of each named series of a Prometheus
// text exposition, summed over its label sets; names absent from text
// are absent from the map. Comment lines and malformed lines are skipped.
func ParseMetrics(text []byte, names ...string) map[string]float64 {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	for line := range bytes.Lines(text) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		end := bytes.IndexAny(line, "{ ")
		if end <= 0 {
			continue
		}
		name := string(line[:end])
		if !want[name] {
			continue
		}
		rest := line[end:]
		if rest[0] == '{' {
			j := bytes.LastIndexByte(rest, '}')
			if j < 0 {
				continue
			}
			rest = rest[j+1:]
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(string(f[0]), 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out
}

// ScrapeMetrics reads http://addr/metrics (a loopback admin listener) and
// returns the named series, as ParseMetrics.
func ScrapeMetrics(ctx context.Context, client *http.Client, addr string, names ...string) (map[string]float64, error) {
	url := "http://" + addr + "/metrics"
	if err := CheckLoopbackURL(url); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, errors.New("loadgen: building the metrics request failed")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("loadgen: metrics: %s", describeError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("loadgen: metrics: %s", describeError(err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("loadgen: metrics answered %d", resp.StatusCode)
	}
	return ParseMetrics(body, names...), nil
}
