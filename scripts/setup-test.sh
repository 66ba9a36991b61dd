#!/usr/bin/env bash
# Installs what the test suite needs, when it is missing: PyTorch and torchvision from Debian
# (the reference for the parity tests), Chromium for the browser tests, the wasm target, and the
# browser-test npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"

apt_missing=()
/usr/bin/python3 -c 'import torch, torchvision, PIL' 2>/dev/null \
  || apt_missing+=(python3-torch python3-torchvision python3-pil)
if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "installing ${apt_missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${apt_missing[@]}"
fi
