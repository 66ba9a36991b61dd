#!/usr/bin/env bash
# Sets up everything the tests need (when missing) and runs them all: formatting and clippy, the
# Rust tests (optimised: full-size AlexNet is too slow unoptimised), then the browser tests. Ends
# with the seconds each phase took, so that a slower build or test shows the day it lands.
set -euo pipefail
cd "$(dirname "$0")/.."
phases=()
start=$SECONDS
phase() {
  local name=$1 began=$SECONDS
  shift
  "$@"
  phases+=("$(printf '%-28s %5d s' "$name" $((SECONDS - began)))")
}
phase "setup (apt, tools)" scripts/setup-test.sh
phase "cargo fmt --check" cargo fmt --all --check
# `cargo test-all` (.cargo/config.toml): the test-release profile, the trainer with wgpu and MPI,
# the workspace's crates compiled by clippy's driver (so this build is also the lint, warnings as
# errors); the wasm crate is built and tested by scripts/test-browser.sh.
phase "build the tests + clippy" cargo test-all --no-run "$@"
phase "run the tests" cargo test-all "$@"
phase "build the page (wasm)" scripts/build-web.sh
phase "browser tests" scripts/test-browser.sh
echo "== seconds per phase"
printf '%s\n' "${phases[@]}"
printf '%-28s %5d s\n' "total" $((SECONDS - start))
