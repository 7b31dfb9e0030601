package loadgen

import (
	"math"
	"testing"
	"time"
)

func ms(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, v := range n {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	ten := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	cases := []struct {
		name string
		s    []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", ms(7), 99, 7 * time.Millisecond},
		{"p50 of 10 is the 5th", ten, 50, 5 * time.Millisecond},
		{"p99 of 10 is the 10th", ten, 99, 10 * time.Millisecond},
		{"p10 of 10 is the 1st", ten, 10, 1 * time.Millisecond},
		{"p11 of 10 is the 2nd", ten, 11, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", hundred, 99, 99 * time.Millisecond},
		{"p99.9 of 100 is the 100th", hundred, 99.9, 100 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"above 100 clamps", hundred, 150, 100 * time.Millisecond},
		{"0 clamps to the min", hundred, 0, 1 * time.Millisecond},
		{"NaN clamps to the min", hundred, math.NaN(), 1 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Percentile(c.s, c.p); got != c.want {
				t.Errorf("Percentile(%d samples, %v) = %v, want %v", len(c.s), c.p, got, c.want)
			}
		})
	}
}

func TestSummarizeSortsAndSummarizes(t *testing.T) {
	s := Summarize(ms(9, 1, 5, 3, 7))
	want := Summary{Count: 5, Mean: 5 * time.Millisecond, P50: 5 * time.Millisecond, P99: 9 * time.Millisecond, Max: 9 * time.Millisecond}
	if s != want {
		t.Errorf("Summarize = %+v, want %+v", s, want)
	}
	if (Summarize(nil) != Summary{}) {
		t.Error("Summarize(nil) is not the zero Summary")
	}
}

func TestRESTResultAddAndThroughput(t *testing.T) {
	var r RESTResult
	if r.Throughput() != 0 {
		t.Errorf("zero result throughput = %v, want 0", r.Throughput())
	}
	r.Add(RESTResult{Requests: 100, Elapsed: time.Second, Latencies: ms(1, 2)})
	r.Add(RESTResult{Requests: 300, Errors: 2, Elapsed: time.Second, Latencies: ms(3), FirstError: "status 502"})
	r.Add(RESTResult{FirstError: "later"})
	if r.Requests != 400 || r.Errors != 2 || len(r.Latencies) != 3 || r.FirstError != "status 502" {
		t.Errorf("Add merged to %+v", r)
	}
	if got := r.Throughput(); got != 200 {
		t.Errorf("Throughput = %v, want 200 (400 requests in 2s)", got)
	}
}
