#!/usr/bin/env python3
"""What a practitioner would train instead of searching, in PyTorch, channels-last, for a wall-time budget on an
IDX data set (Fashion-MNIST by default), with the summary fields of `spidernet search` (summary.json) so that both
sit in one table.

  baselines.py --model cnn|resnet|resnet9 --time-budget 30m [--data-dir DIR] [--train-samples N]
               [--test-samples N] [--width 16] [--batch B] [--lr LR] [--patience 5] [--max-epochs N]
               [--eval-every K] [--epochs N] [--flip on|off] [--seed 0] [--threads T] [--out summary.json]

The clock starts once the data are read and normalised (`load_seconds` reports that part) and stops after the last
evaluation, as `final_training_seconds` of a search counts its final training with its evaluation. The inputs are
normalised by the training images' mean and standard deviation. `--train-samples` takes a seeded subset of the
training split, as `spidernet search --final-samples` does; `--test-samples` the first N test images (for quick
checks).

Two recipes:

- **cnn, resnet** (a first tutorial's training): Adam at a constant learning rate (1e-3), mini-batches of 64, no
  augmentation. The test split is evaluated after every epoch, and the run stops when the budget is spent (mid-epoch
  if need be, then one last evaluation), when the test accuracy has not improved for `--patience` epochs, or after
  `--max-epochs`.
- **resnet9** (the standard recipe of a careful practitioner): a ResNet-9-style network (`--width`, 16 by default:
  about 0.4M parameters), random crops from a 2-pixel zero padding and horizontal flips, SGD with Nesterov momentum
  0.9 and weight decay 5e-4 on the convolution and linear weights only, label smoothing 0.1, mini-batches of 128,
  and a one-cycle learning rate (linear from 0.004 to the peak of 0.1 over the first 25 % of the budget, then
  linear to 0). The schedule runs on the wall clock: the learning rate at each step is set from the share of the
  training time spent so far, so it reaches 0 exactly when the time for training runs out, whatever the machine's
  speed; that time is the budget less the measured cost of the final evaluation. There is no early stop. The test
  split is evaluated after the first epoch, every `--eval-every` epochs (5) and at the end. `--epochs N` plans the
  same schedule over N epochs instead (by steps), for comparisons at equal epochs; the budget still caps the run.
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


class ConvBnRelu(nn.Sequential):
    """3×3 convolution, batch norm, ReLU."""

    def __init__(self, c_in, c_out):
        super().__init__(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class Residual(nn.Module):
    """x + two ConvBnRelu at the same width."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(ConvBnRelu(channels, channels), ConvBnRelu(channels, channels))

    def forward(self, x):
        return x + self.body(x)


class ResNet9(nn.Module):
    """The ResNet-9 layout (prep; layer 1 with a residual pair; layer 2; layer 3 with a residual pair; each layer a
    convolution and a 2×2 max-pool) at widths w, 2w, 4w, 8w, then a global max-pool and a linear classifier. At
    w = 64 it is the usual 6.6M-parameter network; w = 16 gives 0.41M."""

    def __init__(self, channels, classes, width=16):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            ConvBnRelu(channels, w),
            ConvBnRelu(w, 2 * w), nn.MaxPool2d(2), Residual(2 * w),
            ConvBnRelu(2 * w, 4 * w), nn.MaxPool2d(2),
            ConvBnRelu(4 * w, 8 * w), nn.MaxPool2d(2), Residual(8 * w),
        )
        self.fc = nn.Linear(8 * w, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_max_pool2d(self.body(x), 1), 1))


def augment(images, padding, fill, flip, generator):
    """Random crops of the batch from a padding of `padding` pixels of value `fill` (the normalised value of a black
    pixel), and a horizontal flip of a random half when `flip`."""
    n, _, h, w = images.shape
    padded = F.pad(images, (padding,) * 4, value=fill)
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    rows = (top[:, None] + torch.arange(h))[:, :, None]
    cols = (left[:, None] + torch.arange(w))[:, None, :]
    crops = padded[torch.arange(n)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
    if flip:
        mirror = torch.rand(n, generator=generator) < 0.5
        crops = torch.where(mirror[:, None, None, None], crops.flip(3), crops)
    return crops


def one_cycle(share, peak, warmup=0.25, start=0.04):
    """The learning rate when `share` of the training time is spent: linear from start·peak to peak over
    `warmup`, then linear to 0 at share 1."""
    share = min(max(share, 0.0), 1.0)
    if share < warmup:
        return peak * (start + (1 - start) * share / warmup)
    return peak * (1 - share) / (1 - warmup)


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


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["cnn", "resnet", "resnet9"], required=True)
    parser.add_argument("--time-budget", type=duration, required=True)
    parser.add_argument("--data-dir", default=FASHION_MNIST)
    parser.add_argument("--train-samples", type=int)
    parser.add_argument("--test-samples", type=int)
    parser.add_argument("--width", type=int, default=16, help="resnet9: channels of its first layer")
    parser.add_argument("--batch", type=int, help="mini-batch size (cnn, resnet: 64; resnet9: 128)")
    parser.add_argument("--lr", type=float, help="learning rate (cnn, resnet: 1e-3; resnet9: the peak, 0.1)")
    parser.add_argument("--patience", type=int, default=5, help="cnn, resnet: epochs without gain before stopping")
    parser.add_argument("--max-epochs", type=int, help="stop after this many epochs at most")
    parser.add_argument("--eval-every", type=int, default=5, help="resnet9: epochs between test evaluations")
    parser.add_argument("--epochs", type=int,
                        help="resnet9: plan the schedule over this many epochs instead of the budget (which still caps)")
    parser.add_argument("--flip", choices=["on", "off"], default="on", help="resnet9: horizontal flips")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out")
    args = parser.parse_args()
    for name in ["train_samples", "test_samples", "width", "batch", "patience", "max_epochs", "eval_every", "epochs",
                 "threads"]:
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} {value}: must be at least 1")
    if args.lr is not None and not args.lr > 0:
        parser.error(f"--lr {args.lr}: must be positive")
    standard = args.model == "resnet9"
    if args.epochs and not standard:
        parser.error("--epochs plans the schedule of --model resnet9 only")
    args.batch = args.batch or (128 if standard else 64)
    args.lr = args.lr or (0.1 if standard else 1e-3)
    return args


def load_data(args, rng):
    """(train_x, train_y, test_x, test_y, black): normalised images, labels, and the normalised black pixel."""
    train_x, train_y = load_split(args.data_dir, "train")
    test_x, test_y = load_split(args.data_dir, "test")
    if args.train_samples and args.train_samples < len(train_x):
        keep = torch.from_numpy(rng.permutation(len(train_x))[:args.train_samples])
        train_x, train_y = train_x[keep], train_y[keep]
    if args.test_samples:
        test_x, test_y = test_x[:args.test_samples], test_y[:args.test_samples]
    mean, std = train_x.mean().item(), train_x.std().item()
    return (train_x - mean) / std, train_y, (test_x - mean) / std, test_y, -mean / std


def build_model(args, channels, classes, side):
    if args.model == "cnn":
        model = PlainCnn(channels, classes, side)
    elif args.model == "resnet":
        model = SmallResNet(channels, classes)
    else:
        model = ResNet9(channels, classes, args.width)
    return model.to(memory_format=torch.channels_last)


class Run:
    """The clock, the curve and the counts of one training run."""

    def __init__(self, args, data, rng):
        self.args, self.rng = args, rng
        self.train_x, self.train_y, self.test_x, self.test_y, self.black = data
        self.curve, self.seen, self.epoch, self.stopped = [], 0, 0, None
        self.start = time.perf_counter()
        self.deadline = self.start + args.time_budget

    def batches(self):
        """The seeded index batches of one epoch (the last partial batch dropped)."""
        order = torch.from_numpy(self.rng.permutation(len(self.train_x)))
        for first in range(0, len(order) - self.args.batch + 1, self.args.batch):
            yield order[first:first + self.args.batch]

    def step(self, model, optimizer, x, y, label_smoothing=0.0):
        loss = F.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y,
                               label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        self.seen += len(y)
        if not np.isfinite(loss.item()):
            sys.exit(f"error: the training loss became {loss.item()} at epoch {self.epoch}")

    def evaluate(self, model):
        """Evaluates the test split and adds the point to the curve; returns (loss, accuracy)."""
        test_loss, test_accuracy = evaluate(model, self.test_x, self.test_y)
        self.curve.append({"epoch": self.epoch, "seconds": time.perf_counter() - self.start,
                           "test_accuracy": test_accuracy})
        return test_loss, test_accuracy


def train_tutorial(model, run):
    """Adam at a constant rate, an evaluation per epoch, early stop on `--patience` epochs without gain."""
    args = run.args
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    best, stale = 0.0, 0
    while run.stopped is None:
        run.epoch += 1
        for index in run.batches():
            run.step(model, optimizer, run.train_x[index], run.train_y[index])
            if time.perf_counter() >= run.deadline:
                run.stopped = f"the time budget of {args.time_budget:.0f} s was spent"
                break
        result = run.evaluate(model)
        if result[1] > best:
            best, stale = result[1], 0
        else:
            stale += 1
            if run.stopped is None and stale >= args.patience:
                run.stopped = f"test accuracy did not improve for {args.patience} epochs"
        if run.stopped is None and args.max_epochs is not None and run.epoch >= args.max_epochs:
            run.stopped = f"reached {args.max_epochs} epochs"
    return result


def train_standard(model, run):
    """The standard recipe: augmentation, SGD with Nesterov, weight decay on weights only, label smoothing, and a
    one-cycle learning rate on the wall clock that reaches 0 when the training time runs out."""
    args = run.args
    weights = [p for p in model.parameters() if p.ndim > 1]
    others = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD([{"params": weights, "weight_decay": 5e-4}, {"params": others, "weight_decay": 0}],
                                lr=0.0, momentum=0.9, nesterov=True)
    generator = torch.Generator().manual_seed(args.seed)
    # The final evaluation's cost, measured on the untrained network, is kept off the training time.
    probe = time.perf_counter()
    evaluate(model, run.test_x, run.test_y)
    training_end = run.deadline - 1.1 * (time.perf_counter() - probe)
    planned_steps = args.epochs * (len(run.train_x) // args.batch) if args.epochs else None
    steps = 0
    while run.stopped is None:
        run.epoch += 1
        for index in run.batches():
            share = (time.perf_counter() - run.start) / (training_end - run.start)
            if share >= 1:
                run.stopped = f"the time budget of {args.time_budget:.0f} s was spent"
                break
            if planned_steps:
                share = steps / planned_steps
            steps += 1
            for group in optimizer.param_groups:
                group["lr"] = one_cycle(share, args.lr)
            x = augment(run.train_x[index], 2, run.black, args.flip == "on", generator)
            run.step(model, optimizer, x, run.train_y[index], label_smoothing=0.1)
        if run.stopped is None and args.max_epochs is not None and run.epoch >= args.max_epochs:
            run.stopped = f"reached {args.max_epochs} epochs"
        if run.stopped is None and args.epochs is not None and run.epoch >= args.epochs:
            run.stopped = f"the {args.epochs} planned epochs are done"
        if run.stopped is None and (run.epoch == 1 or run.epoch % args.eval_every == 0):
            run.evaluate(model)
    return run.evaluate(model)


def main():
    args = parse_args()
    loading = time.perf_counter()
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    data = load_data(args, rng)
    train_x, train_y, test_x, test_y, _ = data
    classes = int(max(train_y.max().item(), test_y.max().item())) + 1
    model = build_model(args, train_x.shape[1], classes, train_x.shape[2])
    run = Run(args, data, rng)
    load_seconds = run.start - loading
    train = train_standard if args.model == "resnet9" else train_tutorial
    test_loss, test_accuracy = train(model, run)
    seconds = time.perf_counter() - run.start
    summary = {
        "strategy": f"pytorch-{args.model}",
        "stopped": run.stopped,
        "epochs": run.epoch,
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "final_training_seconds": seconds,
        "load_seconds": load_seconds,
        "final_training_samples": len(train_x),
        "images_per_second": run.seen / seconds,
        "threads": torch.get_num_threads(),
        "time_budget_seconds": args.time_budget,
        "recipe": {"batch": args.batch, "lr": args.lr, "width": args.width if args.model == "resnet9" else None},
        "curve": run.curve,
    }
    print(json.dumps(summary))
    if args.out:
        temporary = args.out + ".tmp"
        with open(temporary, "w") as f:
            f.write(json.dumps(summary, indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, args.out)


if __name__ == "__main__":
    main()
