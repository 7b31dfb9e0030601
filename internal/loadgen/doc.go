// Package loadgen is the load generator behind scripts/bench.sh: a
// closed-loop HTTP request loop with exact latency percentiles, simulated
// browsers on tickgate's WebSocket relay (login, cookie, Origin,
// subscribe, tick-to-browser latency from the vendor's event timestamps,
// loss against a reference subscriber), and readers of /proc for the
// resident memory and CPU time of the processes under test.
//
// It is a test tool. It targets loopback addresses only (every entry
// point refuses another host), and every run is bounded in connections
// and time.
//
// # REST
//
// RunREST sends requests from a fixed number of workers, each waiting
// for its answer before sending the next, for a fixed time. Every answer
// that is not 200 is an error; only its status code is kept, never its
// body (a vendor's 401 body can echo the key).
//
// # WebSocket
//
// Browsers (see DialBrowsers) each hold their own session cookie, send the
// Origin a browser would, wait for tickgate's "ready" message, subscribe
// to their symbols and count the vendor events they receive, per symbol,
// inside a measurement window chosen by event timestamp. A Reference
// subscriber connected straight to the simulated vendor counts the events
// the vendor published in the same window; the difference is what the
// relay lost.
//
// # Process figures
//
// ReadProc reads VmRSS from /proc/<pid>/status and utime+stime from
// /proc/<pid>/stat (Linux only).
package loadgen
