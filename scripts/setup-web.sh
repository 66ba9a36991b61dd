#!/usr/bin/env bash
# Installs what building the page needs, when missing: the wasm32 target and wasm-bindgen-cli
# 0.2.130 (the `wasm-bindgen` crate's exact version). Nothing else: scripts/build-web.sh assembles
# the page without trunk (index.html still works with `trunk serve` for those who have it).
set -euo pipefail
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen 0.2.130" ]; then
  # Unoptimised, without LTO: it builds in under a minute instead of several and still writes the
  # page's bindings in seconds; its own speed is not the page's.
  CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_DEBUG=false \
    cargo install wasm-bindgen-cli --version 0.2.130 --force
fi
