package loadgen

import (
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of samples, which
// must be sorted ascending, by the nearest-rank method: the smallest
// sample that at least p percent of the samples are less than or equal
// to. It returns 0 for no samples; p outside (0, 100] is clamped.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if !(p > 0) { // also NaN
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	// rank = ceil(p/100 * n), 1-based; computed in integers where exact so
	// that 50 of 10 samples is the 5th, not the 6th through rounding.
	rank := int(p * float64(n) / 100)
	if float64(rank)*100 < p*float64(n) {
		rank++
	}
	rank = max(rank, 1)
	return sorted[rank-1]
}

// Summary is the distribution of a set of latency samples.
type Summary struct {
	Count int
	Mean  time.Duration
	P50   time.Duration
	P99   time.Duration
	Max   time.Duration
}

// Summarize sorts samples in place and summarizes them.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	return Summary{
		Count: len(samples),
		Mean:  sum / time.Duration(len(samples)),
		P50:   Percentile(samples, 50),
		P99:   Percentile(samples, 99),
		Max:   samples[len(samples)-1],
	}
}
