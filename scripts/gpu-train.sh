#!/usr/bin/env bash
# Trains the shipped model on a GPU machine inside a fixed time budget, then evaluates and
# quantizes it: how web/model/ was made (see its model card).
#
#   PACK=DIR OUT=DIR BUDGET=SECONDS scripts/gpu-train.sh
#
# PACK holds trainer.xz (the CUDA trainer: `cargo build --release -p trainer --features cuda`,
# stripped, xz-compressed) and data/{train,val}/<wnid>/* (Imagenette's train split at 160 px and
# 200 val photos per class at 160 px: together they fit the GPU machine's 64 MiB upload).
# The recipe: the paper's preset, augmentation, SGD (momentum 0.9, weight decay 5e-4, batch 128),
# lr 0.01 for about 60 % of the time, then resumed at 0.001 (the paper's hand-made drop by 10).
# OUT receives the int8 weights in 15 MB parts (the machine returns files of at most 16 MiB),
# results.tgz (metrics, evaluations, benchmarks) and run.log.
set -u -o pipefail
PACK=${PACK:-.gpu}
OUT=${OUT:-/tmp/gpu-out}
BUDGET=${BUDGET:-540}
RESERVE=${RESERVE:-110} # seconds kept for evaluation and packing
start=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - start))); }
RUN=/tmp/alexnet-run
mkdir -p "$RUN" "$OUT"
exec > >(tee "$OUT/run.log") 2>&1

T=/tmp/trainer
xz -dc "$PACK/trainer.xz" >$T && chmod +x $T || exit 1
# Burn's CUDA backend compiles its kernels with NVRTC at run time and includes CUDA's headers.
export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
nvrtc=$(ls "$CUDA_PATH"/lib64/libnvrtc.so* 2>/dev/null | head -1)
[ -n "$nvrtc" ] || nvrtc=$(timeout 30 find / -name 'libnvrtc.so*' -not -path '/proc/*' 2>/dev/null | head -1)
export LD_LIBRARY_PATH="$(dirname "${nvrtc:-/}"):${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$RUN/gpu.txt"
echo "nvrtc: $nvrtc; CUDA_PATH $CUDA_PATH; $(nproc) CPUs"

echo "== bench (paper preset, batch 128)"
timeout 150 $T --backend cuda bench --preset paper --batch-size 128 --infer-batch-size 128 --steps 5 --json \
  | tee "$RUN/bench-paper-cuda.json" || { echo "the CUDA backend did not run"; exit 1; }

train() { # MINUTES EXTRA_ARGS...
  local minutes=$1; shift
  $T --backend cuda train --data "$PACK/data" --out "$RUN/model" --preset paper --init default \
    --epochs 200 --batch-size 128 --workers "$(nproc)" --cache-images --checkpoint-every 1000 \
    --seed 0 --time-limit "$minutes" "$@"
}
phase1=$(awk -v s="$(($(left) - RESERVE))" 'BEGIN { printf "%.2f", s * 0.6 / 60 }')
echo "== phase 1: lr 0.01 for $phase1 min"
train "$phase1" --lr 0.01 || echo "phase 1 failed"
if [ ! -f "$RUN/model/checkpoint/state.json" ] && [ "$(left)" -gt $((RESERVE + 90)) ]; then
  echo "== phase 1 again, at lr 0.003"
  rm -rf "$RUN/model"
  train "$(awk -v s="$(($(left) - RESERVE))" 'BEGIN { printf "%.2f", s * 0.6 / 60 }')" --lr 0.003
fi
if [ -f "$RUN/model/checkpoint/state.json" ]; then
  phase2=$(awk -v s="$(($(left) - RESERVE))" 'BEGIN { printf "%.2f", s / 60 }')
  echo "== phase 2: lr 0.001 for $phase2 min"
  train "$phase2" --resume --lr 0.001 || echo "phase 2 failed"
fi
ls -la "$RUN/model"

echo "== eval (val subset at 160 px)"
for w in model model-int8; do
  for mode in centre ten-crop; do
    flag=$([ $mode = ten-crop ] && echo --ten-crop)
    timeout 60 $T --backend cuda eval --weights "$RUN/model/$w.safetensors" --data "$PACK/data" \
      --batch-size 128 --json $flag >"$RUN/eval-$w-$mode.json" && echo "$w $mode: $(head -c 120 "$RUN/eval-$w-$mode.json")"
  done
done

if [ "$(left)" -gt 50 ]; then
  echo "== PyTorch on the same card (torchvision AlexNet, batch 128)"
  timeout 40 python3 bench/pytorch_alexnet.py --device cuda --batch-size 128 --infer-batch-size 128 --steps 20 \
    | tee "$RUN/bench-pytorch-cuda.json"
fi
if [ "$(left)" -gt 40 ]; then
  timeout $(($(left) - 20)) $T --backend cuda bench --preset torchvision --batch-size 128 --infer-batch-size 128 \
    --steps 20 --json | tee "$RUN/bench-torchvision-cuda.json"
fi

cd "$RUN" && sha256sum model/*.safetensors | tee sha256.txt
cp model/metrics.csv model/metrics.json model/checkpoint/state.json . 2>/dev/null
tar czf "$OUT/results.tgz" ./*.json ./*.txt ./*.csv 2>/dev/null
split -b 15000000 -d model/model-int8.safetensors "$OUT/model-int8.part-"
ls -la "$OUT"; echo "done with $(left) s left"
