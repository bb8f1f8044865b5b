#!/usr/bin/env bash
# Load figures for Latchkey: starts a release build on a fresh database, then
# measures with wrk (apt-get install wrk). Usage:
#   bench/run.sh                                               # SQLite in a temp dir
#   bench/run.sh postgres://postgres@127.0.0.1:5432/postgres   # a new database on that server
#   bench/run.sh mysql://root@127.0.0.1:3306/mysql             # likewise on MySQL/MariaDB
# With a server URL, a database named latchkey_bench_<pid> is created on that
# server (same user, password, host and port as the URL) and dropped at exit.
# DURATION (default 15s) and CONNECTIONS (default 32) tune the runs;
# SERVER_START_TIMEOUT (default 60 s) bounds the wait for the server.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18080}
START_TIMEOUT=${SERVER_START_TIMEOUT:-60}
BASE="http://127.0.0.1:$PORT"
WORK=$(mktemp -d)
LOG="$WORK/server.log"
SERVER=""
SERVER_URL=${1:-}
NAME="latchkey_bench_$$"
CREATED_DB=""   # postgres or mysql, once we created a database there

cleanup_extra() {
  drop_db || echo "bench/run.sh: warning: could not drop database $NAME; drop it by hand" >&2
}
SCRIPT=bench/run.sh
# shellcheck source=scripts/server-lib.sh
source scripts/server-lib.sh

# %XX-decodes a URL component.
urldecode() {
  printf '%b' "${1//%/\\x}"
}

# Splits scheme://[user[:password]@]host[:port][/database][?query] into the
# globals URL_SCHEME, URL_AUTHORITY (as written), URL_USER, URL_PASS (decoded),
# URL_HOST, URL_PORT and URL_QUERY (with its `?`); the database is replaced.
parse_db_url() {
  local rest userinfo="" hostport
  URL_SCHEME=${1%%://*}
  rest=${1#*://}
  URL_QUERY=""
  if [[ $rest == *\?* ]]; then
    URL_QUERY="?${rest#*\?}"
    rest=${rest%%\?*}
  fi
  URL_AUTHORITY=${rest%%/*}
  hostport=$URL_AUTHORITY
  if [[ $URL_AUTHORITY == *@* ]]; then
    userinfo=${URL_AUTHORITY%@*}
    hostport=${URL_AUTHORITY##*@}
  fi
  URL_USER=$(urldecode "${userinfo%%:*}")
  URL_PASS=""
  if [[ $userinfo == *:* ]]; then URL_PASS=$(urldecode "${userinfo#*:}"); fi
  URL_PORT=""
  if [[ $hostport == \[* ]]; then # [IPv6]:port
    URL_HOST=${hostport%%]*}
    URL_HOST=${URL_HOST#[}
    hostport=${hostport#*]}
    URL_PORT=${hostport#:}
  else
    URL_HOST=${hostport%%:*}
    if [[ $hostport == *:* ]]; then URL_PORT=${hostport##*:}; fi
  fi
}

# The mysql client on the URL's server. Defaults follow the server's own URL
# parsing: user root, host localhost, port 3306, always TCP (the client would
# take `localhost` as the Unix socket).
mysql_on_url() {
  local pass=()
  if [ -n "$URL_PASS" ]; then pass=(env "MYSQL_PWD=$URL_PASS"); fi
  "${pass[@]}" mysql --protocol=TCP -h "${URL_HOST:-localhost}" -P "${URL_PORT:-3306}" -u "${URL_USER:-root}" "$@"
}

# Drops the database this run created (the server must have stopped).
drop_db() {
  case "$CREATED_DB" in
    postgres) psql "$SERVER_URL" -qc "DROP DATABASE IF EXISTS $NAME" ;;
    mysql) mysql_on_url -e "DROP DATABASE IF EXISTS \`$NAME\`" ;;
  esac
}

command -v wrk >/dev/null || die "wrk is missing: apt-get install wrk"
command -v curl >/dev/null || die "curl is missing: apt-get install curl"

case "$SERVER_URL" in
  "")
    DB="sqlite://$WORK/bench.db?mode=rwc"
    ;;
  postgres://* | postgresql://*)
    command -v psql >/dev/null || die "psql is missing: apt-get install postgresql-client"
    parse_db_url "$SERVER_URL"
    psql "$SERVER_URL" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $NAME" ||
      die "cannot create database $NAME on ${URL_HOST:-the default host}:${URL_PORT:-5432}"
    CREATED_DB=postgres
    DB="$URL_SCHEME://$URL_AUTHORITY/$NAME$URL_QUERY"
    ;;
  mysql://*)
    command -v mysql >/dev/null || die "the mysql client is missing: apt-get install mariadb-client"
    parse_db_url "$SERVER_URL"
    mysql_on_url -e "CREATE DATABASE \`$NAME\`" ||
      die "cannot create database $NAME on ${URL_HOST:-localhost}:${URL_PORT:-3306} as ${URL_USER:-root}"
    CREATED_DB=mysql
    DB="$URL_SCHEME://$URL_AUTHORITY/$NAME$URL_QUERY"
    ;;
  *) die "unsupported database URL: use postgres://… or mysql://…, or nothing for SQLite" ;;
esac

cargo build --release --quiet
BIN=target/release/latchkey
[ -x "$BIN" ] || die "$BIN was not built"
require_free_port
# The access token is minted once and used for every run: give it a day.
APP_ENV=development BIND_ADDR="127.0.0.1:$PORT" DATABASE_URL="$DB" COOKIE_SECURE=false \
  JWT_SECRET="bench-secret-bench-secret-bench-secret" BCRYPT_COST="${BCRYPT_COST:-12}" ACCESS_TOKEN_TTL=1d \
  LOGIN_RATE_PER_MINUTE=1000000000 REGISTER_RATE_PER_MINUTE=1000000000 RUST_LOG=warn \
  "$BIN" serve >"$LOG" 2>&1 &
SERVER=$!
wait_for_server

JAR="$WORK/jar"
curl -sSf -c "$JAR" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"Bench-Runner-2026"}' "$BASE/api/v1/auth/register" >/dev/null ||
  die "registering the benchmark user failed"
ACCESS=$(awk '$6 == "access_token" {print $7}' "$JAR")
[ -n "$ACCESS" ] || die "registration set no access_token cookie"
for i in $(seq 50); do
  curl -sSf -b "$JAR" -H 'content-type: application/json' -d "{\"title\":\"task $i\"}" "$BASE/api/v1/tasks" >/dev/null ||
    die "creating task $i failed"
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
kill -0 "$SERVER" 2>/dev/null || die "the server died during the runs"
