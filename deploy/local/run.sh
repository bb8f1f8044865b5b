#!/usr/bin/env bash
# A real multi-instance deployment on loopback, and a journey through it:
# nginx (round robin) in front of two Latchkey instances that share one
# PostgreSQL database and one Redis. The journey's client is curl bound to
# 127.0.0.2 (all of 127/8 is local on Linux), so the client address differs
# from nginx's 127.0.0.1 and the instances must learn it from X-Forwarded-For.
#
# Needs: PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) and Redis on
# 127.0.0.1:6379, already running; psql, redis-cli and python3. Installs
# Debian's nginx, curl and jq when missing (as root), but never starts the
# distribution's nginx service: it runs its own from a temporary directory.
#   cargo build && deploy/local/run.sh
# LATCHKEY_BIN (default target/debug/latchkey), PG_URL, REDIS_HOST, REDIS_PORT
# and REDIS_DB (default 7, flushed at start and at exit) change the defaults.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${LATCHKEY_BIN:-target/debug/latchkey}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
REDIS_HOST=${REDIS_HOST:-127.0.0.1} REDIS_PORT=${REDIS_PORT:-6379} REDIS_DB=${REDIS_DB:-7}
CLIENT_IP=127.0.0.2 # the journey's browser
OTHER_IP=127.0.0.3  # another client, whose login budget is untouched
FLOOD_IP=127.0.0.4  # floods the login limit, starting from a full budget
DB_NAME="latchkey_deploy_$$"
WORK=$(mktemp -d)
A_PID="" B_PID="" NGINX_PID="" DB_CREATED="" PASSED=0 STEP=""

log() { echo "deploy/local: $*"; }

show_logs() {
  local f
  for f in "$WORK/a.log" "$WORK/b.log" "$WORK/nginx/error.log"; do
    [ -s "$f" ] || continue
    echo "---- last 30 lines of ${f#"$WORK"/} ----" >&2
    tail -n 30 "$f" >&2
  done
}

die() {
  echo "deploy/local: FATAL: $*" >&2
  exit 1
}

cleanup() {
  local status=$? pid
  for pid in $NGINX_PID $A_PID $B_PID; do kill "$pid" 2>/dev/null || true; done
  for pid in $NGINX_PID $A_PID $B_PID; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    show_logs
    [ -n "$STEP" ] && echo "deployment journey: $PASSED passed, 1 failed (at: $STEP)" >&2
  fi
  if [ -n "$DB_CREATED" ]; then
    psql "$PG_URL/postgres" -qXc "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---- prerequisites ----------------------------------------------------------

for tool in psql redis-cli python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
[ -x "$BIN" ] || die "$BIN is not an executable: run cargo build, or set LATCHKEY_BIN"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# nginx, and the journey's curl and jq, from Debian's packages when missing.
missing=()
for tool in nginx curl jq; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "not installed: ${missing[*]} (apt-get install ${missing[*]}, or run this as root)"
  log "installing Debian's ${missing[*]}"
  # A package install starts the distribution's nginx service (port 80) unless
  # a policy-rc.d says no; Debian's container images have one, hosts may not.
  policy=/usr/sbin/policy-rc.d created_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
  fi
  rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$WORK/apt.log" 2>&1 || rc=$?
  if [ -n "$created_policy" ]; then rm -f "$policy"; fi
  [ "$rc" -eq 0 ] || { tail -n 20 "$WORK/apt.log" >&2; die "apt-get install ${missing[*]} failed"; }
fi

psql "$PG_URL/postgres" -qXtAc 'SELECT 1' >/dev/null 2>&1 ||
  die "PostgreSQL does not answer at $PG_URL (start it first, e.g. pg_ctlcluster 15 main start)"
[ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] ||
  die "Redis does not answer at $REDIS_HOST:$REDIS_PORT (start it first, e.g. redis-server --daemonize yes)"
# Rate-limit keys outlive a run by a minute: start from an empty budget store.
redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
psql "$PG_URL/postgres" -qXc "CREATE DATABASE \"$DB_NAME\"" >/dev/null
DB_CREATED=1

# Three free loopback ports, held at once so they differ.
read -r PORT_A PORT_B PORT_NGINX < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
ORIGIN="http://127.0.0.1:$PORT_NGINX"
PROXY="$ORIGIN/api/v1"
A="http://127.0.0.1:$PORT_A/api/v1"
B="http://127.0.0.1:$PORT_B/api/v1"

# ---- the instances ----------------------------------------------------------

# The same settings on both; run from $WORK so a developer's .env is not read.
SETTINGS=(
  APP_ENV=development
  DATABASE_URL="$PG_URL/$DB_NAME"
  RUN_MIGRATIONS=false
  JWT_SECRET="$(head -c 48 /dev/urandom | base64 -w0)"
  DATA_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64 -w0)"
  RATE_LIMIT_REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT/$REDIS_DB"
  TRUSTED_PROXIES=127.0.0.1/32
  # Access tokens other services can verify: both instances sign with the
  # key pair in the shared database and publish it at /.well-known/jwks.json.
  JWT_ALGORITHM=EdDSA
  ALLOWED_ORIGINS="$ORIGIN"
  APP_URL="$ORIGIN"
  COOKIE_SECURE=false
  BCRYPT_COST=4
  # Far longer than the journey: a revoked session refused at once on the
  # other instance can then only be Redis pub/sub's doing, not an expiry.
  SESSION_CACHE_TTL=60s
  RUST_LOG=info
  NO_COLOR=1 # plain log lines in CI output
)

log "migrating $DB_NAME once, before either instance starts"
(cd "$WORK" && env "${SETTINGS[@]}" "$BIN" migrate) >"$WORK/migrate.log" 2>&1 ||
  { cat "$WORK/migrate.log" >&2; die "latchkey migrate failed"; }

log "starting instance A on :$PORT_A and B on :$PORT_B"
(cd "$WORK" && exec env "${SETTINGS[@]}" BIND_ADDR="127.0.0.1:$PORT_A" "$BIN" serve) >"$WORK/a.log" 2>&1 &
A_PID=$!
(cd "$WORK" && exec env "${SETTINGS[@]}" BIND_ADDR="127.0.0.1:$PORT_B" "$BIN" serve) >"$WORK/b.log" 2>&1 &
B_PID=$!

wait_ready() { # name pid url
  local deadline=$((SECONDS + 60))
  until curl -sf --max-time 2 -o /dev/null "$3"; do
    kill -0 "$2" 2>/dev/null || die "$1 exited before answering $3"
    ((SECONDS < deadline)) || die "$1 did not answer $3 within 60 s"
    sleep 0.2
  done
}
wait_ready "instance A" "$A_PID" "http://127.0.0.1:$PORT_A/health/ready"
wait_ready "instance B" "$B_PID" "http://127.0.0.1:$PORT_B/health/ready"

# ---- nginx -------------------------------------------------------------------

mkdir -p "$WORK/nginx"
# When run as root, nginx's workers run as nobody and need to reach the
# temporary directories inside $WORK/nginx.
chmod 755 "$WORK" "$WORK/nginx"
sed -e "s|@PREFIX@|$WORK/nginx|g" -e "s|@LISTEN@|127.0.0.1:$PORT_NGINX|g" \
  -e "s|@UPSTREAM_A@|127.0.0.1:$PORT_A|g" -e "s|@UPSTREAM_B@|127.0.0.1:$PORT_B|g" \
  deploy/local/nginx.conf.template >"$WORK/nginx/nginx.conf"
NGINX=(nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log")
"${NGINX[@]}" -t -q || die "the rendered nginx.conf does not pass nginx -t"
log "starting nginx on :$PORT_NGINX"
"${NGINX[@]}" -g 'daemon off;' &
NGINX_PID=$!
wait_ready nginx "$NGINX_PID" "$ORIGIN/health/ready"

# ---- the journey ---------------------------------------------------------------

# req IP [curl args]: one request from client address IP. The status is
# printed; the body and headers land in $WORK/body and $WORK/headers.
req() {
  local ip=$1
  shift
  : >"$WORK/body"
  : >"$WORK/headers"
  # A failed connection prints 000, which no expectation matches.
  curl -sS --interface "$ip" --max-time 10 -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' "$@" || true
}
header() { # the last response's header $1 (any case), or nothing
  tr -d '\r' <"$WORK/headers" | awk -v h="${1,,}" 'tolower($1) == h ":" { sub(/^[^:]*: */, ""); print; exit }'
}
cookie() { # jar name: the cookie's value
  awk -v n="$2" '$6 == n { print $7 }' "$1"
}
step() { STEP=$1; }
pass() {
  PASSED=$((PASSED + 1))
  echo "PASS $STEP: $*"
}
fail() {
  echo "FAIL $STEP: $*" >&2
  [ -s "$WORK/body" ] && echo "  last response body: $(head -c 400 "$WORK/body")" >&2
  exit 1
}
expect() { # status want what
  [ "$1" = "$2" ] || fail "$3: expected $2, got $1"
}

JAR1="$WORK/jar1" JAR2="$WORK/jar2"
JSON=(-H 'content-type: application/json' -H "Origin: $ORIGIN")
EMAIL="deploy-$$-$RANDOM@example.com"
PASSWORD="Deploy-Journey-Passphrase-7"
CREDENTIALS=$(jq -nc --arg e "$EMAIL" --arg p "$PASSWORD" '{email: $e, password: $p}')

step "1 register"
status=$(req "$CLIENT_IP" -H 'content-type: application/json' -H 'Origin: http://evil.example' \
  -d '{}' "$PROXY/auth/register")
expect "$status" 403 "register from a foreign Origin"
[ "$(jq -r .code "$WORK/body")" = csrf_rejected ] || fail "a foreign Origin was not refused as csrf_rejected"
status=$(req "$CLIENT_IP" -c "$JAR1" "${JSON[@]}" \
  -d "$(jq -c '. + {full_name: "Deploy Journey"}' <<<"$CREDENTIALS")" "$PROXY/auth/register")
expect "$status" 201 "register"
pass "201 for $EMAIL (a foreign Origin got 403 csrf_rejected)"

step "2 log in"
status=$(req "$CLIENT_IP" -b "$JAR1" -c "$JAR1" "${JSON[@]}" -d "$CREDENTIALS" "$PROXY/auth/login")
expect "$status" 200 "login"
for name in access_token refresh_token; do
  grep -qi "^set-cookie: $name=." "$WORK/headers" || fail "login set no $name cookie"
done
login_by=$(header x-upstream)
pass "200, access_token and refresh_token cookies set (by $login_by)"

step "3 GET /me on the other instance"
status=$(req "$CLIENT_IP" -b "$JAR1" "$PROXY/auth/me")
expect "$status" 200 "GET /me"
[ "$(jq -r .email "$WORK/body")" = "$EMAIL" ] || fail "GET /me is not $EMAIL"
me_by=$(header x-upstream)
[ "$me_by" != "$login_by" ] || fail "login and GET /me were both served by $me_by: no round robin?"
pass "200 $EMAIL (by $me_by, the other instance)"

step "4 refresh rotates the tokens"
old_access=$(cookie "$JAR1" access_token) old_refresh=$(cookie "$JAR1" refresh_token)
status=$(req "$CLIENT_IP" -b "$JAR1" -c "$JAR1" -X POST -H "Origin: $ORIGIN" "$PROXY/auth/refresh")
expect "$status" 200 "refresh"
[ "$(cookie "$JAR1" access_token)" != "$old_access" ] || fail "the access token did not change"
[ "$(cookie "$JAR1" refresh_token)" != "$old_refresh" ] || fail "the refresh token did not change"
status=$(req "$CLIENT_IP" -b "$JAR1" "$PROXY/auth/me")
expect "$status" 200 "GET /me with the new access token"
pass "200, both cookies replaced; the new access token works"

step "5 the session list shows the client's address"
status=$(req "$CLIENT_IP" -b "$JAR1" "$PROXY/auth/sessions")
expect "$status" 200 "GET /sessions"
ip=$(jq -r '.[] | select(.current) | .ip' "$WORK/body")
[ "$ip" = "$CLIENT_IP" ] || fail "the current session's ip is '$ip', not $CLIENT_IP (nginx is 127.0.0.1)"
pass "current session ip $ip, learnt through nginx's X-Forwarded-For"

step "6 a revocation on A is honoured on B at once"
status=$(req "$CLIENT_IP" -c "$JAR2" "${JSON[@]}" -d "$CREDENTIALS" "$PROXY/auth/login")
expect "$status" 200 "second login"
status=$(req "$CLIENT_IP" -b "$JAR2" "$PROXY/auth/sessions")
expect "$status" 200 "GET /sessions (second session)"
second=$(jq -r '.[] | select(.current) | .id' "$WORK/body")
# B now holds the second session in its cache (SESSION_CACHE_TTL=60s).
status=$(req "$CLIENT_IP" -b "$JAR2" "$B/auth/me")
expect "$status" 200 "B directly, second session, before the revocation"
status=$(req "$CLIENT_IP" -b "$JAR1" -X DELETE -H "Origin: $ORIGIN" "$A/auth/sessions/$second")
expect "$status" 204 "A directly: DELETE /sessions/$second"
revoked_at=$(date +%s%N)
# Pub/sub delivery is asynchronous (milliseconds): allow 1 s, far below the TTL.
until [ "$(req "$CLIENT_IP" -b "$JAR2" "$B/auth/me")" = 401 ]; do
  (($(date +%s%N) - revoked_at < 1000000000)) || fail "B still accepts the revoked session after 1 s (cache TTL 60 s)"
  sleep 0.02
done
elapsed_ms=$((($(date +%s%N) - revoked_at) / 1000000))
status=$(req "$CLIENT_IP" -b "$JAR1" "$B/auth/me")
expect "$status" 200 "B directly, first session, after the revocation"
pass "B refused the revoked session with 401 ${elapsed_ms} ms after A's 204; the other session still works on B"

step "7 one login limit for both instances"
WRONG=$(jq -c '.password = "Wrong-Password-123"' <<<"$CREDENTIALS")
refused_at="" upstreams=""
for attempt in 1 2 3 4 5 6; do
  status=$(req "$FLOOD_IP" "${JSON[@]}" -d "$WRONG" "$PROXY/auth/login")
  upstreams+="$(header x-upstream) "
  if [ "$status" = 429 ]; then
    refused_at=$attempt
    break
  fi
  expect "$status" 401 "wrong password, attempt $attempt"
done
[ "$refused_at" = 6 ] || fail "the 6th attempt in a minute was not refused with 429 (upstreams: $upstreams)"
retry_after=$(header retry-after)
[ -n "$retry_after" ] || fail "429 without Retry-After"
distinct=$(tr ' ' '\n' <<<"$upstreams" | sed '/^$/d' | sort -u | wc -l)
[ "$distinct" -eq 2 ] || fail "the attempts did not reach both instances: $upstreams"
status=$(req "$OTHER_IP" "${JSON[@]}" -d "$CREDENTIALS" "$PROXY/auth/login")
expect "$status" 200 "login from $OTHER_IP while $FLOOD_IP is refused"
pass "attempts 1-5 got 401 and the 6th 429 (Retry-After $retry_after); served by ${upstreams% }; $OTHER_IP still signs in"

step "8 X-Request-Id from nginx is echoed"
status=$(req "$CLIENT_IP" -b "$JAR1" -H 'X-Request-Id: chosen-by-the-client' "$PROXY/auth/me")
expect "$status" 200 "GET /me"
echoed=$(header x-request-id) made=$(header x-proxy-request-id)
if [ -z "$made" ] || [ "$echoed" != "$made" ]; then
  fail "X-Request-Id '$echoed' is not nginx's \$request_id '$made'"
fi
grep -q "$made" "$WORK/a.log" "$WORK/b.log" || fail "no instance logged request id $made"
pass "X-Request-Id $echoed is nginx's \$request_id (the client's own was replaced) and in the instance's log"

step "9 every instance publishes the key that signed the access token"
kid=$(cookie "$JAR1" access_token | python3 -c '
import base64, json, sys
head = sys.stdin.read().split(".")[0]
print(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])')
# Two instances that start together may each make a first key; each sees the
# other's within seconds (the first reload), so allow 10 s.
deadline=$((SECONDS + 10)) seen=""
while :; do
  status=$(req "$CLIENT_IP" "$ORIGIN/.well-known/jwks.json")
  expect "$status" 200 "GET /.well-known/jwks.json"
  if jq -e --arg k "$kid" 'any(.keys[]; .kid == $k and .alg == "EdDSA")' "$WORK/body" >/dev/null; then
    seen+="$(header x-upstream) "
  else
    seen=""
  fi
  [ "$(tr ' ' '\n' <<<"$seen" | sed '/^$/d' | sort -u | wc -l)" -ge 2 ] && break
  ((SECONDS < deadline)) || fail "instances do not all publish key $kid: $(cat "$WORK/body")"
  sleep 0.2
done
cache=$(header cache-control) size=$(wc -c <"$WORK/body") keys=$(jq '.keys | length' "$WORK/body")
[ "$cache" = "public, max-age=300" ] || fail "Cache-Control is '$cache'"
pass "kid $kid published by ${seen% } ($keys key(s), $size bytes, Cache-Control: $cache, ETag $(header etag))"

STEP=""
echo "deployment journey: $PASSED/9 passed"
