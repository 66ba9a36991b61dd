#!/usr/bin/env bash
# Builds the page into dist/ (or $ALEXNET_DIST): the wasm crate (web/) through cargo and the
# installed wasm-bindgen, beside index.html and web/'s scripts, style and shipped model. This is
# what `trunk build` does with index.html, without the minutes that installing trunk takes;
# `trunk serve --release` still builds the same page from index.html. `dist/` is a static site.
#   scripts/build-web.sh            the wasm-serve profile: quicker to build (serving, tests)
#   scripts/build-web.sh --release  the wasm-release profile: the smallest file (to publish)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=wasm-serve
case "${1:-}" in
  "") ;;
  --release) profile=wasm-release ;;
  *) echo "usage: scripts/build-web.sh [--release]" >&2; exit 2 ;;
esac
dist="${ALEXNET_DIST:-dist}"
# A target directory of its own: cargo locks one for a whole command, and scripts/test.sh builds
# the page while the native tests run.
target="${CARGO_TARGET_DIR:-target}/web"

CARGO_TARGET_DIR="$target" cargo build -p alexnet-web --lib --target wasm32-unknown-unknown --profile "$profile"
rm -rf "$dist"
mkdir -p "$dist"
# Stable names (alexnet-web.js, alexnet-web_bg.wasm): web/worker.js imports them, web/sw.js keeps them.
wasm-bindgen --target web --no-typescript --out-dir "$dist" --out-name alexnet-web \
  "$target/wasm32-unknown-unknown/$profile/alexnet_web.wasm"
cp index.html web/app.js web/model.js web/teach.js web/live.js web/store.js web/worker.js web/split.js web/sw.js web/style.css "$dist/"
cp -r web/model "$dist/model"
echo "built $dist/ ($profile): $(du -sh "$dist" | cut -f1)"
