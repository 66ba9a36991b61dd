#!/usr/bin/env bash
# Retrains the model that web/model/ ships (see web/model/MODEL_CARD.md), on the CPU, then
# evaluates it on the whole validation split, centre crop and 10 crops, in f32, f16 and int8:
#
#   scripts/train-shipped-model.sh [OUT_DIR]      (default runs/shipped; ~4 hours on 2 cores)
#
# The paper's preset (LRN, two groups, dropout on fc6's and fc7's outputs) at half width, in two
# cycles. The first: He initialisation, SGD with momentum 0.9 and weight decay 5e-4 at batch 32,
# lr 0.003 falling along half a cosine to 0 over 48 epochs, random-resized crops of at least 35 %
# of the central square (with flips and PCA lighting), seed 1. The second starts from the first's
# weights (`--from`, a warm restart) at lr 0.002 falling to 0 over 56 epochs, seed 2. Validation
# on 100 val photos per class after every epoch (the curves), and `trainer eval` on all 3,925 at
# the end (the card's figures). The page's file is the second cycle's int8 one after
# `trainer calibrate` (the card has the command).
# With a GPU, scripts/gpu-train.sh trains the full-width network instead.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/shipped}"
data="${ALEXNET_DATA:-$(cd .. && pwd)/shared/data}/imagenette"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p trainer
trainer="$target/release/trainer"

"$trainer" --backend cpu train --data "$data" --out "$out/first" --preset paper --width 0.5 --dropout 0.5 \
  --init he --lr 0.003 --batch-size 32 --epochs 48 --lr-schedule cosine --min-crop-area 0.35 \
  --val-per-class 100 --cache-images --seed 1 --no-tui
"$trainer" --backend cpu train --data "$data" --out "$out" --preset paper --width 0.5 --dropout 0.5 \
  --from "$out/first/model.safetensors" --lr 0.002 --batch-size 32 --epochs 56 --lr-schedule cosine \
  --min-crop-area 0.35 --val-per-class 100 --cache-images --seed 2 --no-tui

for w in model model-f16 model-int8; do
  "$trainer" --backend cpu eval --weights "$out/$w.safetensors" --data "$data" --json > "$out/eval-$w-centre.json"
  "$trainer" --backend cpu eval --weights "$out/$w.safetensors" --data "$data" --json --ten-crop > "$out/eval-$w-ten-crop.json"
done
grep -H -o '"top1":[0-9.]*,"top5":[0-9.]*' "$out"/eval-*.json
