#!/usr/bin/env bash
# Sets up everything the tests need (when missing) and runs them all: the Rust tests, optimised
# (AlexNet at full size is too slow unoptimised), then the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test.sh
# The wasm crate is built (and tested) by trunk and the browser tests, not natively.
cargo test --release --workspace --exclude alexnet-web "$@"
scripts/test-browser.sh
