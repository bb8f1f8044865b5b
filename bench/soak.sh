#!/usr/bin/env bash
# Soak test (not part of `cargo test`): a release build on a fresh SQLite file,
# mixed traffic at a fixed rate for SOAK_MINUTES (default 10), per-minute
# errors, p99 and RSS. Exits non-zero on any 5xx, p99 drift or RSS growth, and
# when the server does not come up within SERVER_START_TIMEOUT (default 60 s)
# or dies during the run.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${SOAK_MINUTES:-10}
RATE=${SOAK_RATE:-2}   # journeys per second; 11 requests each
PORT=${PORT:-18090}
START_TIMEOUT=${SERVER_START_TIMEOUT:-60}
BASE="http://127.0.0.1:$PORT"
WORK=$(mktemp -d)
LOG="$WORK/server.log"
SERVER=""
LOG_SHOWN=""

show_log() {
  [ -n "$LOG_SHOWN" ] && return 0
  LOG_SHOWN=1
  if [ -s "$LOG" ]; then
    echo "---- last 40 lines of the server log ----" >&2
    tail -n 40 "$LOG" >&2
    echo "----" >&2
  fi
}

die() {
  echo "bench/soak.sh: FATAL: $*" >&2
  show_log
  exit 1
}

cleanup() {
  local status=$?
  if [ -n "$SERVER" ] && kill -0 "$SERVER" 2>/dev/null; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ]; then show_log; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Waits until the server we started answers /health; fails if it exits first
# or is not up within START_TIMEOUT seconds.
wait_for_server() {
  local deadline=$((SECONDS + START_TIMEOUT)) rc
  until curl -sf --max-time 2 "$BASE/health" >/dev/null; do
    if ! kill -0 "$SERVER" 2>/dev/null; then
      rc=0
      wait "$SERVER" || rc=$?
      SERVER=""
      die "the server exited (status $rc) before answering $BASE/health"
    fi
    if ((SECONDS >= deadline)); then
      die "the server did not answer $BASE/health within ${START_TIMEOUT}s"
    fi
    sleep 0.2
  done
  kill -0 "$SERVER" 2>/dev/null || die "the server exited; something else answers on port $PORT"
}

command -v curl >/dev/null || die "curl is missing: apt-get install curl"
cargo build --release --quiet --bin latchkey --example soak
for bin in target/release/latchkey target/release/examples/soak; do
  [ -x "$bin" ] || die "$bin was not built"
done
if curl -sf --max-time 2 "$BASE/health" >/dev/null; then
  die "something already answers on port $PORT; stop it or set PORT"
fi
BIND_ADDR="127.0.0.1:$PORT" DATABASE_URL="sqlite://$WORK/soak.db?mode=rwc" COOKIE_SECURE=false \
  JWT_SECRET="soak-secret-soak-secret-soak-secret-1" BCRYPT_COST=10 \
  LOGIN_RATE_PER_MINUTE=1000000 REGISTER_RATE_PER_MINUTE=1000000 REFRESH_RATE_PER_MINUTE=1000000 \
  RUST_LOG=warn target/release/latchkey serve >"$LOG" 2>&1 &
SERVER=$!
wait_for_server
# The soak runner reads the server's RSS through this PID.
target/release/examples/soak "$BASE" "$SERVER" "$MINUTES" "$RATE"
kill -0 "$SERVER" 2>/dev/null || die "the server died during the soak run"
