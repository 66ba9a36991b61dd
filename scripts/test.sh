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
# The page builds while the Rust tests run, at low priority: many of the tests wait (on
# processes, on the software GPU) more than they compute, and leave a core idle. Its own target
# directory (scripts/build-web.sh). Started earlier, beside the Rust build, it slowed that build
# more than it gained (docs/benchmarks-history.md).
web_log=$(mktemp)
setsid nice -n 10 scripts/build-web.sh >"$web_log" 2>&1 &
web_build=$!
trap 'kill -- -"$web_build" 2>/dev/null || true' EXIT
phase "run the tests (page building)" cargo test-all "$@"
finish_page() {
  wait "$web_build" || { cat "$web_log"; return 1; }
  tail -1 "$web_log"
}
phase "finish building the page" finish_page
phase "browser tests" scripts/test-browser.sh
echo "== seconds per phase"
printf '%s\n' "${phases[@]}"
printf '%-28s %5d s\n' "total" $((SECONDS - start))
