#!/usr/bin/env bash
# The browser tests: builds the page (scripts/build-web.sh), prepares weights and the native
# trainer's answers for them, then drives headless Chromium (WebGPU on SwiftShader, and the CPU
# fallback).
set -euo pipefail
cd "$(dirname "$0")/.."
data="${ALEXNET_DATA:-$(cd .. && pwd)/shared/data}"
fixtures="${ALEXNET_WEB_FIXTURES:-$(mktemp -d)}"
target="${CARGO_TARGET_DIR:-target}"

# Built exactly as the test command builds it (same packages, dev-dependency features), so the
# burn stack is not compiled a second time.
cargo test-all --no-run
trainer="$target/test-release/trainer"

# A seeded torchvision AlexNet (fc8 scaled so the top-5 means something), as f16 weights.
/usr/bin/python3 tests/parity/make_fixtures.py "$fixtures/torch" "$data"/photos/*
"$trainer" import-torchvision "$fixtures/torch/torchvision.pth" --out "$fixtures/model.safetensors" --precision f16
rm -rf "$fixtures/torch"
"$trainer" predict --json --weights "$fixtures/model.safetensors" "$data"/photos/* > "$fixtures/native.jsonl"

# The shipped model (web/model/manifest.json) on one Imagenette validation photo per class, and
# on photos of other classes: the first two it flags as none of its classes, and the first two it
# does not (the page must say the same).
shipped="web/model/$(/usr/bin/python3 -c 'import json; print(json.load(open("web/model/manifest.json"))["file"])')"
mkdir -p "$fixtures/shipped"
for class in "$data"/imagenette/val/*/; do
  cp "$class$(ls "$class" | sort | head -1)" "$fixtures/shipped/"
done
"$trainer" predict --json --weights "$shipped" "$data"/ood/* > "$fixtures/ood.jsonl"
/usr/bin/python3 - "$fixtures/ood.jsonl" <<'PY' | while read -r photo; do cp "$photo" "$fixtures/shipped/"; done
import json, sys
answers = [json.loads(line) for line in open(sys.argv[1])]
for flagged in (True, False):
    for a in [a for a in answers if a.get("out_of_classes") is flagged][:2]:
        print(a["image"])
PY
"$trainer" predict --json --weights "$shipped" "$fixtures"/shipped/* > "$fixtures/shipped.jsonl"

# Teaching: three of the dog breeds the shipped model never saw, five example photos each, and
# one more of each to classify.
for class in $(ls "$data/imagewoof-teach/train" | sort | head -3); do
  for split in train val; do
    mkdir -p "$fixtures/teach/$split/$class"
    count=5; [ "$split" = val ] && count=1
    for photo in $(ls "$data/imagewoof-teach/$split/$class" | sort | head -$count); do
      cp "$data/imagewoof-teach/$split/$class/$photo" "$fixtures/teach/$split/$class/"
    done
  done
done

# A narrow network (width 0.125) fitted to those teaching photos: live training on WebGPU
# fine-tunes it (SwiftShader is too slow for the shipped width), and its loss falls within a few
# steps, as it does not for a network trained from scratch.
"$trainer" --backend cpu train --data "$fixtures/teach" --out "$fixtures/narrow" --preset paper --width 0.125 \
  --init he --dropout 0 --lr 0.01 --lr-schedule cosine --batch-size 16 --epochs 100 --seed 1 --no-tui 2>&1 | tail -1
mv "$fixtures/narrow/model.safetensors" "$fixtures/narrow.safetensors"
rm -rf "$fixtures/narrow"

# Bad files: text renamed .jpg, a truncated PNG and JPEG, an empty file, a 20000x20000 PNG (1.2 GB
# of pixels), a 60000x1 PNG (259 bytes; 12 GB once its shorter side is resized to 256).
echo "this is not an image" > "$fixtures/text.jpg"
head -c 20000 "$data/photos/chelsea.png" > "$fixtures/truncated.png"
head -c 30000 "$data/photos/rocket.jpg" > "$fixtures/truncated.jpg"
: > "$fixtures/empty.png"
/usr/bin/python3 - "$fixtures" <<'PY'
import struct, sys, zlib
def png(path, w, h):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    z = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * w)
    idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
png(sys.argv[1] + "/huge.png", 20000, 20000)
png(sys.argv[1] + "/line.png", 60000, 1)
PY
# A weights file cut short (a failed download), and one whose metadata carries a script (the
# page must show it as text).
head -c 1000000 "$fixtures/model.safetensors" > "$fixtures/truncated-model.safetensors"
/usr/bin/python3 - "$fixtures/model.safetensors" "$fixtures/injected.safetensors" <<'PY'
import json, struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
info = json.loads(header["__metadata__"]["alexnet"])
info.setdefault("provenance", {})["dataset"] = "<img src=x onerror=window.injected=1>"
header["__metadata__"]["alexnet"] = json.dumps(info)
raw = json.dumps(header).encode()
raw += b" " * (-len(raw) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(raw)) + raw + data[8 + n:])
PY

scripts/build-web.sh
(cd web && npm ci --no-audit --no-fund)
trainer="$(realpath "$trainer")"
cd web && ALEXNET_DATA="$data" ALEXNET_WEB_FIXTURES="$fixtures" ALEXNET_TRAINER="$trainer" node --test --test-concurrency=1 tests/
