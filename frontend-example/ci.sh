#!/usr/bin/env bash
# CI for the example SPA: type check, lint, type drift check, build, unit tests, end-to-end tests
# in headless Chromium against the Latchkey binary (../target/debug/latchkey by
# default, or LATCHKEY_BIN). Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM_PATH:-}" ]; then
  echo "==> installing Debian's chromium"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

echo "==> npm ci"
npm ci --no-audit --no-fund

echo "==> type check"
npm run typecheck

echo "==> lint"
npm run lint

echo "==> the committed API types match ../openapi.yaml"
npm run check:types

echo "==> build"
npm run build

echo "==> unit tests"
npm run test:unit

echo "==> end-to-end tests"
npm run test:e2e
