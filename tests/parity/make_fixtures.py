"""Reference outputs from PyTorch for the Rust parity tests (tests/parity.rs).

Run with Debian's interpreter, which has python3-torch and python3-torchvision:
    /usr/bin/python3 tests/parity/make_fixtures.py OUT_DIR IMAGE...

Writes, for each preset (`torchvision`, `paper`), a seeded random model's state_dict
(`OUT_DIR/<preset>.pth`), and for each image torchvision's preprocessed input
(`OUT_DIR/input_<i>.f32`, little-endian float32 [3, 224, 224]) plus both models' logits
(`OUT_DIR/fixtures.json`).
"""
import json
import sys
from pathlib import Path

import torch
from torch import nn
from PIL import Image
from torchvision import models, transforms

# Random weights give a near-uniform softmax; scaling the last layer makes the top-5 meaningful.
TORCHVISION_FC8_SCALE = 400.0
PAPER_FC8_SCALE = 40.0
# Default init leaves conv1/conv2 activations small, where LRN's alpha term vanishes; this scale
# makes it change the logits by ~7 %, so a wrong LRN formula cannot pass the 1e-4 tolerance.
PAPER_CONV_SCALE = 8.0


class PaperAlexNet(nn.Module):
    """The 2012 paper's AlexNet, written independently of our Rust code: grouped conv2/4/5,
    LRN after conv1 and conv2, no average pool. Parameter names match ours (conv1..fc8)."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 11, stride=4, padding=2)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2, groups=2)
        self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
        self.conv4 = nn.Conv2d(384, 384, 3, padding=1, groups=2)
        self.conv5 = nn.Conv2d(384, 256, 3, padding=1, groups=2)
        # The paper's alpha (1e-4) multiplies the plain sum; PyTorch divides alpha by size.
        self.lrn = nn.LocalResponseNorm(5, alpha=1e-4 * 5, beta=0.75, k=2.0)
        self.pool = nn.MaxPool2d(3, 2)
        self.fc6 = nn.Linear(256 * 6 * 6, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, num_classes)

    def forward(self, x):
        x = self.pool(self.lrn(torch.relu(self.conv1(x))))
        x = self.pool(self.lrn(torch.relu(self.conv2(x))))
        x = torch.relu(self.conv3(x))
        x = torch.relu(self.conv4(x))
        x = self.pool(torch.relu(self.conv5(x)))
        x = torch.flatten(x, 1)
        x = torch.relu(self.fc6(x))
        x = torch.relu(self.fc7(x))
        return self.fc8(x)


def main():
    out = Path(sys.argv[1])
    images = sys.argv[2:]
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(2012)

    tv = models.alexnet(weights=None).eval()
    paper = PaperAlexNet().eval()
    with torch.no_grad():
        tv.classifier[6].weight.mul_(TORCHVISION_FC8_SCALE)
        paper.fc8.weight.mul_(PAPER_FC8_SCALE)
        for conv in (paper.conv1, paper.conv2):
            conv.weight.mul_(PAPER_CONV_SCALE)
    torch.save(tv.state_dict(), out / "torchvision.pth")
    torch.save(paper.state_dict(), out / "paper.pth")

    # torchvision's evaluation transform, on PIL images converted to RGB as ImageFolder does.
    transform = transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    inputs = []
    for i, path in enumerate(images):
        with Image.open(path) as img:
            x = transform(img.convert("RGB"))
        x.numpy().astype("<f4").tofile(out / f"input_{i}.f32")
        inputs.append(x)
    batch = torch.stack(inputs)
    with torch.no_grad():
        logits = {"torchvision": tv(batch), "paper": paper(batch)}
    fixtures = {
        "images": [
            {
                "path": str(path),
                "input": f"input_{i}.f32",
                "logits": {k: v[i].tolist() for k, v in logits.items()},
            }
            for i, path in enumerate(images)
        ]
    }
    (out / "fixtures.json").write_text(json.dumps(fixtures))


if __name__ == "__main__":
    main()
