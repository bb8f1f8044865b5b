#!/usr/bin/env bash
# A client in a second language, generated from the committed openapi.yaml,
# drives the real server through a short journey. It proves the spec is
# usable as is: operationIds become the function names, the request and
# response schemas become models, and the cookie session works through a
# plain cookie jar.
#
# openapi-python-client (PyPI) is installed into a virtualenv in a temporary
# directory; the server is LATCHKEY_BIN (default target/debug/latchkey, built
# beforehand) on a free port with a fresh SQLite file and COOKIE_SECURE=false.
# Exits non-zero on any failure, and when the server does not come up within
# SERVER_START_TIMEOUT seconds (default 60).
#   cargo build && tests/clients/python_client.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${LATCHKEY_BIN:-target/debug/latchkey}
START_TIMEOUT=${SERVER_START_TIMEOUT:-60}
GENERATOR="openapi-python-client>=0.29,<0.30"
WORK=$(mktemp -d)
LOG="$WORK/server.log"
SERVER=""

SCRIPT=tests/clients/python_client.sh
# shellcheck source=scripts/server-lib.sh
source scripts/server-lib.sh

[ -x "$BIN" ] || die "$BIN is not an executable: run cargo build, or set LATCHKEY_BIN"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

echo "==> installing $GENERATOR into a virtualenv"
python3 -m venv "$WORK/venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
PY="$WORK/venv/bin/python"
"$PY" -m pip install --quiet --disable-pip-version-check "$GENERATOR" || die "could not install $GENERATOR"

echo "==> generating the client from openapi.yaml"
# No post hooks: they run ruff, which is not needed to import the code.
printf 'post_hooks: []\n' >"$WORK/generator.yaml"
"$WORK/venv/bin/openapi-python-client" generate --path "$ROOT/openapi.yaml" --meta none \
  --output-path "$WORK/client/latchkey_client" --config "$WORK/generator.yaml" --fail-on-warning ||
  die "openapi-python-client could not generate a client from openapi.yaml"

echo "==> starting $BIN"
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
(cd "$WORK" && BIND_ADDR="127.0.0.1:$PORT" DATABASE_URL="sqlite://$WORK/latchkey.db?mode=rwc" \
  COOKIE_SECURE=false JWT_SECRET="python-client-secret-python-client-1" BCRYPT_COST=4 RUST_LOG=warn \
  exec "$BIN" serve) >"$LOG" 2>&1 &
SERVER=$!
wait_for_server

echo "==> the journey"
PYTHONPATH="$WORK/client" "$PY" - "$BASE" <<'PYTHON'
import sys
import uuid

import latchkey_client.api as api
from latchkey_client import Client
from latchkey_client.api.auth import get_me, logout, register
from latchkey_client.api.tasks import create_task, list_tasks
from latchkey_client.models import NewTask, Problem, RegisterRequest, Session, Task, User

base_url = sys.argv[1]

# Every operationId is a module named after it, with sync/sync_detailed.
import importlib
import pkgutil

found = set()
for tag in pkgutil.iter_modules(api.__path__):
    package = importlib.import_module(f"latchkey_client.api.{tag.name}")
    found |= {m.name for m in pkgutil.iter_modules(package.__path__)}
# The operationIds the server publishes, in the client's snake_case.
import re
import httpx
spec = httpx.get(f"{base_url}/openapi.json").json()
ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
expected = {re.sub(r"(?<!^)(?=[A-Z])", "_", i).lower() for i in ids}
assert len(expected) == len(ids) >= 29, f"operationIds must be unique: {ids}"
assert found == expected, f"generated functions {sorted(found)} are not the operationIds {sorted(expected)}"

# One httpx client, so its cookie jar carries the session from call to call.
client = Client(base_url=base_url, raise_on_unexpected_status=True)
email = f"python-{uuid.uuid4().hex[:12]}@example.com"

resp = register.sync_detailed(
    client=client,
    body=RegisterRequest(email=email, password="Generated-Client-Passphrase-7", full_name="Ada Lovelace"),
)
assert resp.status_code == 201, (resp.status_code, resp.content)
assert isinstance(resp.parsed, Session), resp.parsed
assert resp.parsed.user.email == email, resp.parsed.user.email
jar = client.get_httpx_client().cookies
assert "access_token" in jar and "refresh_token" in jar, dict(jar)

me = get_me.sync(client=client)
assert isinstance(me, User), me
assert me.email == email and me.full_name == "Ada Lovelace", me

resp = create_task.sync_detailed(client=client, body=NewTask(title="  Write the Python client  "))
assert resp.status_code == 201 and isinstance(resp.parsed, Task), (resp.status_code, resp.content)
created = resp.parsed
assert created.title == "Write the Python client" and created.description is None, created

resp = list_tasks.sync_detailed(client=client, limit=10)
assert resp.status_code == 200, (resp.status_code, resp.content)
assert [t.id for t in resp.parsed] == [created.id], resp.parsed
assert resp.parsed[0].title == "Write the Python client", resp.parsed
assert resp.headers["x-total-count"] == "1", resp.headers

resp = logout.sync_detailed(client=client)
assert resp.status_code == 204, (resp.status_code, resp.content)

resp = get_me.sync_detailed(client=client)
assert resp.status_code == 401, (resp.status_code, resp.content)
assert isinstance(resp.parsed, Problem) and resp.parsed.code == "not_authenticated", resp.parsed

print("python client: register, getMe, createTask, listTasks, logout, getMe -> 401: ok")
PYTHON
kill -0 "$SERVER" 2>/dev/null || die "the server died during the journey"
echo "1 passed, 0 failed"
