#!/usr/bin/env bash
# Installs what the test suite needs, when missing: PyTorch and torchvision from Debian (the
# reference for the parity tests), Chromium for the browser tests, Mesa's lavapipe (a software
# Vulkan GPU) for the wgpu tests, OpenMPI and libclang for the trainer's `mpi` feature and its
# `mpirun` tests, the page's build tools
# (scripts/setup-web.sh), and the browser tests' npm package.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"

apt_missing=()
/usr/bin/python3 -c 'import torch, torchvision, PIL' 2>/dev/null \
  || apt_missing+=(python3-torch python3-torchvision python3-pil)
[ -x /usr/bin/chromium ] || apt_missing+=(chromium)
# Mesa's lavapipe: a Vulkan GPU emulated on the CPU, for the wgpu tests.
ls /usr/share/vulkan/icd.d/lvp_icd.* >/dev/null 2>&1 || apt_missing+=(mesa-vulkan-drivers)
# OpenMPI (mpirun, and the headers the `mpi` crate binds to through libclang).
command -v mpirun >/dev/null && [ -e /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h ] \
  || apt_missing+=(openmpi-bin libopenmpi-dev)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || apt_missing+=(libclang-dev)
# The page's tools build (CPU) while apt downloads and unpacks (network, disk), and so do the
# crates the tests and the page build from: the build that follows then only compiles.
scripts/setup-web.sh &
web_tools=$!
cargo fetch --quiet &
crates=$!
if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "installing ${apt_missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${apt_missing[@]}"
fi
wait "$web_tools"
wait "$crates"
