#!/usr/bin/env bash
# Installs what building the page needs, when missing: the wasm32 target, trunk 0.21.14 and
# wasm-bindgen-cli 0.2.130 (the `wasm-bindgen` crate's exact version). Nothing is downloaded at
# build time afterwards: Trunk.toml sets `offline = true`. (No wasm-opt: index.html turns it off.)
set -euo pipefail
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen 0.2.130" ]; then
  # Without fat LTO: builds several times faster, runs the same.
  CARGO_PROFILE_RELEASE_LTO=false cargo install wasm-bindgen-cli --version 0.2.130 --force
fi
if [ "$(trunk --version 2>/dev/null)" != "trunk 0.21.14" ]; then
  CARGO_PROFILE_RELEASE_LTO=false cargo install trunk --version 0.21.14 --locked --force
fi
