#!/usr/bin/env bash
# Three tickgate replicas sharing one Redis and one marketsim that allows a
# single connection per key (-cap 1, refuse_new): exactly one replica holds
# the vendor connection and shares the data with the other two. Open the
# three URLs it prints, sign in as demo (the password is printed), and stop
# the replica named "feed owner" (kill PID): the other pages carry on.
#
#   scripts/replicas-demo.sh            # runs for 10 minutes, or until Ctrl-C
#   DEMO_SECONDS=60 scripts/replicas-demo.sh
#   REDIS_URL=redis://127.0.0.1:6379/0 scripts/replicas-demo.sh
#
# Needs go and a Redis (default redis://127.0.0.1:6379/0). Everything
# listens on 127.0.0.1 (ports 7070 and 8081-8083, override with
# DEMO_PORT_BASE=9000 for 9000 and 9001-9003), uses keys under a fresh
# prefix (deleted at the end), installs nothing and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

redis_url=${REDIS_URL:-redis://127.0.0.1:6379/0}
seconds=${DEMO_SECONDS:-600}
base=${DEMO_PORT_BASE:-}
sim_port=${base:-7070}
first_port=$(( ${base:-8080} + 1 ))
case "$seconds" in ''|*[!0-9]*) echo "replicas-demo.sh: DEMO_SECONDS must be a number of seconds" >&2; exit 2 ;; esac

command -v go >/dev/null || { echo "replicas-demo.sh: go is not on PATH" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/tickgate-replicas.XXXXXX")
pids=()
prefix="tickgate-demo-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n'):"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if command -v redis-cli >/dev/null; then
    redis-cli -u "$redis_url" --scan --pattern "${prefix}*" 2>/dev/null | while read -r k; do
      redis-cli -u "$redis_url" del "$k" >/dev/null 2>&1 || true
    done
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "# building tickgate and marketsim" >&2
go build -o "$dir/" ./cmd/tickgate ./cmd/marketsim
: >"$dir/empty.env"
key=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
password=$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')

"$dir/marketsim" -addr "127.0.0.1:$sim_port" -key "$key" -cap 1 -cap-policy refuse_new >"$dir/marketsim.log" 2>&1 &
pids+=($!)

for i in 1 2 3; do
  port=$(( first_port + i - 1 ))
  TICKGATE_ENV_FILE="$dir/empty.env" \
  TICKGATE_ADDR="127.0.0.1:$port" \
  TICKGATE_ADMIN_ADDR="127.0.0.1:0" \
  TICKGATE_DEMO_KEY="$key" \
  TICKGATE_DEMO_PASSWORD="$password" \
  TICKGATE_DEMO_VENDOR_URL="http://127.0.0.1:$sim_port" \
  TICKGATE_SESSION_STORE=redis \
  TICKGATE_LIMIT_STORE=redis \
  TICKGATE_REDIS_URL="$redis_url" \
  TICKGATE_REDIS_PREFIX="$prefix" \
  TICKGATE_LOG_FORMAT=json \
    "$dir/tickgate" >"$dir/replica$i.log" 2>&1 &
  pids+=($!)
done

sleep 2
for i in 1 2 3; do
  if ! kill -0 "${pids[$i]}" 2>/dev/null; then
    echo "replicas-demo.sh: replica $i did not start:" >&2
    tail -5 "$dir/replica$i.log" >&2
    exit 1
  fi
  echo "replica $i: http://127.0.0.1:$(( first_port + i - 1 ))/  (pid ${pids[$i]})"
done
echo "user demo, password $password (this run only)"
echo "Open one page per replica, sign in, subscribe; the feed owner is named below once a page subscribes: kill its pid."
echo "Stopping in ${seconds}s (Ctrl-C to stop now)."

owner=""
seen=()
end=$(( SECONDS + seconds ))
while [ "$SECONDS" -lt "$end" ]; do
  for i in 1 2 3; do
    if grep -q "feed lease taken" "$dir/replica$i.log" 2>/dev/null && [ "$owner" != "$i" ] && kill -0 "${pids[$i]}" 2>/dev/null; then
      last=$(grep "feed lease taken" "$dir/replica$i.log" | tail -1)
      if [ "${seen[$i]:-}" != "$last" ]; then
        seen[$i]=$last
        owner=$i
        echo "feed owner: replica $i (pid ${pids[$i]}) now holds the vendor connection"
      fi
    fi
  done
  sleep 1
done
