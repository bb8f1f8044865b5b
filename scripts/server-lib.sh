# Shared by the scripts that start a Latchkey server of their own (bench/,
# fuzz/, tests/clients/): fail loudly, show the server's log, clean up.
# Source it from the repository root after setting:
#   SCRIPT (name for messages), BASE (http://127.0.0.1:PORT), LOG (server log
#   file), WORK (temporary directory, removed at exit), SERVER (the server's
#   pid, empty until started), START_TIMEOUT (seconds to wait for /health).
# Define `cleanup_extra` to do more at exit (it runs after the server stops).
# shellcheck shell=bash

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
  echo "$SCRIPT: FATAL: $*" >&2
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
  if declare -F cleanup_extra >/dev/null; then cleanup_extra; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Fails when something already answers on BASE: a stale server would pass
# every health check meant for ours.
require_free_port() {
  if curl -sf --max-time 2 "$BASE/health" >/dev/null; then
    die "something already answers on $BASE; stop it or set PORT"
  fi
}

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
  kill -0 "$SERVER" 2>/dev/null || die "the server exited; something else answers on $BASE"
}
