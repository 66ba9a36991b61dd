#!/usr/bin/env bash
# CPU throughput, ours against PyTorch, in one run on this machine: torchvision's AlexNet,
# training batch 32 and inference batch 16. PyTorch from Debian (/usr/bin/python3) always, and
# from PyPI when $PYPI_PYTHON names a venv's python with torch and torchvision installed
# (python3 -m venv V && V/bin/pip install torch torchvision; PYPI_PYTHON=V/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p trainer
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "ours (Burn Flex):"
"$target/release/trainer" --backend cpu bench --preset torchvision --batch-size 32 --infer-batch-size 16 --json
echo "PyTorch (Debian):"
/usr/bin/python3 bench/pytorch_alexnet.py
if [ -n "${PYPI_PYTHON:-}" ]; then
  echo "PyTorch (PyPI):"
  "$PYPI_PYTHON" bench/pytorch_alexnet.py
fi
