package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// ClockTicks is the unit of utime and stime in /proc/<pid>/stat
// (USER_HZ, 100 on every Linux architecture Go supports).
const ClockTicks = 100

// ProcSample is a reading of one process's resource use.
type ProcSample struct {
	RSSKiB int64         // resident memory now (VmRSS)
	CPU    time.Duration // user plus system CPU time since the process started
	// RunqWait is the time the process's threads spent runnable but
	// waiting for a CPU, summed over the threads alive now
	// (/proc/<pid>/task/*/schedstat): on a shared machine, how much the
	// process was held back by others.
	RunqWait time.Duration
	At       time.Time // when the sample was taken
}

// ReadProc samples process pid from /proc.
func ReadProc(pid int) (ProcSample, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("loadgen: reading process status: %w", err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("loadgen: reading process stat: %w", err)
	}
	rss, err := ParseVmRSS(status)
	if err != nil {
		return ProcSample{}, err
	}
	ticks, err := ParseStatCPU(stat)
	if err != nil {
		return ProcSample{}, err
	}
	var wait int64
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended meanwhile
		}
		if _, w, err := ParseSchedstat(b); err == nil {
			wait += w
		}
	}
	return ProcSample{RSSKiB: rss, CPU: time.Duration(ticks) * time.Second / ClockTicks, RunqWait: time.Duration(wait), At: time.Now()}, nil
}

// RunqWaitPercent is the run-queue wait between two samples, in percent
// of the wall time (100 means one thread was kept waiting all along).
func RunqWaitPercent(from, to ProcSample) float64 {
	wall := to.At.Sub(from.At)
	if wall <= 0 || to.RunqWait < from.RunqWait {
		return 0
	}
	return 100 * float64(to.RunqWait-from.RunqWait) / float64(wall)
}

// ParseSchedstat returns the time on CPU and the time waiting on a run
// queue, in nanoseconds, of a /proc/<pid>/task/<tid>/schedstat file
// ("<on-cpu ns> <run-queue wait ns> <timeslices>").
func ParseSchedstat(b []byte) (run, wait int64, err error) {
	f := bytes.Fields(b)
	if len(f) != 3 {
		return 0, 0, errors.New("loadgen: schedstat is not three numbers")
	}
	run, err1 := strconv.ParseInt(string(f[0]), 10, 64)
	wait, err2 := strconv.ParseInt(string(f[1]), 10, 64)
	if err1 != nil || err2 != nil || run < 0 || wait < 0 {
		return 0, 0, errors.New("loadgen: schedstat is not three numbers")
	}
	return run, wait, nil
}

// CPUPercent is the CPU used between two samples of a process, in percent
// of one core (200 means two cores busy).
func CPUPercent(from, to ProcSample) float64 {
	wall := to.At.Sub(from.At)
	if wall <= 0 {
		return 0
	}
	return 100 * float64(to.CPU-from.CPU) / float64(wall)
}

// ParseVmRSS returns the VmRSS value, in KiB, of a /proc/<pid>/status
// file.
func ParseVmRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, errors.New("loadgen: VmRSS line is not \"VmRSS: <n> kB\"")
		}
		n, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || n < 0 {
			return 0, errors.New("loadgen: VmRSS value is not a whole number")
		}
		return n, nil
	}
	return 0, errors.New("loadgen: no VmRSS line in process status")
}

// ParseStatCPU returns utime+stime, in clock ticks, of a /proc/<pid>/stat
// file. The command name (field 2) is in parentheses and may itself hold
// spaces and parentheses, so fields are counted from the last ')'.
func ParseStatCPU(stat []byte) (int64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("loadgen: process stat has no command name")
	}
	// After ')' come field 3 (state) onwards; utime and stime are fields
	// 14 and 15, so indexes 11 and 12 here.
	f := bytes.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, errors.New("loadgen: process stat has too few fields")
	}
	var sum int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil || n < 0 {
			return 0, errors.New("loadgen: process stat utime/stime is not a whole number")
		}
		sum += n
	}
	return sum, nil
}
