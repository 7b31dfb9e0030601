package loadgen

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseVmRSS(t *testing.T) {
	status := []byte("Name:\ttickgate\nVmPeak:\t  900000 kB\nVmRSS:\t   12345 kB\nThreads:\t7\n")
	got, err := ParseVmRSS(status)
	if err != nil || got != 12345 {
		t.Fatalf("ParseVmRSS = %d, %v; want 12345", got, err)
	}
	for name, bad := range map[string]string{
		"no line":    "Name:\tx\n",
		"no unit":    "VmRSS:\t12345\n",
		"other unit": "VmRSS:\t12345 MB\n",
		"not number": "VmRSS:\tlots kB\n",
		"negative":   "VmRSS:\t-5 kB\n",
	} {
		if _, err := ParseVmRSS([]byte(bad)); err == nil {
			t.Errorf("%s: ParseVmRSS(%q) succeeded, want an error", name, bad)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a ')' must not shift the fields:
	// utime (14) = 250, stime (15) = 50.
	stat := []byte("4242 (tick gate) (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 100 2000000 3000 18446744073709551615\n")
	got, err := ParseStatCPU(stat)
	if err != nil || got != 300 {
		t.Fatalf("ParseStatCPU = %d, %v; want 300", got, err)
	}
	for name, bad := range map[string]string{
		"no name":        "4242 S 1 2 3",
		"too few fields": "4242 (x) S 1 2 3 4 5 6 7 8 9 10",
		"not a number":   "4242 (x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 abc 50 0",
	} {
		if _, err := ParseStatCPU([]byte(bad)); err == nil {
			t.Errorf("%s: ParseStatCPU succeeded, want an error", name)
		}
	}
}

func TestReadProcOfThisProcess(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("no /proc here")
	}
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSKiB <= 0 {
		t.Errorf("RSS of a running test = %d KiB, want > 0", s.RSSKiB)
	}
	if _, err := ReadProc(-1); err == nil {
		t.Error("ReadProc(-1) succeeded, want an error")
	}
}

func TestCPUPercent(t *testing.T) {
	t0 := time.Unix(100, 0)
	a := ProcSample{CPU: time.Second, At: t0}
	b := ProcSample{CPU: 4 * time.Second, At: t0.Add(2 * time.Second)}
	if got := CPUPercent(a, b); got != 150 {
		t.Errorf("3s of CPU in 2s = %v%%, want 150", got)
	}
	if got := CPUPercent(b, b); got != 0 {
		t.Errorf("no time passed = %v%%, want 0", got)
	}
}

func TestParseSchedstat(t *testing.T) {
	run, wait, err := ParseSchedstat([]byte("123456789 5000 42\n"))
	if err != nil || run != 123456789 || wait != 5000 {
		t.Fatalf("ParseSchedstat = %d, %d, %v", run, wait, err)
	}
	for _, bad := range []string{"", "1 2", "1 2 3 4", "a 2 3", "1 -2 3"} {
		if _, _, err := ParseSchedstat([]byte(bad)); err == nil {
			t.Errorf("ParseSchedstat(%q) succeeded, want an error", bad)
		}
	}
}

func TestRunqWaitPercent(t *testing.T) {
	t0 := time.Unix(100, 0)
	a := ProcSample{RunqWait: time.Second, At: t0}
	b := ProcSample{RunqWait: 2 * time.Second, At: t0.Add(4 * time.Second)}
	if got := RunqWaitPercent(a, b); got != 25 {
		t.Errorf("1s waiting in 4s = %v%%, want 25", got)
	}
	if got := RunqWaitPercent(b, a); got != 0 {
		t.Errorf("backwards = %v%%, want 0", got)
	}
}
