#!/usr/bin/env bash
# Soak test (not part of `cargo test`): a release build on a fresh SQLite file,
# mixed traffic at a fixed rate for SOAK_MINUTES (default 10), per-minute
# errors, p99 and RSS. Exits non-zero on any 5xx, p99 drift or RSS growth.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${SOAK_MINUTES:-10}
RATE=${SOAK_RATE:-2}   # journeys per second; 11 requests each
PORT=${PORT:-18090}
WORK=$(mktemp -d)
cargo build --release --quiet --bin latchkey --example soak
BIND_ADDR="127.0.0.1:$PORT" DATABASE_URL="sqlite://$WORK/soak.db?mode=rwc" COOKIE_SECURE=false \
  JWT_SECRET="soak-secret-soak-secret-soak-secret-1" BCRYPT_COST=10 \
  LOGIN_RATE_PER_MINUTE=1000000 REGISTER_RATE_PER_MINUTE=1000000 REFRESH_RATE_PER_MINUTE=1000000 \
  RUST_LOG=warn target/release/latchkey serve &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
target/release/examples/soak "http://127.0.0.1:$PORT" "$SERVER" "$MINUTES" "$RATE"
