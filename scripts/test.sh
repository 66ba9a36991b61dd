#!/usr/bin/env bash
# Sets up everything the tests need (when missing) and runs them all: formatting and clippy, the
# Rust tests, optimised (AlexNet at full size is too slow unoptimised), then the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test.sh
cargo fmt --all --check
cargo lint
# `cargo test-all` (.cargo/config.toml): optimised, the trainer with wgpu; the wasm crate is built
# (and tested) by trunk and the browser tests.
cargo test-all "$@"
scripts/test-browser.sh
