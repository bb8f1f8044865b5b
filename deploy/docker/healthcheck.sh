#!/usr/bin/env bash
# The container's HEALTHCHECK: GET /health/ready (503 while the database does
# not answer) on BIND_ADDR's port. Bash's /dev/tcp speaks the HTTP, so the
# image needs no curl; Docker's --timeout bounds a connection that hangs.
set -euo pipefail
port=${BIND_ADDR:-0.0.0.0:8000}
exec 3<>"/dev/tcp/127.0.0.1/${port##*:}"
printf 'GET /health/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 5 status_line <&3
[[ $status_line == "HTTP/1.1 200 "* ]]
