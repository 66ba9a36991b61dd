#!/usr/bin/env bash
# The GPU run, on a GPU machine: benchmarks, trains the paper's AlexNet within a time budget
# (lr 0.01, then resumed at 0.001: the paper's drop by 10), evaluates it and packs the results to
# bring back in OUT, in parts of at most 15 MB (so that each fits a size-limited copy back).
#
#   PACK=.gpu OUT=$OUT BUDGET=540 scripts/gpu-train.sh
#
# PACK comes from scripts/gpu-pack.sh. The whole flow is rehearsed here, on a software GPU, by
# scripts/gpu-dry-run.sh: only the GPU is new on the day.
#
# Backend: CUDA when it starts (CUDA_PATH and NVRTC are found: the toolkit, or pip's nvidia-*
# packages), else wgpu through the machine's Vulkan driver (loaders from PACK/gl if it has none),
# else the run stops and says why. Settings (environment): BACKEND (to force one), BUDGET and
# RESERVE (seconds: all, and kept for evaluation and packing), PRESET (paper), WIDTH (1),
# BATCH (128), LR (0.01), PHASE1 (0.6 of the training time), BENCH (1: benchmark first),
# TRAIN_ARGS (more `trainer train` options).
set -u -o pipefail
PACK=${PACK:-.gpu}
OUT=${OUT:-/tmp/gpu-out}
BUDGET=${BUDGET:-540}
RESERVE=${RESERVE:-110}
PRESET=${PRESET:-paper}
WIDTH=${WIDTH:-1}
BATCH=${BATCH:-128}
LR=${LR:-0.01}
PHASE1=${PHASE1:-0.6}
start=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - start))); }
minutes() { awk -v s="$1" 'BEGIN { printf "%.2f", (s > 0 ? s : 0) / 60 }'; }
RUN=${RUN:-/tmp/alexnet-run}
rm -rf "$RUN" && mkdir -p "$RUN" "$OUT"
exec > >(tee "$OUT/run.log") 2>&1

T=$RUN/trainer
xz -dc "$PACK/trainer.xz" >"$T" && chmod +x "$T" || { echo "error: no trainer in $PACK"; exit 1; }
echo "== $(nproc) CPUs; $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"

# CUDA: the headers (cubecl-cuda compiles kernels with them) and NVRTC, from the toolkit or from
# pip's nvidia-* packages.
if [ -z "${CUDA_PATH:-}" ]; then
  for dir in /usr/local/cuda /usr/local/cuda-13* /opt/cuda $(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]) + "/nvidia/cuda_runtime")' 2>/dev/null); do
    [ -f "$dir/include/cuda.h" ] && { export CUDA_PATH=$dir; break; }
  done
fi
nvrtc=$(ls "${CUDA_PATH:-/nonexistent}"/lib64/libnvrtc.so* 2>/dev/null | head -1)
[ -n "$nvrtc" ] || nvrtc=$(python3 -c 'import nvidia.cuda_nvrtc, os; d = os.path.join(nvidia.cuda_nvrtc.__path__[0], "lib"); print(os.path.join(d, sorted(os.listdir(d))[0]))' 2>/dev/null)
[ -n "$nvrtc" ] || nvrtc=$(timeout 20 find / -name 'libnvrtc.so*' -not -path '/proc/*' 2>/dev/null | head -1)
[ -n "$nvrtc" ] && export LD_LIBRARY_PATH="$(dirname "$nvrtc"):${LD_LIBRARY_PATH:-}"
echo "CUDA_PATH=${CUDA_PATH:-none}; NVRTC: ${nvrtc:-not found}"

# Vulkan, for the wgpu fallback: the machine's loader, else the packed one.
if ! ldconfig -p | grep -q libvulkan.so.1 && ls "$PACK"/gl/*.deb >/dev/null 2>&1; then
  for f in "$PACK"/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$nvidia_icd" ] && [ -z "${VK_DRIVER_FILES:-}" ] && export VK_DRIVER_FILES=$nvidia_icd

# The first backend whose one-step benchmark runs (it compiles and autotunes a few kernels).
probe() { timeout 180 "$T" --backend "$1" bench --preset "$PRESET" --width 0.125 --batch-size 4 --infer-batch-size 4 --steps 1 >/dev/null; }
if [ -z "${BACKEND:-}" ]; then
  for b in cuda wgpu; do
    echo "== probing $b"
    if probe $b; then BACKEND=$b; break; fi
  done
fi
[ -n "${BACKEND:-}" ] || { echo "error: neither CUDA nor wgpu started (see above)"; exit 1; }
echo "== backend: $BACKEND"

if [ "${BENCH:-1}" = 1 ]; then
  echo "== bench: ours (paper and torchvision presets), then PyTorch on the same card"
  timeout 150 "$T" --backend "$BACKEND" bench --preset "$PRESET" --width "$WIDTH" --batch-size "$BATCH" \
    --infer-batch-size "$BATCH" --steps 10 --json | tee "$RUN/bench-ours.json"
  timeout 100 "$T" --backend "$BACKEND" bench --preset torchvision --width "$WIDTH" --batch-size "$BATCH" \
    --infer-batch-size "$BATCH" --steps 10 --json | tee "$RUN/bench-ours-torchvision.json"
  if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    timeout 60 python3 bench/pytorch_alexnet.py --device cuda --batch-size "$BATCH" --infer-batch-size "$BATCH" \
      --steps 20 | tee "$RUN/bench-pytorch.json"
  fi
fi

train() { # MINUTES EXTRA_ARGS...
  local minutes=$1; shift
  "$T" --backend "$BACKEND" train --no-tui --data "$PACK/data" --out "$RUN/model" --preset "$PRESET" \
    --width "$WIDTH" --epochs 1000 --batch-size "$BATCH" --workers "$(nproc)" --cache-images \
    --checkpoint-every 1000 --seed 0 --time-limit "$minutes" ${TRAIN_ARGS:-} "$@"
}
training=$(($(left) - RESERVE))
echo "== phase 1: lr $LR for $(minutes "$(awk -v s=$training -v f="$PHASE1" 'BEGIN { print s * f }')") min"
train "$(minutes "$(awk -v s=$training -v f="$PHASE1" 'BEGIN { print s * f }')")" --lr "$LR" || echo "phase 1 failed"
if [ -f "$RUN/model/checkpoint/state.json" ]; then
  lr2=$(awk -v l="$LR" 'BEGIN { print l / 10 }')
  echo "== phase 2: resumed at lr $lr2 for $(minutes $(($(left) - RESERVE))) min"
  train "$(minutes $(($(left) - RESERVE)))" --resume --lr "$lr2" || echo "phase 2 failed"
fi

echo "== evaluation on the packed validation photos"
for w in model model-int8; do
  for mode in centre ten-crop; do
    flag=$([ $mode = ten-crop ] && echo --ten-crop)
    [ -f "$RUN/model/$w.safetensors" ] && timeout 60 "$T" --backend "$BACKEND" eval --weights "$RUN/model/$w.safetensors" \
      --data "$PACK/data" --batch-size "$BATCH" --json $flag >"$RUN/eval-$w-$mode.json" \
      && echo "$w $mode: $(head -c 100 "$RUN/eval-$w-$mode.json")"
  done
done

echo "== packing"
cd "$RUN" || exit 1
cp model/metrics.csv model/metrics.json model/curves.svg model/run.json model/checkpoint/state.json . 2>/dev/null
sha256sum model/*.safetensors 2>/dev/null | tee sha256.txt
tar czf "$OUT/results.tgz" ./*.json ./*.txt ./*.csv ./*.svg 2>/dev/null
# The smallest weights to bring back: int8 (a quarter of f32), in 15 MB parts.
if [ -f model/model-int8.safetensors ]; then
  split -b 15000000 -d model/model-int8.safetensors "$OUT/model-int8.part-"
fi
ls -la "$OUT"
echo "done with $(left) s of the budget left"
[ -f model/model-int8.safetensors ]
