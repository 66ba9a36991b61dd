"""The models of scripts/bench-ort.sh as ONNX files, for ONNX Runtime Web beside our page.

    /usr/bin/python3 bench/export_onnx.py OUT_DIR [OUR_F32_WEIGHTS]

Writes OUT_DIR/torchvision.pth and OUT_DIR/torchvision.onnx: torchvision's AlexNet with seeded
random weights (`trainer import-torchvision` turns the .pth into our format, so that both sides
run the same weights). With OUR_F32_WEIGHTS (a paper-preset file of ours in f32, e.g. the shipped
model after `trainer convert --precision f32`), also OUT_DIR/ours.onnx: the same network rebuilt
in PyTorch from the file's own tensor shapes (any width; groups and LRN as the paper's).
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision import models


def read_safetensors(path):
    """{name: float32 array} of a safetensors file (our files keep f32 tensors as F32)."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "F32":
            sys.exit(f"{path}: {name} is {meta['dtype']}, not F32: convert the file with `trainer convert --precision f32`")
        start, end = meta["data_offsets"]
        tensors[name] = np.frombuffer(body[start:end], dtype="<f4").reshape(meta["shape"])
    return tensors


# The parity fixtures' paper network (written independently of our Rust code), for its forward.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "parity"))
from make_fixtures import PaperAlexNet  # noqa: E402


class ShapedPaperAlexNet(PaperAlexNet):
    """The paper preset shaped by a weights file (any width): conv2/4/5 in groups, LRN after conv1
    and conv2, as PaperAlexNet, with the file's channel counts."""

    def __init__(self, shapes):
        nn.Module.__init__(self)
        c = {k: shapes[f"{k}.weight"] for k in ("conv1", "conv2", "conv3", "conv4", "conv5")}
        groups = lambda k, prev: c[prev][0] // c[k][1]
        self.conv1 = nn.Conv2d(3, c["conv1"][0], 11, stride=4, padding=2)
        self.conv2 = nn.Conv2d(c["conv1"][0], c["conv2"][0], 5, padding=2, groups=groups("conv2", "conv1"))
        self.conv3 = nn.Conv2d(c["conv2"][0], c["conv3"][0], 3, padding=1, groups=groups("conv3", "conv2"))
        self.conv4 = nn.Conv2d(c["conv3"][0], c["conv4"][0], 3, padding=1, groups=groups("conv4", "conv3"))
        self.conv5 = nn.Conv2d(c["conv4"][0], c["conv5"][0], 3, padding=1, groups=groups("conv5", "conv4"))
        self.lrn = nn.LocalResponseNorm(5, alpha=1e-4 * 5, beta=0.75, k=2.0)
        self.pool = nn.MaxPool2d(3, 2)
        # Burn keeps a linear layer's weight as [inputs, outputs], PyTorch as [outputs, inputs].
        self.fc6 = nn.Linear(*shapes["fc6.weight"])
        self.fc7 = nn.Linear(*shapes["fc7.weight"])
        self.fc8 = nn.Linear(*shapes["fc8.weight"])


def export(model, path):
    torch.onnx.export(model.eval(), torch.zeros(1, 3, 224, 224), path, input_names=["images"],
                      output_names=["logits"], opset_version=13)


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(2012)
    tv = models.alexnet(weights=None).eval()
    torch.save(tv.state_dict(), out / "torchvision.pth")
    export(tv, out / "torchvision.onnx")
    if len(sys.argv) > 2:
        tensors = read_safetensors(sys.argv[2])
        ours = ShapedPaperAlexNet({k: v.shape for k, v in tensors.items()})
        ours.load_state_dict({k: torch.from_numpy(v.T.copy() if k.startswith("fc") and k.endswith("weight") else v.copy())
                              for k, v in tensors.items()})
        export(ours, out / "ours.onnx")


if __name__ == "__main__":
    main()
