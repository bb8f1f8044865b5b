#!/usr/bin/env bash
# Load figures for Latchkey: starts a release build on a fresh database and
# measures it with wrk (apt-get install wrk). Usage:
#   bench/run.sh                                               # SQLite in a temp dir
#   bench/run.sh postgres://postgres@127.0.0.1:5432/postgres   # a new database on that server
#   bench/run.sh mysql://root@127.0.0.1:3306/mysql             # likewise on MySQL/MariaDB
#   BASELINE=<rev> bench/run.sh [url]                          # also <rev>, same session, with ratios
# With a server URL, a database named latchkey_bench_<pid> is created on that
# server (same user, password, host and port as the URL) and dropped at exit.
# It prints, per build: logins/s next to the bcrypt bound (cores / one hash),
# `/me` req/s with p50/p99, `/me` p99 during a login flood, the tasks routes,
# and RSS idle / after logins / after load. Absolute figures on a shared
# machine move by tens of percent between runs; compare builds with BASELINE.
# DURATION (default 10s), CONNECTIONS (default 64, for `/me` and the tasks
# routes), LOGIN_CONNECTIONS (default 4) and BCRYPT_COST (default 12) tune the
# runs; SERVER_START_TIMEOUT (default 60 s) bounds the wait for the server.
# PROFILE=dist measures the build that ships (whole-program optimisation,
# several times longer to build) instead of `release`.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
LOGIN_CONNECTIONS=${LOGIN_CONNECTIONS:-4}
COST=${BCRYPT_COST:-12}
PROFILE=${PROFILE:-release}
PORT=${PORT:-18080}
START_TIMEOUT=${SERVER_START_TIMEOUT:-60}
BASE="http://127.0.0.1:$PORT"
WORK=$(mktemp -d)
LOG="$WORK/server.log"
SERVER=""
SERVER_URL=${1:-}
NAME="latchkey_bench_$$"
CREATED_DB=""   # postgres or mysql, once we created a database there
BASELINE_TREE=""

cleanup_extra() {
  if [ -n "$BASELINE_TREE" ]; then git worktree remove --force "$BASELINE_TREE" 2>/dev/null || true; fi
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

# Creates an empty database for one build's run and prints its URL.
fresh_db() { # suffix
  case "$SERVER_URL" in
    "")
      echo "sqlite://$WORK/bench-$1.db?mode=rwc"
      ;;
    postgres://* | postgresql://*)
      psql "$SERVER_URL" -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS $NAME" -c "CREATE DATABASE $NAME" >/dev/null ||
        die "cannot create database $NAME on ${URL_HOST:-the default host}:${URL_PORT:-5432}"
      echo "$URL_SCHEME://$URL_AUTHORITY/$NAME$URL_QUERY"
      ;;
    mysql://*)
      mysql_on_url -e "DROP DATABASE IF EXISTS \`$NAME\`; CREATE DATABASE \`$NAME\`" ||
        die "cannot create database $NAME on ${URL_HOST:-localhost}:${URL_PORT:-3306} as ${URL_USER:-root}"
      echo "$URL_SCHEME://$URL_AUTHORITY/$NAME$URL_QUERY"
      ;;
  esac
}

case "$SERVER_URL" in
  "") ;;
  postgres://* | postgresql://*)
    command -v psql >/dev/null || die "psql is missing: apt-get install postgresql-client"
    parse_db_url "$SERVER_URL"
    CREATED_DB=postgres
    ;;
  mysql://*)
    command -v mysql >/dev/null || die "the mysql client is missing: apt-get install mariadb-client"
    parse_db_url "$SERVER_URL"
    CREATED_DB=mysql
    ;;
  *) die "unsupported database URL: use postgres://… or mysql://…, or nothing for SQLite" ;;
esac

# Builds the release binary of the working tree, and of BASELINE if set (in a
# worktree sharing this target directory, so only Latchkey itself recompiles).
BUILDS=()
# `dist` as Cargo.toml defines it, spelled out for a BASELINE from before it existed.
PROFILE_ARGS=(--profile "$PROFILE")
if [ "$PROFILE" = dist ]; then
  PROFILE_ARGS+=(--config 'profile.dist.inherits="release"' --config 'profile.dist.lto="fat"'
    --config 'profile.dist.codegen-units=1')
fi
if [ -n "${BASELINE:-}" ]; then
  rev=$(git rev-parse --short "$BASELINE^{commit}") || die "BASELINE=$BASELINE is not a commit"
  BASELINE_TREE="$WORK/baseline-src"
  git worktree add --detach --quiet "$BASELINE_TREE" "$rev"
  (cd "$BASELINE_TREE" && CARGO_TARGET_DIR="$OLDPWD/target" cargo build "${PROFILE_ARGS[@]}" --quiet --bin latchkey) ||
    die "building $rev failed"
  cp "target/$PROFILE/latchkey" "$WORK/latchkey-$rev"
  BUILDS+=("$rev")
fi
cargo build "${PROFILE_ARGS[@]}" --quiet --bin latchkey
cargo build --release --quiet --example bcrypt_cost
cp "target/$PROFILE/latchkey" "$WORK/latchkey-current"
BUILDS+=(current)

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

rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
pct() { awk -v p="$2" '$1 == p {print $2}' "$1"; }
non2xx() { awk '/Non-2xx/ {print $4}' "$1" | grep . || echo 0; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }

summary() { # label, wrk output file
  printf '  %-36s %10s req/s   p50 %8s   p99 %8s   non-2xx: %s\n' "$1" "$(rps "$2")" "$(pct "$2" 50%)" \
    "$(pct "$2" 99%)" "$(non2xx "$2")"
}

# One build's run; leaves its figures in $WORK/<build>.* for the comparison.
measure() { # build
  local b=$1 out="$WORK/$1" access db
  db=$(fresh_db "$b")
  require_free_port
  # The access token is minted once and used for every run: give it a day.
  APP_ENV=development BIND_ADDR="127.0.0.1:$PORT" DATABASE_URL="$db" COOKIE_SECURE=false \
    JWT_SECRET="bench-secret-bench-secret-bench-secret" BCRYPT_COST="$COST" ACCESS_TOKEN_TTL=1d \
    LOGIN_RATE_PER_MINUTE=1000000000 REGISTER_RATE_PER_MINUTE=1000000000 RUST_LOG=warn \
    "$WORK/latchkey-$b" serve >"$LOG" 2>&1 &
  SERVER=$!
  wait_for_server
  curl -sSf -c "$out.jar" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"Bench-Runner-2026"}' "$BASE/api/v1/auth/register" >/dev/null ||
    die "registering the benchmark user failed"
  access=$(awk '$6 == "access_token" {print $7}' "$out.jar")
  [ -n "$access" ] || die "registration set no access_token cookie"
  for i in $(seq 50); do
    curl -sSf -b "$out.jar" -H 'content-type: application/json' -d "{\"title\":\"task $i\"}" \
      "$BASE/api/v1/tasks" >/dev/null || die "creating task $i failed"
  done
  sleep 1
  rss_mib > "$out.rss-idle"
  local me=(-H "Cookie: access_token=$access" "$BASE/api/v1/auth/me")
  echo "$b:"
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "${me[@]}" > "$out.me"
  summary "GET /auth/me" "$out.me"
  wrk -t2 -c"$LOGIN_CONNECTIONS" -d"$DURATION" --latency -s "$WORK/login.lua" "$BASE/api/v1/auth/login" > "$out.login"
  summary "POST /auth/login (bcrypt $COST)" "$out.login"
  rss_mib > "$out.rss-logins"
  wrk -t1 -c"$LOGIN_CONNECTIONS" -d"$DURATION" --latency -s "$WORK/login.lua" "$BASE/api/v1/auth/login" \
    > "$out.flood-logins" &
  local flood=$!
  sleep 1
  wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "${me[@]}" > "$out.me-flood"
  wait "$flood"
  summary "GET /auth/me during a login flood" "$out.me-flood"
  summary "  (the logins meanwhile)" "$out.flood-logins"
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Cookie: access_token=$access" \
    "$BASE/api/v1/tasks?limit=50" > "$out.tasks"
  summary "GET /tasks (50 per page)" "$out.tasks"
  wrk -t2 -c32 -d"$DURATION" --latency -s "$WORK/create.lua" -H "Cookie: access_token=$access" \
    "$BASE/api/v1/tasks" > "$out.create"
  summary "POST /tasks (32 writers)" "$out.create"
  rss_mib > "$out.rss-load"
  # What stays once the server has been quiet for a moment (freed memory is
  # handed back after a quiet second).
  sleep 3
  rss_mib > "$out.rss-settled"
  printf '  %-36s idle %s MiB, after logins %s MiB, after load %s MiB, 3 s later %s MiB\n' "RSS" \
    "$(cat "$out.rss-idle")" "$(cat "$out.rss-logins")" "$(cat "$out.rss-load")" "$(cat "$out.rss-settled")"
  kill -0 "$SERVER" 2>/dev/null || die "the server died during the runs"
  kill "$SERVER"
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
}

echo "database: ${SERVER_URL:-sqlite}   duration: $DURATION   connections: $CONNECTIONS (logins: $LOGIN_CONNECTIONS)"
target/release/examples/bcrypt_cost "$COST" | tee "$WORK/bound"
BOUND=$(awk '/<- used/ {for (i = 1; i <= NF; i++) if ($i == "logins/s") print $(i - 1)}' "$WORK/bound")
for b in "${BUILDS[@]}"; do measure "$b"; done

# Latency in ms from wrk's units.
ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[^m]s$/) n *= 1000; printf "%.2f", n }'; }
row() { # label, value per build...
  local label=$1
  shift
  printf '%-34s' "$label"
  for v in "$@"; do printf ' %14s' "$v"; done
  printf '\n'
}
echo
if [ "${#BUILDS[@]}" -eq 2 ]; then row "figure" "${BUILDS[@]}" "current/base"; else row "figure" "${BUILDS[@]}"; fi
figures() { # build -> prints one value per figure, tab-separated
  local f="$WORK/$1"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$(rps "$f.login")" \
    "$(awk -v l="$(rps "$f.login")" -v b="$BOUND" 'BEGIN { printf "%.2f", l / b }')" \
    "$(rps "$f.me")" "$(ms "$(pct "$f.me" 50%)")" "$(ms "$(pct "$f.me" 99%)")" \
    "$(ms "$(pct "$f.me-flood" 99%)")" "$(ms "$(pct "$f.create" 99%)")" \
    "$(cat "$f.rss-idle")" "$(cat "$f.rss-logins")" "$(cat "$f.rss-load")" "$(cat "$f.rss-settled")" \
    "$(rps "$f.flood-logins")"
}
labels=("logins/s" "logins / bound ($BOUND/s)" "/me req/s" "/me p50 ms" "/me p99 ms" "/me p99 ms, login flood"
  "POST /tasks p99 ms" "RSS idle MiB" "RSS after logins MiB" "RSS after load MiB" "RSS 3 s after load MiB"
  "logins/s during /me load")
declare -A VALUES
for b in "${BUILDS[@]}"; do
  IFS=$'\t' read -r -a vals <<<"$(figures "$b")"
  for i in "${!labels[@]}"; do VALUES[$b,$i]=${vals[$i]}; done
done
for i in "${!labels[@]}"; do
  line=()
  for b in "${BUILDS[@]}"; do line+=("${VALUES[$b,$i]}"); done
  if [ "${#BUILDS[@]}" -eq 2 ]; then
    line+=("$(awk -v a="${VALUES[${BUILDS[0]},$i]}" -v c="${VALUES[current,$i]}" \
      'BEGIN { if (a + 0 == 0) print "-"; else printf "x%.2f", c / a }')")
  fi
  row "${labels[$i]}" "${line[@]}"
done
