#!/usr/bin/env bash
# The page's CPU path against ONNX Runtime Web (npm `onnxruntime-web`) on the same models, in the
# same headless Chromium: torchvision's AlexNet (seeded random weights, the same on both sides)
# and the shipped model. Prints one JSON line per model (medians in ms; web/bench-ort.mjs says
# what is timed), then `trainer predict`'s per-photo times on the same photos for the native side.
#
#   scripts/bench-ort.sh [ROUNDS]          after scripts/build-web.sh; an idle machine
#
# Needs Debian's python3-torch (the ONNX export) and npm; ORT is installed into target/ort-bench/
# (154 MB), not into web/, so that the tests never download it.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
target="${CARGO_TARGET_DIR:-target}"
dir="$target/ort-bench"
photos="${ALEXNET_DATA:-$(cd .. && pwd)/shared/data}/photos"
cargo build --release -p trainer
trainer="$target/release/trainer"
mkdir -p "$dir/npm"
if [ ! -d "$dir/npm/node_modules/onnxruntime-web" ]; then
  echo '{"private": true}' > "$dir/npm/package.json"
  npm install --prefix "$dir/npm" --no-audit --no-fund onnxruntime-web@1.31.1
fi
shipped="web/model/$(/usr/bin/python3 -c 'import json; print(json.load(open("web/model/manifest.json"))["file"])')"
"$trainer" convert "$shipped" --precision f32 --out "$dir/ours.safetensors"
/usr/bin/python3 bench/export_onnx.py "$dir" "$dir/ours.safetensors" 2>/dev/null
"$trainer" import-torchvision "$dir/torchvision.pth" --out "$dir/torchvision.safetensors"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
for model in torchvision ours; do
  node web/bench-ort.mjs "$dir" "$model" "$rounds"
  echo "trainer predict ($model), ms per photo: $("$trainer" --backend cpu predict --weights "$dir/$model.safetensors" --json "$photos"/* | grep -o '"ms":[0-9.]*' | cut -d: -f2 | xargs)"
done
