"""PyTorch's inference speed on a trained run, to set beside `spidernet predict` (docs/PERFORMANCE.md, *predict and
eval on 10,000 images*): the run's network from the spidernet_torch package, evaluation mode, no gradients,
batches of 128, in NCHW and in channels-last.

    .venv/bin/python bench/infer.py RUN_DIR IDX_IMAGES [--threads 2] [--batch 128]
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import spidernet_torch  # noqa: E402


def read_idx_images(path):
    """An IDX image file (gzipped or not) as (N, 1, H, W) float32 in [0, 1]."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[:4] != bytes([0, 0, 8, 3]):
        raise SystemExit(f"error: {path} is not an IDX file of unsigned-byte images")
    n, h, w = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    return torch.from_numpy(np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, 1, h, w).copy()).float() / 255


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run")
    parser.add_argument("images")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = spidernet_torch.load(args.run)
    x = model.normalize(read_idx_images(args.images))
    for layout in ("nchw", "channels_last"):
        if layout == "channels_last":
            model = model.to(memory_format=torch.channels_last)
        start = time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(x), args.batch):
                batch = x[i:i + args.batch]
                if layout == "channels_last":
                    batch = batch.contiguous(memory_format=torch.channels_last)
                model(batch)
        seconds = time.perf_counter() - start
        print(f"{layout}: {seconds:.1f} s, {len(x) / seconds:.0f} images/s")


if __name__ == "__main__":
    main()
