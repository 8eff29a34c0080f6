"""The published zero-cost proxies in PyTorch, written from their papers, to check spidernet's own (docs/METRICS.md,
*Metrics and rules*) and to score a spidernet network in Python.

    python -m spidernet_torch.proxies DIR

DIR holds `genotype.json`, `probe.json` ({"width": W}), `weights.safetensors` (the network's tensors by our names)
and `inputs.safetensors` (`images.<b>` and `labels.<b>` per batch). Prints the proxies' values as JSON.
"""
import copy
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from .network import Net
from .safetensors import read_safetensors


def weight_tensors(net):
    """The convolution and linear weights: the parameters of two or more dimensions."""
    return [p for p in net.parameters() if p.dim() >= 2]


def parameters(net):
    """Trainable scalars."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def naswot(net, images):
    """log|K_H| (Mellor et al., 2021): K_H[i, j] is the number of ReLU units on which images i and j agree (both
    active or both inactive), over one train-mode pass."""
    codes = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: codes.append((out > 0).reshape(len(images), -1)))
             for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net.train()
            net(images)
    finally:
        for hook in hooks:
            hook.remove()
    c = torch.cat(codes, 1).double() if codes else torch.zeros(len(images), 0, dtype=torch.double)
    units = c.shape[1]
    hamming = c @ (1 - c).T + (1 - c) @ c.T
    sign, log_abs = torch.linalg.slogdet(units - hamming)
    return log_abs.item() if sign.item() > 0 else -math.inf


def synflow(net, input_shape):
    """Σ|θ ⊙ ∂R/∂θ| over the weights (Tanaka et al., 2020), on a copy of `net` in f64 with every state entry
    replaced by its absolute value, R the sum of the final logits for one all-ones input, batch norms on running
    statistics."""
    net = copy.deepcopy(net).double().eval()
    with torch.no_grad():
        for value in net.state_dict().values():
            value.abs_()
    net.zero_grad()
    output = net(torch.ones((1,) + tuple(input_shape), dtype=torch.double))[-1]
    output.sum().backward()
    return sum((w * w.grad).abs().sum().item() for w in weight_tensors(net) if w.grad is not None)


def zico(net, batches, labels):
    """ZiCo (Li et al., 2023): per weight tensor, log Σ mean|g| / std(g) over the scalars whose gradient varies
    across the batches (population std), summed; g is the gradient of the final head's cross-entropy, train mode."""
    net.train()
    grads = [[] for _ in weight_tensors(net)]
    for images, target in zip(batches, labels):
        net.zero_grad()
        F.cross_entropy(net(images)[-1], target).backward()
        for store, w in zip(grads, weight_tensors(net)):
            g = w.grad if w.grad is not None else torch.zeros_like(w)
            store.append(g.detach().double().reshape(-1).clone())
    total = 0.0
    for store in grads:
        g = torch.stack(store)
        std = g.std(0, unbiased=False)
        varies = std != 0
        ratio = (g.abs().mean(0)[varies] / std[varies]).sum().item()
        if ratio != 0:
            total += math.log(ratio)
    return total


def load_probe(folder):
    """The network, its input shape, and the labelled batches of a probe folder."""
    with open(os.path.join(folder, "genotype.json")) as f:
        genotype = json.load(f)
    with open(os.path.join(folder, "probe.json")) as f:
        probe = json.load(f)
    net = Net(genotype, probe["width"])
    result = net.load_state_dict(read_safetensors(os.path.join(folder, "weights.safetensors")), strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise ValueError(f"weights do not fit the genotype: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}")
    inputs = read_safetensors(os.path.join(folder, "inputs.safetensors"))
    count = sum(name.startswith("images.") for name in inputs)
    batches = [inputs[f"images.{b}"] for b in range(count)]
    labels = [inputs[f"labels.{b}"].long() for b in range(count)]
    shape = (genotype["input"]["channels"], genotype["input"]["height"], genotype["input"]["width"])
    return net, shape, batches, labels


def main(argv=None):
    """Prints every proxy of a probe folder as JSON."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    net, shape, batches, labels = load_probe(argv[0])
    values = {
        "parameters": parameters(net),
        "naswot": naswot(copy.deepcopy(net), torch.cat(batches)),
        "synflow": synflow(net, shape),
        "zico": zico(copy.deepcopy(net), batches, labels),
    }
    print(json.dumps(values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
