package loadgen

import "testing"

func TestParseMetrics(t *testing.T) {
	text := []byte(`# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 3021
go_memstats_heap_inuse_bytes 1.2345e+07
tickgate_upstream_ws_connections{feed="a"} 1
tickgate_upstream_ws_connections{feed="b,c} x"} 2
tickgate_ws_clients_total 99
broken_line
go_threads not-a-number
`)
	got := ParseMetrics(text, "go_goroutines", "go_memstats_heap_inuse_bytes", "tickgate_upstream_ws_connections", "go_threads", "absent")
	want := map[string]float64{"go_goroutines": 3021, "go_memstats_heap_inuse_bytes": 12345000, "tickgate_upstream_ws_connections": 3}
	if len(got) != len(want) {
		t.Fatalf("ParseMetrics = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
