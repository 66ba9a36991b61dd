#!/usr/bin/env bash
# Sets up what is missing, builds the page (scripts/build-web.sh) and serves it on
# http://127.0.0.1:8080 (ALEXNET_PORT picks another port; `--release`: the smallest wasm, slower
# to build). Any static file server works:
# this one is Python's, which every machine with this project's tools has.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-web.sh
scripts/build-web.sh "$@"
port="${ALEXNET_PORT:-8080}"
echo "serving ${ALEXNET_DIST:-dist}/ on http://127.0.0.1:$port (Ctrl-C stops)"
exec python3 -m http.server --bind 127.0.0.1 --directory "${ALEXNET_DIST:-dist}" "$port"
