#!/usr/bin/env bash
# Prepares, on this (x86-64) machine, everything scripts/gpu-train.sh needs on a GPU machine that
# may have no internet: in PACK (default .gpu/, ignored by git), to copy there beside the repository
# (pack, copy, run, bring back):
#
#   trainer.xz   the trainer with CUDA and wgpu, Burn's autotune and fusion, built against CUDA
#                13.0 (CUDARC_CUDA_VERSION=13000: an NVRTC newer than the machine's driver fails)
#   data/train   the training photos (default: Imagenette's train split at 160 px, 39.6 MiB)
#   data/val     VAL_PER_CLASS validation photos per class, shrunk to 160 px (the full split is
#                evaluated back here, at 224 px, by `trainer eval`)
#   gl/*.deb     Vulkan and EGL loaders, for the wgpu fallback through NVIDIA's Vulkan driver
#
#   scripts/gpu-pack.sh                 then, on the GPU machine: `PACK=.gpu scripts/gpu-train.sh`
#
# Settings (environment): PACK, FEATURES (cuda,wgpu), TRAIN (the train folder to copy),
# TRAIN_PER_CLASS (all), VAL_PER_CLASS (50), MAX_CLASSES (all), LIMIT_MB (64: the most that may be
# copied to the GPU machine, the repository's own files included; 0 for no limit).
set -euo pipefail
cd "$(dirname "$0")/.."
data="${ALEXNET_DATA:-$(cd .. && pwd)/shared/data}"
PACK=${PACK:-.gpu}
FEATURES=${FEATURES:-cuda,wgpu}
TRAIN=${TRAIN:-$data/imagenette-160/train}
VAL=${VAL:-$data/imagenette/val}
VAL_PER_CLASS=${VAL_PER_CLASS:-50}
target="${CARGO_TARGET_DIR:-target}"

rm -rf "$PACK" && mkdir -p "$PACK/data/train" "$PACK/data/val" "$PACK/gl"
echo "== building the trainer (features $FEATURES)"
CUDARC_CUDA_VERSION=13000 cargo build --release -p trainer --features "$FEATURES"
strip -o "$PACK/trainer" "$target/release/trainer"
xz -T0 -6 "$PACK/trainer"

echo "== data: $TRAIN, $VAL_PER_CLASS val photos per class"
# awk reads to the end (head would stop early: sort then dies of SIGPIPE under pipefail).
classes=$(ls "$TRAIN" | sort | awk -v n="${MAX_CLASSES:-1000}" 'NR <= n')
for class in $classes; do
  mkdir -p "$PACK/data/train/$class"
  ls "$TRAIN/$class" | sort | awk -v n="${TRAIN_PER_CLASS:-100000}" 'NR <= n' | while read -r f; do
    cp "$TRAIN/$class/$f" "$PACK/data/train/$class/"
  done
done
/usr/bin/python3 - "$VAL" "$PACK/data/val" "$VAL_PER_CLASS" $classes <<'PY'
import os, sys
from PIL import Image
src, dst, n, classes = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
for c in classes:
    os.makedirs(os.path.join(dst, c), exist_ok=True)
    for f in sorted(os.listdir(os.path.join(src, c)))[:n]:
        im = Image.open(os.path.join(src, c, f)).convert("RGB")
        im.resize((160, 160), Image.BICUBIC).save(os.path.join(dst, c, f), quality=60)
PY

echo "== Vulkan/EGL loaders (used only if the machine has none)"
apt_lists=/tmp/alexnet-gpu-apt
mkdir -p "$apt_lists/partial"
o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$apt_lists")
if apt-get "${o[@]}" update -qq && (cd "$PACK/gl" && apt-get "${o[@]}" download -qq libvulkan1 libegl1 libglvnd0); then
  ls "$PACK/gl"
else
  echo "warning: could not download the loaders; the wgpu fallback needs the machine's own"
fi

size=$(du -sb "$PACK" | cut -f1)
repo=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
limit_mb=${LIMIT_MB:-64}
echo "== $PACK: $((size / 1048576)) MiB; with the repository's tracked files $(((size + repo) / 1048576)) MiB (LIMIT_MB $limit_mb)"
if [ "$limit_mb" -gt 0 ] && [ $((size + repo)) -gt $((limit_mb * 1048576)) ]; then
  echo "error: over LIMIT_MB ($limit_mb MiB) to copy to the GPU machine (LIMIT_MB=0: no limit)" >&2
  exit 1
fi
