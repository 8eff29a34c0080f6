#!/usr/bin/env python3
"""What a practitioner would train instead of searching: a plain small CNN or a small ResNet, in PyTorch,
channels-last, for a wall-time budget on an IDX data set (Fashion-MNIST by default), with the summary fields of
`spidernet search` (summary.json) so that both sit in one table.

  baselines.py --model cnn|resnet --time-budget 30m [--data-dir DIR] [--train-samples N] [--test-samples N]
               [--batch 64] [--lr 1e-3] [--patience 5] [--max-epochs N] [--seed 0] [--threads T]
               [--out summary.json]

The clock starts once the data are read and normalised (`load_seconds` reports that part) and stops after the last
evaluation, as `final_training_seconds` of a search counts its final training with its evaluation.
Training is Adam at a constant learning rate, mini-batches of 64, no augmentation, the inputs normalised by the
training images' mean and standard deviation. The test split is evaluated after every epoch (the curve), and the
run stops when the budget is spent (mid-epoch if need be, then one last evaluation) or when the test accuracy has
not improved for `--patience` epochs, or after `--max-epochs`. `--train-samples` takes a seeded subset of the training split, as
`spidernet search --final-samples` does; `--test-samples` the first N test images (for quick checks).
"""
import argparse
import gzip
import json
import os
import re
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def duration(text):
    """Seconds in '90', '90s', '30m', '2h' or '1h30m'."""
    parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", text.strip())
    if not text.strip() or parts is None:
        raise argparse.ArgumentTypeError(f"--time-budget {text}: not a duration like 90s, 30m or 2h")
    hours, minutes, seconds = (float(p) if p else 0.0 for p in parts.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise argparse.ArgumentTypeError(f"--time-budget {text}: must be more than zero")
    return total


def read_idx(path):
    """An IDX file, gzipped or not, as a numpy array."""
    candidates = [path, path + ".gz"]
    found = next((p for p in candidates if os.path.exists(p)), None)
    if found is None:
        sys.exit(f"error: {path}[.gz] does not exist (apt-get install dataset-fashion-mnist)")
    opener = gzip.open if found.endswith(".gz") else open
    with opener(found, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        sys.exit(f"error: {found} is not an IDX file of unsigned bytes")
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        sys.exit(f"error: {found} holds {body.size} values, its header says {shape}")
    return body.reshape(shape)


def load_split(folder, split):
    images_file, labels_file = FILES[split]
    images = read_idx(os.path.join(folder, images_file))
    labels = read_idx(os.path.join(folder, labels_file))
    if len(images) != len(labels):
        sys.exit(f"error: {folder}: {len(images)} {split} images but {len(labels)} labels")
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


class PlainCnn(nn.Module):
    """Two 3×3 convolutions with max-pooling, then two linear layers: the CNN of a first tutorial."""

    def __init__(self, channels, classes, side):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        pooled = side // 4
        self.fc1 = nn.Linear(64 * pooled * pooled, 128)
        self.fc2 = nn.Linear(128, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class SmallResNet(nn.Module):
    """A ResNet-8: a 3×3 stem of 16 channels, three stages of one basic block each (16, 32, 64 channels, the last
    two halving the resolution), global average pooling and a linear classifier."""

    def __init__(self, channels, classes, width=16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.stages = nn.Sequential(
            BasicBlock(width, width, 1), BasicBlock(width, 2 * width, 2), BasicBlock(2 * width, 4 * width, 2)
        )
        self.fc = nn.Linear(4 * width, classes)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def evaluate(model, images, labels, batch=500):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = images[start:start + batch].contiguous(memory_format=torch.channels_last)
            y = labels[start:start + batch]
            logits = model(x)
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    model.train()
    return loss / len(images), correct / len(images)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["cnn", "resnet"], required=True)
    parser.add_argument("--time-budget", type=duration, required=True)
    parser.add_argument("--data-dir", default=FASHION_MNIST)
    parser.add_argument("--train-samples", type=int)
    parser.add_argument("--test-samples", type=int)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--max-epochs", type=int, help="stop after this many epochs at most")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out")
    args = parser.parse_args()
    for name in ["train_samples", "test_samples", "batch", "patience", "max_epochs", "threads"]:
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} {value}: must be at least 1")

    loading = time.perf_counter()
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    train_x, train_y = load_split(args.data_dir, "train")
    test_x, test_y = load_split(args.data_dir, "test")
    rng = np.random.default_rng(args.seed)
    if args.train_samples and args.train_samples < len(train_x):
        keep = torch.from_numpy(rng.permutation(len(train_x))[:args.train_samples])
        train_x, train_y = train_x[keep], train_y[keep]
    if args.test_samples:
        test_x, test_y = test_x[:args.test_samples], test_y[:args.test_samples]
    mean, std = train_x.mean().item(), train_x.std().item()
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    channels, side = train_x.shape[1], train_x.shape[2]
    classes = int(max(train_y.max().item(), test_y.max().item())) + 1
    if args.model == "cnn":
        model = PlainCnn(channels, classes, side)
    else:
        model = SmallResNet(channels, classes)
    model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    start = time.perf_counter()
    load_seconds = start - loading
    deadline = start + args.time_budget

    curve, best, stale, seen, stopped = [], 0.0, 0, 0, None
    epoch = 0
    while stopped is None:
        epoch += 1
        order = torch.from_numpy(rng.permutation(len(train_x)))
        for first in range(0, len(order) - args.batch + 1, args.batch):
            index = order[first:first + args.batch]
            x = train_x[index].contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(index)
            if not np.isfinite(loss.item()):
                sys.exit(f"error: the training loss became {loss.item()} at epoch {epoch}")
            if time.perf_counter() >= deadline:
                stopped = f"the time budget of {args.time_budget:.0f} s was spent"
                break
        test_loss, test_accuracy = evaluate(model, test_x, test_y)
        curve.append({"epoch": epoch, "seconds": time.perf_counter() - start, "test_accuracy": test_accuracy})
        if test_accuracy > best:
            best, stale = test_accuracy, 0
        else:
            stale += 1
            if stopped is None and stale >= args.patience:
                stopped = f"test accuracy did not improve for {args.patience} epochs"
        if stopped is None and args.max_epochs is not None and epoch >= args.max_epochs:
            stopped = f"reached {args.max_epochs} epochs"
    seconds = time.perf_counter() - start
    summary = {
        "strategy": f"pytorch-{args.model}",
        "stopped": stopped,
        "epochs": epoch,
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "final_training_seconds": seconds,
        "load_seconds": load_seconds,
        "final_training_samples": len(train_x),
        "images_per_second": seen / seconds,
        "threads": torch.get_num_threads(),
        "time_budget_seconds": args.time_budget,
        "curve": curve,
    }
    line = json.dumps(summary)
    print(line)
    if args.out:
        temporary = args.out + ".tmp"
        with open(temporary, "w") as f:
            f.write(json.dumps(summary, indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, args.out)


if __name__ == "__main__":
    main()
