#!/usr/bin/env bash
# Over the wire: `GET /me` on the release build of the `login` example, with wrk.
#
#   benches/wrk_login.sh            # memory, then Redis (a private redis-server on a free port)
#   WRK_ARGS="-t2 -c64 -d10s" benches/wrk_login.sh
#   BIN=/tmp/login-old benches/wrk_login.sh   # another build, e.g. an older commit's, to compare
#
# Each run starts the service with its accounts in a fresh SQLite file, signs one user up, logs
# in, and points wrk at `/me` with that session's cookie: every request verifies the cookie,
# loads the session and writes nothing. Needs wrk, curl, python3 (for a free port) and
# redis-server (`apt-get install wrk curl redis-server`). Only loopback addresses are used.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/examples/login}
WRK_ARGS=${WRK_ARGS:--t2 -c64 -d10s}
[ -x "$BIN" ] || cargo build --release -p latchkey-examples --example login
for tool in wrk curl python3 redis-server; do
  command -v "$tool" >/dev/null || { echo "wrk_login.sh needs $tool (apt-get install $tool)" >&2; exit 1; }
done

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # url
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}

run() { # label [redis-url]
  local label=$1 redis=${2:-} port base cookie
  port=$(free_port)
  base="http://127.0.0.1:$port"
  if [ -n "$redis" ]; then
    PORT=$port DATABASE_URL="$tmp/$label.db" REDIS_URL="$redis" RUST_LOG=warn "$BIN" >"$tmp/$label.log" 2>&1 &
  else
    PORT=$port DATABASE_URL="$tmp/$label.db" RUST_LOG=warn "$BIN" >"$tmp/$label.log" 2>&1 &
  fi
  pids+=($!)
  wait_for "$base/health"
  local body='{"id":"wrkuser01","password":"s3cret!pw"}'
  curl -fs -o /dev/null -X POST -H 'content-type: application/json' -d "$body" "$base/signup"
  cookie=$(curl -fs -D - -o /dev/null -X POST -H 'content-type: application/json' -d "$body" "$base/login" \
    | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p')
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$base/me")" = 200 ]
  echo "== $label: wrk $WRK_ARGS --latency GET /me ($(curl -s "$base/health"))"
  # shellcheck disable=SC2086
  wrk $WRK_ARGS --latency -H "Cookie: $cookie" "$base/me"
}

run memory

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
run redis "redis://127.0.0.1:$redis_port/0"
