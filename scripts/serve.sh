#!/usr/bin/env bash
# Sets up what is missing, then builds and serves the page on http://127.0.0.1:8080
# (extra arguments go to `trunk serve`, e.g. `--port 9000`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-web.sh
# No auto-reload script: the page's Content-Security-Policy runs only its own files.
exec trunk serve --release --no-autoreload "$@"
