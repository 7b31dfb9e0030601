#!/usr/bin/env bash
# Regenerates the README's picture of the demo page (docs/screenshot.png, or
# the file named by $1) from the browser test that drives the real server,
# TestBrowserDemo, at the moment it has signed in, looked up a quote and
# seen live prices move. Needs Chromium, like the test (TICKGATE_TEST_CHROMIUM
# or /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-docs/screenshot.png}"
case "$out" in
  /*) ;;
  *) out="$PWD/$out" ;;
esac
mkdir -p "$(dirname "$out")"
rm -f "$out"

# go test runs in the package's directory, hence the absolute path.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! TICKGATE_SCREENSHOT="$out" go test -count=1 -run '^TestBrowserDemo$' -v ./cmd/tickgate >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
grep -E '^(--- |ok)|wrote |SKIP' "$log" || true

if [ ! -s "$out" ]; then
  echo "screenshot.sh: no screenshot was written (did the test skip for want of Chromium?)" >&2
  exit 1
fi
echo "wrote $out"
