"""torchvision AlexNet throughput, for comparison with `trainer bench`.

    PYTHON bench/pytorch_alexnet.py [--batch-size 32] [--infer-batch-size 16] [--steps 5] [--device cuda]

Prints one JSON object: training (forward, backward, SGD step) and inference images/s.
"""
import argparse
import json
import os
import time

import torch
import torchvision


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--infer-batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="CPU threads (default: all cores, as `trainer bench` uses)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    model = torchvision.models.alexnet(weights=None).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(a.batch_size, 3, 224, 224, device=dev)
    y = torch.arange(a.batch_size, device=dev) % 1000

    def sync():
        # GPU work is asynchronous: wait for it before reading the clock.
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    model.train()
    step()
    sync()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    sync()
    train = a.steps * a.batch_size / (time.perf_counter() - t)

    model.eval()
    xi = torch.randn(a.infer_batch_size, 3, 224, 224, device=dev)
    with torch.no_grad():
        model(xi)
        sync()
        t = time.perf_counter()
        for _ in range(a.steps):
            model(xi)
        sync()
        infer = a.steps * a.infer_batch_size / (time.perf_counter() - t)
    print(json.dumps({
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "train_batch_size": a.batch_size,
        "train_images_per_sec": train,
        "infer_batch_size": a.infer_batch_size,
        "infer_images_per_sec": infer,
    }))


if __name__ == "__main__":
    main()
