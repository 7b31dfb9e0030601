#!/usr/bin/env bash
# Loopback benchmarks of tickgate (DESIGN section 8). Prints one
# "name: value" line per figure on stdout, the machine's core count first;
# progress and anything skipped go to stderr as "# ..." lines.
#
#   scripts/bench.sh            # full run: 3 REST rounds, 10,000 browsers, then 5,000 at 100,000 events/s (about 5 minutes)
#   scripts/bench.sh --quick    # about a minute: 1 REST round, 1,000 browsers
#   scripts/bench.sh --quick -ws-clients 2000   # any further flag goes to tickgate-bench (-h lists them)
#   scripts/bench.sh -profile-dir DIR           # (an existing directory) also save tickgate's pprof profiles (BENCHMARKS.md)
#
# It builds cmd/tickgate, cmd/marketsim and cmd/tickgate-bench into a
# temporary directory and installs nothing. nginx is compared only when
# `command -v nginx` finds it (Debian: apt-get install nginx-light).
# Everything listens on 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

args=()
for a in "$@"; do
  case "$a" in
    --quick) args+=(-quick) ;;
    -h|--help) args+=(-h) ;;
    *) args+=("$a") ;;
  esac
done

command -v go >/dev/null || { echo "bench.sh: go is not on PATH" >&2; exit 1; }

# 10,000 browsers need about as many descriptors in tickgate and in the
# load generator (each its own process): raise the soft limit as far as
# the hard limit allows.
hard=$(ulimit -Hn)
want=65536
if [ "$hard" != "unlimited" ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -n "$want" 2>/dev/null || echo "# could not raise the open-files limit (now $(ulimit -n))" >&2

bin=$(mktemp -d "${TMPDIR:-/tmp}/tickgate-bench-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
echo "# building tickgate, marketsim and tickgate-bench" >&2
go build -o "$bin/" ./cmd/tickgate ./cmd/marketsim ./cmd/tickgate-bench

nginx_bin=$(command -v nginx || true)
if [ -z "$nginx_bin" ] && [ -x /usr/sbin/nginx ]; then nginx_bin=/usr/sbin/nginx; fi

"$bin/tickgate-bench" -tickgate "$bin/tickgate" -marketsim "$bin/marketsim" -nginx "$nginx_bin" "${args[@]}"
