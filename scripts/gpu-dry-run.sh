#!/usr/bin/env bash
# Rehearses the GPU run here, end to end, on a software GPU (Mesa's lavapipe): packs a tiny
# dataset with the same trainer build (CUDA and wgpu), runs scripts/gpu-train.sh with a tiny
# model and budget (CUDA cannot start here, so it takes the wgpu fallback), then checks what came
# back: the int8 parts reassemble into weights that `trainer eval` reads, and every file is within
# the size limits gpu-train.sh sets.
#
#   scripts/gpu-dry-run.sh          (~15 min the first time: the CUDA build; ~4 min after)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${DRY_RUN_DIR:-/tmp/alexnet-gpu-dry-run}
rm -rf "$dir"
PACK="$dir/pack" MAX_CLASSES=3 TRAIN_PER_CLASS=12 VAL_PER_CLASS=4 scripts/gpu-pack.sh
PACK="$dir/pack" OUT="$dir/out" RUN="$dir/run" BUDGET=${BUDGET:-240} RESERVE=90 WIDTH=0.125 BATCH=8 \
  CUBECL_AUTOTUNE_LEVEL=minimal scripts/gpu-train.sh

echo "== checking what came back"
out="$dir/out"
[ "$(find "$out" -type f | wc -l)" -le 8 ] || { echo "more than 8 files"; exit 1; }
find "$out" -type f -size +16M | grep . && { echo "a file over 16 MiB"; exit 1; }
[ "$(du -sb "$out" | cut -f1)" -le $((64 * 1048576)) ] || { echo "over 64 MiB"; exit 1; }
grep -q "== backend: wgpu" "$out/run.log" || { echo "the wgpu fallback was not taken"; exit 1; }
grep -q "resuming after epoch" "$out/run.log" || { echo "phase 2 did not resume"; exit 1; }
tar tzf "$out/results.tgz" | grep -q metrics.csv || { echo "no metrics in results.tgz"; exit 1; }
cat "$out"/model-int8.part-* > "$dir/model-int8.safetensors"
"${CARGO_TARGET_DIR:-target}/release/trainer" --backend cpu eval --weights "$dir/model-int8.safetensors" \
  --data "$dir/pack/data" --json
echo "dry run passed: $dir"
