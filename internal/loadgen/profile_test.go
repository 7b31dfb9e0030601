package loadgen

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveProfile(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if r.URL.Path == "/debug/pprof/goroutine" {
			http.Error(w, "nope", http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte("profile-bytes"))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()

	file := filepath.Join(dir, "heap.pb.gz")
	if err := SaveProfile(context.Background(), srv.Client(), addr, "heap", file); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(got, []byte("profile-bytes")) {
		t.Fatalf("saved %q, %v", got, err)
	}
	if len(paths) != 1 || paths[0] != "/debug/pprof/heap" {
		t.Errorf("requested %v", paths)
	}

	err = SaveProfile(context.Background(), srv.Client(), addr, "goroutine", filepath.Join(dir, "g.pb.gz"))
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404 answer: err = %v", err)
	}
	if _, serr := os.Stat(filepath.Join(dir, "g.pb.gz")); serr == nil {
		t.Error("a failed fetch left a file")
	}
	cpu := filepath.Join(dir, "cpu.pb.gz")
	if err := SaveCPUProfile(context.Background(), srv.Client(), addr, 3, cpu); err != nil {
		t.Fatal(err)
	}
	if last := paths[len(paths)-1]; last != "/debug/pprof/profile" {
		t.Errorf("CPU profile requested %s", last)
	}
	for _, secs := range []int{0, -1, 26} {
		if err := SaveCPUProfile(context.Background(), srv.Client(), addr, secs, cpu); err == nil {
			t.Errorf("a CPU profile of %d seconds was accepted", secs)
		}
	}
	if err := SaveProfile(context.Background(), srv.Client(), addr, "profile", file); err == nil {
		t.Error("the timed CPU profile was accepted")
	}
	if err := SaveProfile(context.Background(), srv.Client(), "192.0.2.1:80", "heap", file); err == nil {
		t.Error("a non-loopback address was accepted")
	}
}
