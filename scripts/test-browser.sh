#!/usr/bin/env bash
# The browser tests: builds the page with trunk, prepares weights and the native trainer's answers
# for them, then drives headless Chromium (WebGPU on SwiftShader, and the CPU fallback).
set -euo pipefail
cd "$(dirname "$0")/.."
data="${ALEXNET_DATA:-$(cd .. && pwd)/shared/data}"
fixtures="${ALEXNET_WEB_FIXTURES:-$(mktemp -d)}"
target="${CARGO_TARGET_DIR:-target}"

# Built exactly as the test command builds it (same packages, dev-dependency features), so the
# burn stack is not compiled a second time.
cargo test --release --workspace --exclude alexnet-web --no-run
trainer="$target/release/trainer"

# A seeded torchvision AlexNet (fc8 scaled so the top-5 means something), as f16 weights.
/usr/bin/python3 tests/parity/make_fixtures.py "$fixtures/torch" "$data"/photos/*
"$trainer" import-torchvision "$fixtures/torch/torchvision.pth" --out "$fixtures/model.safetensors" --f16
rm -rf "$fixtures/torch"
"$trainer" predict --json --weights "$fixtures/model.safetensors" "$data"/photos/* > "$fixtures/native.jsonl"

# The shipped model (web/model/manifest.json) on one Imagenette validation photo per class.
shipped="web/model/$(/usr/bin/python3 -c 'import json; print(json.load(open("web/model/manifest.json"))["file"])')"
mkdir -p "$fixtures/shipped"
for class in "$data"/imagenette/val/*/; do
  cp "$class$(ls "$class" | sort | head -1)" "$fixtures/shipped/"
done
"$trainer" predict --json --weights "$shipped" "$fixtures"/shipped/* > "$fixtures/shipped.jsonl"

# Bad files: text renamed .jpg, a truncated PNG, an empty file, a 20000x20000 PNG (1.2 GB of pixels).
echo "this is not an image" > "$fixtures/text.jpg"
head -c 20000 "$data/photos/chelsea.png" > "$fixtures/truncated.png"
: > "$fixtures/empty.png"
/usr/bin/python3 - "$fixtures/huge.png" <<'PY'
import struct, sys, zlib
w = h = 20000
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
z = zlib.compressobj(9)
row = b"\0" * (1 + 3 * w)
idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()
with open(sys.argv[1], "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
PY

trunk build --release
(cd web && npm ci --no-audit --no-fund)
cd web && ALEXNET_DATA="$data" ALEXNET_WEB_FIXTURES="$fixtures" node --test --test-concurrency=1 tests/
