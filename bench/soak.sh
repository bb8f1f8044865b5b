#!/usr/bin/env bash
# Soak test (not part of `cargo test`): a release build on a fresh SQLite file,
# mixed traffic at a fixed rate for SOAK_MINUTES (default 10), per-minute
# errors, p99 and RSS. Exits non-zero on any 5xx, p99 drift or RSS growth, and
# when the server does not come up within SERVER_START_TIMEOUT (default 60 s)
# or dies during the run. PROFILE=dist soaks the build that ships.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${SOAK_MINUTES:-10}
RATE=${SOAK_RATE:-2}   # journeys per second; 11 requests each
PROFILE=${PROFILE:-release}
PORT=${PORT:-18090}
START_TIMEOUT=${SERVER_START_TIMEOUT:-60}
BASE="http://127.0.0.1:$PORT"
WORK=$(mktemp -d)
LOG="$WORK/server.log"
SERVER=""

SCRIPT=bench/soak.sh
# shellcheck source=scripts/server-lib.sh
source scripts/server-lib.sh

command -v curl >/dev/null || die "curl is missing: apt-get install curl"
cargo build --profile "$PROFILE" --quiet --bin latchkey
cargo build --release --quiet --example soak
for bin in "target/$PROFILE/latchkey" target/release/examples/soak; do
  [ -x "$bin" ] || die "$bin was not built"
done
require_free_port
BIND_ADDR="127.0.0.1:$PORT" DATABASE_URL="sqlite://$WORK/soak.db?mode=rwc" COOKIE_SECURE=false \
  JWT_SECRET="soak-secret-soak-secret-soak-secret-1" BCRYPT_COST=10 \
  LOGIN_RATE_PER_MINUTE=1000000 REGISTER_RATE_PER_MINUTE=1000000 REFRESH_RATE_PER_MINUTE=1000000 \
  RUST_LOG=warn "target/$PROFILE/latchkey" serve >"$LOG" 2>&1 &
SERVER=$!
wait_for_server
# The soak runner reads the server's RSS through this PID.
target/release/examples/soak "$BASE" "$SERVER" "$MINUTES" "$RATE"
kill -0 "$SERVER" 2>/dev/null || die "the server died during the soak run"
