#!/usr/bin/env bash
# Users moved over from a Python service: Python's `bcrypt` package (PyPI,
# installed into a virtualenv here) hashes fresh passwords at $2a$, $2b$ and
# $2y$ (tests/fixtures/make_legacy_users.py), `latchkey import-users` loads
# them, and each signs in through the real server with the old password; a
# second import changes nothing. The server is LATCHKEY_BIN (default
# target/debug/latchkey, built beforehand) on a free port with a fresh SQLite
# file. Exits non-zero on any failure.
#   cargo build && tests/clients/import_users.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${LATCHKEY_BIN:-target/debug/latchkey}
START_TIMEOUT=${SERVER_START_TIMEOUT:-60}
WORK=$(mktemp -d)
LOG="$WORK/server.log"
SERVER=""

SCRIPT=tests/clients/import_users.sh
# shellcheck source=scripts/server-lib.sh
source scripts/server-lib.sh

[ -x "$BIN" ] || die "$BIN is not an executable: run cargo build, or set LATCHKEY_BIN"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

echo "==> hashing passwords with Python's bcrypt"
python3 -m venv "$WORK/venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
PY="$WORK/venv/bin/python"
"$PY" -m pip install --quiet --disable-pip-version-check "bcrypt>=4,<6" || die "could not install bcrypt"
"$PY" tests/fixtures/make_legacy_users.py >"$WORK/users.jsonl"

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
export BIND_ADDR="127.0.0.1:$PORT" DATABASE_URL="sqlite://$WORK/latchkey.db?mode=rwc" COOKIE_SECURE=false \
  JWT_SECRET="import-users-secret-import-users-secret" BCRYPT_COST=4 RUST_LOG=warn LOGIN_RATE_PER_MINUTE=100

echo "==> latchkey import-users"
"$BIN" import-users "$WORK/users.jsonl" | tee "$WORK/first.txt"
grep -q "imported 4 users; skipped 0" "$WORK/first.txt" || die "the first import did not import 4 users"
"$BIN" import-users "$WORK/users.jsonl" | tee "$WORK/second.txt"
grep -q "imported 0 users; skipped 4" "$WORK/second.txt" || die "the second import was not a no-op"

(cd "$WORK" && exec "$BIN" serve) >"$LOG" 2>&1 &
SERVER=$!
wait_for_server

login() { # email password -> HTTP status
  curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$2\"}" "$BASE/api/v1/auth/login"
}
echo "==> signing in with the old passwords"
for user in "ada@example.com Ada-Lovelace-1815" "grace@example.com Grace-Hopper-1906" \
  "alan@example.com Alan-Turing-1912"; do
  read -r email password <<<"$user"
  [ "$(login "$email" "Wrong-Password-123")" = 401 ] || die "$email: a wrong password was not refused"
  [ "$(login "$email" "$password")" = 200 ] || die "$email: the old password did not sign in"
  [ "$(login "$email" "$password")" = 200 ] || die "$email: the upgraded hash did not sign in"
done
[ "$(login retired@example.com Retired-User-2001)" = 403 ] || die "an inactive import could sign in"
echo "import_users: 4 users from Python's bcrypt imported; old passwords sign in"
