package frontend

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestAppJSUnit runs testdata/app.test.mjs, the unit tests of app.js's pure
// helpers, with node's built-in test runner. It is skipped where node is not
// installed: the Go tests and the browser tests still cover the page.
func TestAppJSUnit(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed; skipping app.js unit tests")
	}
	dir := t.TempDir()
	// app.js is an ES module; node decides by extension, so copy it as .mjs.
	if err := os.WriteFile(filepath.Join(dir, "app.mjs"), readStatic(t, "app.js"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join("testdata", "app.test.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.test.mjs"), src, 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "app.test.mjs")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
}
