#!/usr/bin/env bash
# Sets up everything the tests need (when missing) and runs them all, optimised: AlexNet at full
# size is too slow unoptimised.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test.sh
cargo test --release --workspace "$@"
