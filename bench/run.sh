#!/usr/bin/env bash
# Load figures for Latchkey: starts a release build on a fresh database, then
# measures with wrk (apt-get install wrk). Usage:
#   bench/run.sh                                   # SQLite in a temp dir
#   bench/run.sh postgres://postgres@127.0.0.1:5432/postgres   # a new database on that server
# DURATION (default 15s) and CONNECTIONS (default 32) tune the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18080}
BASE="http://127.0.0.1:$PORT"
WORK=$(mktemp -d)
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

case "${1:-}" in
  "") DB="sqlite://$WORK/bench.db?mode=rwc" ;;
  postgres://*) NAME="latchkey_bench_$$"; psql "$1" -qc "CREATE DATABASE $NAME"; DB="${1%/*}/$NAME" ;;
  mysql://*) NAME="latchkey_bench_$$"; mysql -h 127.0.0.1 -uroot -e "CREATE DATABASE $NAME"; DB="${1%/*}/$NAME" ;;
  *) echo "unsupported DATABASE_URL" >&2; exit 1 ;;
esac

cargo build --release --quiet
BIN=target/release/latchkey
APP_ENV=development BIND_ADDR="127.0.0.1:$PORT" DATABASE_URL="$DB" COOKIE_SECURE=false \
  JWT_SECRET="bench-secret-bench-secret-bench-secret" BCRYPT_COST="${BCRYPT_COST:-12}" \
  LOGIN_RATE_PER_MINUTE=1000000000 REGISTER_RATE_PER_MINUTE=1000000000 RUST_LOG=warn \
  "$BIN" serve &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do curl -sf "$BASE/health" >/dev/null && break; sleep 0.2; done

JAR="$WORK/jar"
curl -sf -c "$JAR" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"Bench-Runner-2026"}' "$BASE/api/v1/auth/register" >/dev/null
ACCESS=$(awk '$6 == "access_token" {print $7}' "$JAR")
for i in $(seq 50); do
  curl -sf -b "$JAR" -H 'content-type: application/json' -d "{\"title\":\"task $i\"}" "$BASE/api/v1/tasks" >/dev/null
done

cat > "$WORK/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"Bench-Runner-2026"}'
LUA
cat > "$WORK/create.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title":"benchmark task","description":"created by wrk"}'
LUA

summary() { # label, wrk output file
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$2")
  p50=$(awk '$1 == "50%" {print $2}' "$2")
  p99=$(awk '$1 == "99%" {print $2}' "$2")
  printf '%-34s %10s req/s   p50 %8s   p99 %8s   non-2xx: %s\n' "$1" "$rps" "$p50" "$p99" \
    "$(awk '/Non-2xx/ {print $4}' "$2" | grep . || echo 0)"
}

ME=(-H "Cookie: access_token=$ACCESS" "$BASE/api/v1/auth/me")
echo "database: ${DB%%\?*}   duration: $DURATION   connections: $CONNECTIONS"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "${ME[@]}" > "$WORK/me.txt"; summary "GET /me" "$WORK/me.txt"
wrk -t2 -c4 -d"$DURATION" --latency -s "$WORK/login.lua" "$BASE/api/v1/auth/login" > "$WORK/login.txt"
summary "POST /login (bcrypt ${BCRYPT_COST:-12})" "$WORK/login.txt"
wrk -t1 -c4 -d"$DURATION" --latency -s "$WORK/login.lua" "$BASE/api/v1/auth/login" > "$WORK/login-bg.txt" &
LOGINS=$!
sleep 1
wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "${ME[@]}" > "$WORK/me-during.txt"
wait $LOGINS
summary "GET /me while logins run" "$WORK/me-during.txt"
summary "  (the logins meanwhile)" "$WORK/login-bg.txt"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Cookie: access_token=$ACCESS" \
  "$BASE/api/v1/tasks?limit=50" > "$WORK/tasks.txt"; summary "GET /tasks (50 per page)" "$WORK/tasks.txt"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/create.lua" -H "Cookie: access_token=$ACCESS" \
  "$BASE/api/v1/tasks" > "$WORK/create.txt"; summary "POST /tasks" "$WORK/create.txt"
