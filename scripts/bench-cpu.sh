#!/usr/bin/env bash
# The CPU rows of BENCHMARKS.md, in one run on this machine:
#  1. training and inference img/s on torchvision's AlexNet, ours (`trainer bench`, Burn's Flex
#     backend) against PyTorch from Debian (/usr/bin/python3) and, when $PYPI_PYTHON names a
#     python with PyPI's torch and torchvision, PyTorch from PyPI;
#  2. the shipped model's native per-image inference time (batch 1);
#  3. sizes: the wasm (raw and gzip) and the shipped model's weights in f32, f16 and int8;
#  4. with BENCH_BROWSER=1, the browser rows (per-image latency on WebGPU/SwiftShader and on the
#     wasm CPU path, cold start with and without the cached model) from scripts/test-browser.sh.
# Run it on an otherwise idle machine: every figure shares the same cores.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo test-all --no-run >/dev/null 2>&1
trainer="$target/release/trainer"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"

echo "== torchvision AlexNet, training batch 32, inference batch 16"
echo "ours (Burn Flex):  $("$trainer" --backend cpu bench --preset torchvision --batch-size 32 --infer-batch-size 16 --json)"
echo "PyTorch (Debian):  $(/usr/bin/python3 bench/pytorch_alexnet.py)"
if [ -n "${PYPI_PYTHON:-}" ]; then
  echo "PyTorch (PyPI):    $("$PYPI_PYTHON" bench/pytorch_alexnet.py)"
fi
echo "== torchvision AlexNet, inference batch 1 (read infer_images_per_sec only)"
echo "ours (Burn Flex):  $("$trainer" --backend cpu bench --preset torchvision --batch-size 1 --infer-batch-size 1 --steps 10 --json)"
echo "PyTorch (Debian):  $(/usr/bin/python3 bench/pytorch_alexnet.py --batch-size 1 --infer-batch-size 1 --steps 10)"
if [ -n "${PYPI_PYTHON:-}" ]; then
  echo "PyTorch (PyPI):    $("$PYPI_PYTHON" bench/pytorch_alexnet.py --batch-size 1 --infer-batch-size 1 --steps 10)"
fi

shipped="web/model/$(/usr/bin/python3 -c 'import json; print(json.load(open("web/model/manifest.json"))["file"])')"
width=$("$trainer" info --json "$shipped" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["config"]["width"])')
echo "== the shipped model ($shipped: paper preset, width $width), batch 1"
echo "ours (Burn Flex):  $("$trainer" --backend cpu bench --preset paper --width "$width" --batch-size 8 --infer-batch-size 1 --steps 10 --json)"

echo "== sizes (bytes)"
wasm=$(ls dist/*_bg.wasm 2>/dev/null | head -1 || true)
if [ -n "$wasm" ]; then
  echo "wasm: $(stat -c %s "$wasm") raw, $(gzip -9 -c "$wasm" | wc -c) gzip -9"
else
  echo "wasm: dist/ not built (scripts/build-web.sh --release)"
fi
tmp=$(mktemp -d)
for precision in f32 f16 int8; do
  "$trainer" convert "$shipped" --out "$tmp/model-$precision.safetensors" --precision "$precision" >/dev/null
  echo "weights $precision: $(stat -c %s "$tmp/model-$precision.safetensors")"
done
rm -rf "$tmp"

if [ "${BENCH_BROWSER:-0}" = 1 ]; then
  echo "== browser (scripts/test-browser.sh)"
  scripts/test-browser.sh 2>&1 | grep -E "latency per image|cold start" || true
fi
