#!/usr/bin/env bash
# `GET /auth/me` under each way of running it, one after the other in the same
# session, so the figures compare: quiet (RUST_LOG=warn, no metrics), with a
# JSON log line per request and Prometheus metrics on, and with access tokens
# signed by EdDSA and ES256 key pairs instead of HS256. Needs a release build
# and wrk:   cargo build --release && bench/me_variants.sh
# DURATION (default 10s), CONNECTIONS (default 64), VARIANTS (default all).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
VARIANTS=${VARIANTS:-"quiet logs+metrics eddsa es256"}
BIN=${LATCHKEY_BIN:-target/release/latchkey}
PORT=${PORT:-18081}
START_TIMEOUT=60
BASE="http://127.0.0.1:$PORT"
WORK=$(mktemp -d)
LOG="$WORK/server.log"
SERVER=""
SCRIPT=bench/me_variants.sh
# shellcheck source=scripts/server-lib.sh
source scripts/server-lib.sh
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
[ -x "$BIN" ] || die "$BIN is missing: cargo build --release"

settings() { # variant -> the settings that make it
  case $1 in
    quiet) echo "RUST_LOG=warn" ;;
    logs+metrics) echo "RUST_LOG=info LOG_FORMAT=json METRICS_ADDR=127.0.0.1:$((PORT + 1))" ;;
    eddsa) echo "RUST_LOG=warn JWT_ALGORITHM=EdDSA" ;;
    es256) echo "RUST_LOG=warn JWT_ALGORITHM=ES256" ;;
    *) die "unknown variant $1" ;;
  esac
}

echo "GET /auth/me, $CONNECTIONS connections, $DURATION each, SQLite"
for variant in $VARIANTS; do
  require_free_port
  read -r -a extra <<<"$(settings "$variant")"
  env APP_ENV=development BIND_ADDR="127.0.0.1:$PORT" DATABASE_URL="sqlite://$WORK/$variant.db?mode=rwc" \
    COOKIE_SECURE=false JWT_SECRET="bench-secret-bench-secret-bench-secret" BCRYPT_COST=4 ACCESS_TOKEN_TTL=1d \
    DATA_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64 -w0)" "${extra[@]}" \
    "$BIN" serve >"$LOG" 2>&1 &
  SERVER=$!
  wait_for_server
  curl -sSf -c "$WORK/jar" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"Bench-Runner-2026"}' "$BASE/api/v1/auth/register" >/dev/null ||
    die "registering the benchmark user failed"
  access=$(awk '$6 == "access_token" {print $7}' "$WORK/jar")
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Cookie: access_token=$access" "$BASE/api/v1/auth/me" \
    >"$WORK/wrk"
  printf '  %-14s %10s req/s   p50 %8s   p99 %8s   non-2xx: %s   (%s)\n' "$variant" \
    "$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk")" "$(awk '$1 == "50%" {print $2}' "$WORK/wrk")" \
    "$(awk '$1 == "99%" {print $2}' "$WORK/wrk")" "$(awk '/Non-2xx/ {print $4}' "$WORK/wrk" | grep . || echo 0)" \
    "${extra[*]}"
  kill "$SERVER"
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
done
