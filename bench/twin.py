#!/usr/bin/env python3
"""PyTorch twin of `spidernet bench`: the same networks, built from the same genotype.json files, timed the same way.

The network mirrors src/supernet (stem, per-cell rescalers, a batch norm per node, gated ops, one tower per cell) and
src/ops.rs (the seven ops); the training step mirrors src/train.rs (SGD with momentum and weight decay, drop-path,
auxiliary towers, gate clamping). Candidate scoring follows the reference procedure (REFERENCE §8): copy the network,
rebuild it at the thin widths, and run every repeat of the NTK (per-sample backward passes) and the LRC.

Usage: twin.py --genotypes DIR [--workloads a,b,c] [--repeats N] [--threads T] [--count-only]
Prints one JSON object per line, with the same fields as `spidernet bench --json`.
"""
import argparse
import copy
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-5
DROP_PATH = 0.2
AUX_WEIGHT = 0.4
GATE_INIT = 0.01
GATE_BOUND = 0.05
DEVICE = torch.device("cpu")
BATCH = 64
EVAL_BATCH = 256


def padding(kernel, stride, dilation):
    return (kernel * dilation - dilation + 1 - stride + 1) // 2


def bn(channels):
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.1)


class DepthwisePointwise(nn.Module):
    def __init__(self, channels, kernel, stride, dilation):
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel, stride, padding(kernel, stride, dilation), dilation,
                                   groups=channels, bias=False)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn = bn(channels)

    def forward(self, x):
        return self.bn(self.pointwise(self.depthwise(x)))


class Op(nn.Module):
    def __init__(self, name, channels, stride):
        super().__init__()
        self.name, self.stride = name, stride
        if name.startswith("sep_conv"):
            kernel = 3 if name == "sep_conv_3x3" else 5
            self.first = DepthwisePointwise(channels, kernel, stride, 1)
            self.relu = nn.ReLU()
            self.second = DepthwisePointwise(channels, kernel, 1, 1)
        elif name.startswith("dil_conv"):
            kernel = 3 if name == "dil_conv_3x3" else 5
            self.body = DepthwisePointwise(channels, kernel, stride, 2)
        self.gate = nn.Parameter(torch.tensor(GATE_INIT))

    def forward(self, x, drop_path):
        s = self.stride
        if self.name == "identity":
            y = x if s == 1 else x[:, :, ::s, ::s]
        elif self.name == "max_pool_3x3":
            y = F.max_pool2d(x, 3, s, 1)
        elif self.name == "avg_pool_3x3":
            y = F.avg_pool2d(x, 3, s, 1, count_include_pad=True)
        elif self.name.startswith("sep_conv"):
            y = self.second(self.relu(self.first(x)))
        else:
            y = self.body(x)
        w = self.gate
        y = y * ((w.detach() > 0).to(y.dtype) + (w - w.detach()))
        if drop_path > 0 and self.name != "identity":
            keep = 1.0 - drop_path
            mask = torch.bernoulli(torch.full((y.shape[0], 1, 1, 1), keep, device=y.device)) / keep
            y = y * mask
        return y


class Rescaler(nn.Module):
    def __init__(self, c_in, c_out, halvings):
        super().__init__()
        self.halvings = halvings
        self.project = c_in != c_out
        if self.project:
            self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
            self.bn = bn(c_out)

    def forward(self, x):
        if self.project:
            x = self.bn(self.conv(x))
        for _ in range(self.halvings):
            x = x[:, :, ::2, ::2]
        return x


class CellNet(nn.Module):
    def __init__(self, cell, channels, inputs):
        super().__init__()
        self.cell = cell
        self.channels = channels
        self.rescalers = nn.ModuleList(Rescaler(c, channels, h) for c, h in inputs)
        self.nodes = nn.ModuleList(bn(channels) for _ in range(cell["n_nodes"]))
        self.edges = nn.ModuleDict()
        for edge in cell["edges"]:
            stride = 2 if cell["index"] >= 1 and edge["from"] < cell["n_inputs"] else 1
            self.edges[str(edge["id"])] = nn.ModuleList(Op(op, channels, stride) for op in edge["ops"])
        self.disabled = set()

    def forward(self, dense, drop_path):
        cell = self.cell
        inbox = [None] * cell["n_nodes"]
        for i, (x, rescaler) in enumerate(zip(dense, self.rescalers)):
            inbox[i] = rescaler(x)
        output = cell["n_nodes"] - 1
        for v in range(cell["n_nodes"]):
            outgoing = [e for e in cell["edges"] if e["from"] == v and e["id"] not in self.disabled]
            if v != output and not outgoing:
                continue
            total = inbox[v]
            inbox[v] = None
            if total is None:
                continue
            h = self.nodes[v](total)
            if v == output:
                return h
            for edge in outgoing:
                for op in self.edges[str(edge["id"])]:
                    y = op(h, drop_path)
                    inbox[edge["to"]] = y if inbox[edge["to"]] is None else inbox[edge["to"]] + y
        raise RuntimeError("no path reaches the output node")


def levels(genotype, k):
    return max(k, 1) - 1


class Net(nn.Module):
    def __init__(self, genotype, width, in_channels=None):
        super().__init__()
        c_in = in_channels or genotype["input"]["channels"]
        width_of = lambda k: width << k
        self.stem_conv = nn.Conv2d(c_in, width_of(0), 3, 1, 1, bias=False)
        self.stem_bn = bn(width_of(0))
        self.cells = nn.ModuleList()
        self.towers = nn.ModuleList()
        for k, cell in enumerate(genotype["cells"]):
            level = levels(genotype, k)
            inputs = [(width_of(0), level)] + [(width_of(j), level - j) for j in range(k)]
            inputs = [(c, max(h, 0)) for c, h in inputs]
            self.cells.append(CellNet(cell, width_of(k), inputs))
            self.towers.append(nn.Linear(width_of(k), genotype["classes"]))

    def forward(self, x, drop_path=0.0):
        dense = [self.stem_bn(self.stem_conv(x))]
        logits = []
        for cell, tower in zip(self.cells, self.towers):
            out = cell(dense, drop_path)
            logits.append(tower(out.mean((2, 3))))
            dense.append(out)
        return logits

    def gates(self):
        return [p for n, p in self.named_parameters() if n.endswith(".gate")]


def synchronize():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def emit(workload, unit, values, **extra):
    record = {"workload": workload, "side": "pytorch", "unit": unit, "median": statistics.median(values),
              "values": values, **extra}
    print(json.dumps(record), flush=True)


def data(genotype, n, seed):
    g = torch.Generator().manual_seed(seed)
    shape = genotype["input"]
    images = torch.randn(n, shape["channels"], shape["height"], shape["width"], generator=g)
    labels = torch.randint(0, genotype["classes"], (n,), generator=g)
    return images.to(DEVICE), labels.to(DEVICE)


def train_throughput(name, genotype, repeats, steps):
    torch.manual_seed(0)
    net = Net(genotype, genotype["channels"]).to(DEVICE).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=3e-4)
    images, labels = data(genotype, BATCH * 4, 1)
    gates = net.gates()

    def step(i):
        b = i % 4
        x, y = images[b * BATCH:(b + 1) * BATCH], labels[b * BATCH:(b + 1) * BATCH]
        logits = net(x, DROP_PATH)
        loss = F.cross_entropy(logits[-1], y) + AUX_WEIGHT * sum(F.cross_entropy(l, y) for l in logits[:-1])
        optimizer.zero_grad()
        loss.backward()
        with torch.no_grad():
            _open = [bool(g > 0) for g in gates]
            for g in gates:
                g.clamp_(-GATE_BOUND, GATE_BOUND)
        optimizer.step()

    for i in range(3):
        step(i)
    synchronize()
    values = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(steps):
            step(i)
        synchronize()
        values.append(steps * BATCH / (time.perf_counter() - start))
    emit(f"a-train-{name}", "images/s", values, parameters=count(net), peak_rss_bytes=peak_rss_bytes())


def eval_throughput(name, genotype, repeats, steps):
    torch.manual_seed(0)
    net = Net(genotype, genotype["channels"]).to(DEVICE).eval()
    images, _ = data(genotype, EVAL_BATCH, 2)
    values = []
    with torch.no_grad():
        net(images)
        synchronize()
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(steps):
                net(images)
            synchronize()
            values.append(steps * EVAL_BATCH / (time.perf_counter() - start))
    emit(f"b-eval-{name}", "images/s", values, parameters=count(net))


def kaiming(net, mode):
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def rebuild(net, genotype, width, in_channels=None):
    """The reference's `upsize`: every live op, node BN and head rebuilt at the new width."""
    return Net(genotype, width, in_channels).to(DEVICE).train()


def ntk_kappa(net, batches):
    params = [p for n, p in net.named_parameters() if "weight" in n or n.endswith(".gate")]
    rows = []
    for x in batches:
        out = net(x)[-1].sum(1)
        for n in range(out.shape[0]):
            grads = torch.autograd.grad(out[n], params, retain_graph=True, allow_unused=True)
            rows.append(torch.cat([g.flatten() for g in grads if g is not None]))
    g = torch.stack(rows)
    eig = torch.linalg.eigvalsh(g @ g.t())
    kappa = (eig[-1] / eig[0]).item()
    return 1e5 if kappa != kappa else kappa


def lrc_count(net, batches):
    outputs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outputs.append(o)) for m in net.modules()
             if isinstance(m, nn.ReLU)]
    patterns = []
    with torch.no_grad():
        for x in batches:
            outputs.clear()
            net(x)
            patterns.append(torch.cat([o.flatten(1) for o in outputs], 1) > 0)
    for h in hooks:
        h.remove()
    return torch.unique(torch.cat(patterns), dim=0).shape[0]


def score_candidate(candidate, repeats, runs):
    genotype = candidate["on"]
    new_edges = set(candidate["new_edges"])
    cell = candidate["cell"]
    images, _ = data(genotype, 1000, 3)
    # Inputs are drawn before timing, as our scorer draws them once when it is built.
    prepared = []
    for r in range(repeats):
        g = torch.Generator().manual_seed(100 + r)
        order = torch.randperm(images.shape[0], generator=g)
        ntk_batches = [images[order[b * 64:(b + 1) * 64]] for b in range(3)]
        crops = []
        for _ in range(3):
            idx = torch.randint(0, images.shape[0], (1000,), generator=g)
            top = torch.randint(0, images.shape[2] - 2, (1000,), generator=g)
            left = torch.randint(0, images.shape[3] - 2, (1000,), generator=g)
            crops.append(torch.stack([images[i, :1, t:t + 3, l:l + 3]
                                      for i, t, l in zip(idx.tolist(), top.tolist(), left.tolist())]))
        prepared.append((ntk_batches, crops))
    values = []
    for _ in range(runs):
        start = time.perf_counter()
        full = Net(genotype, genotype["channels"])
        for ntk_batches, crops in prepared:
            on = copy.deepcopy(full)
            off = copy.deepcopy(on)
            on, off = rebuild(on, genotype, 3), rebuild(off, genotype, 3)
            off.cells[cell].disabled = set(new_edges)
            kaiming(on, "fan_out")
            off.load_state_dict(on.state_dict())
            kappa_on, kappa_off = ntk_kappa(on, ntk_batches), ntk_kappa(off, ntk_batches)
            thin_on = rebuild(copy.deepcopy(full), genotype, 1, in_channels=1)
            thin_off = rebuild(copy.deepcopy(full), genotype, 1, in_channels=1)
            thin_off.cells[cell].disabled = set(new_edges)
            kaiming(thin_on, "fan_in")
            thin_off.load_state_dict(thin_on.state_dict())
            _ = (kappa_on, kappa_off, lrc_count(thin_on, crops), lrc_count(thin_off, crops))
        synchronize()
        values.append(time.perf_counter() - start)
    emit("c-score-candidate", "s", values)


def count(net):
    return sum(p.numel() for p in net.parameters())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genotypes", required=True, help="folder written by spidernet bench --write-genotypes")
    parser.add_argument("--workloads", default="a,b,c")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="training steps (and eval passes) per repeat")
    parser.add_argument("--score-runs", type=int, default=1, help="candidates scored for (c)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--count-only", action="store_true", help="print parameter counts and stop")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    global DEVICE
    DEVICE = torch.device(args.device)
    genotypes = {}
    for name in ("initial", "grown"):
        path = os.path.join(args.genotypes, f"{name}.json")
        try:
            with open(path) as f:
                genotypes[name] = json.load(f)
        except (OSError, json.JSONDecodeError) as error:
            sys.exit(f"error: cannot read {path}: {error}")
    if args.count_only:
        for name, genotype in genotypes.items():
            print(json.dumps({"genotype": name, "parameters": count(Net(genotype, genotype["channels"]))}))
        return
    workloads = set(args.workloads.split(","))
    for name, genotype in genotypes.items():
        if "a" in workloads:
            train_throughput(name, genotype, args.repeats, args.steps)
        if "b" in workloads:
            eval_throughput(name, genotype, args.repeats, args.steps)
    if "c" in workloads:
        with open(os.path.join(args.genotypes, "candidate.json")) as f:
            score_candidate(json.load(f), 3, args.score_runs)


if __name__ == "__main__":
    main()
