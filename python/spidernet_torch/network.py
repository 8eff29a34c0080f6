"""The network of a genotype.json in PyTorch: the same network as src/supernet, src/nn/ops.rs and src/nn/pruner.rs.

Stem (3x3 conv, BN, no ReLU); per cell, one rescaler per dense input (1x1 conv + BN when the channels differ, then
every second row and column once per halving), one BN per node, on every edge each live op times its gate (exact 0/1
forward, straight-through gradient), drop-path on every op but identity; one GAP + linear tower per cell. Module
names follow our tensor names (docs/EXPORT.md), so that the state_dict of a `Net` is our weights.safetensors.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

GATE_INIT = 0.01
"""The value every gate starts at in a new network (src/nn/pruner.rs)."""

OPS = ("identity", "max_pool_3x3", "avg_pool_3x3", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
       "conv_1x1", "conv_3x3")
"""The op names a genotype's edges may hold (the published set and the dense one)."""


def padding(kernel, stride, dilation):
    """ceil((k*d - d + 1 - s) / 2), as src/nn/ops.rs computes it."""
    return (kernel * dilation - dilation + 1 - stride + 1) // 2


def batch_norm(channels):
    """A batch norm with our epsilon (1e-5) and momentum (0.1)."""
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)


class ConvBn(nn.Module):
    """Depthwise conv, pointwise 1x1 conv, BN: the body of a dil-conv and each half of a sep-conv."""

    def __init__(self, channels, kernel, stride, dilation):
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel, stride, padding(kernel, stride, dilation), dilation,
                                   groups=channels, bias=False)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn = batch_norm(channels)

    def forward(self, x):
        """BN(pointwise(depthwise(x)))."""
        return self.bn(self.pointwise(self.depthwise(x)))


class Op(nn.Module):
    """One gated op of an edge."""

    def __init__(self, name, channels, stride):
        super().__init__()
        self.name, self.stride = name, stride
        if name in ("sep_conv_3x3", "sep_conv_5x5"):
            kernel = int(name[-1])
            self.first = ConvBn(channels, kernel, stride, 1)
            self.relu = nn.ReLU()
            self.second = ConvBn(channels, kernel, 1, 1)
        elif name in ("conv_1x1", "conv_3x3"):
            kernel = int(name[-1])
            self.relu = nn.ReLU()
            self.conv = nn.Conv2d(channels, channels, kernel, stride, padding(kernel, stride, 1), bias=False)
            self.bn = batch_norm(channels)
        elif name in ("dil_conv_3x3", "dil_conv_5x5"):
            kernel = int(name[-1])
            self.depthwise = nn.Conv2d(channels, channels, kernel, stride, padding(kernel, stride, 2), 2,
                                       groups=channels, bias=False)
            self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
            self.bn = batch_norm(channels)
        elif name not in OPS:
            raise ValueError(f"unknown op {name!r}")
        self.gate = nn.Parameter(torch.tensor(GATE_INIT))

    def forward(self, x, drop_path):
        """The op's output times its gate (1 while the gate weight is > 0, else 0), with drop-path if asked."""
        s = self.stride
        if self.name == "identity":
            y = x if s == 1 else x[:, :, ::s, ::s]
        elif self.name == "max_pool_3x3":
            y = F.max_pool2d(x, 3, s, 1)
        elif self.name == "avg_pool_3x3":
            y = F.avg_pool2d(x, 3, s, 1, count_include_pad=True)
        elif self.name.startswith("sep_conv"):
            y = self.second(self.relu(self.first(x)))
        elif self.name.startswith("conv_"):
            y = self.bn(self.conv(self.relu(x)))
        else:
            y = self.bn(self.pointwise(self.depthwise(x)))
        w = self.gate
        # Straight-through: the value is exactly the 0/1 step, the gradient is that of y * w.
        y = y * ((w.detach() > 0).to(y.dtype) + (w - w.detach()))
        if drop_path > 0 and self.name != "identity":
            keep = 1.0 - drop_path
            mask = torch.bernoulli(torch.full((y.shape[0], 1, 1, 1), keep, device=y.device)) / keep
            y = y * mask
        return y


class Rescaler(nn.Module):
    """A cell's view of one dense input: 1x1 conv + BN where the channels differ, then one halving per level."""

    def __init__(self, c_in, c_out, halvings):
        super().__init__()
        self.halvings = halvings
        self.project = c_in != c_out
        if self.project:
            self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
            self.bn = batch_norm(c_out)

    def forward(self, x):
        """The input projected to the cell's channels and subsampled to its resolution."""
        if self.project:
            x = self.bn(self.conv(x))
        for _ in range(self.halvings):
            x = x[:, :, ::2, ::2]
        return x


class Node(nn.Module):
    """A node of a cell: the batch norm applied to the sum of its incoming edges."""

    def __init__(self, channels):
        super().__init__()
        self.bn = batch_norm(channels)


class Cell(nn.Module):
    """One cell: nodes in ascending order; a node's inbox is summed, batch-normed and sent along its live edges."""

    def __init__(self, cell, channels, inputs):
        super().__init__()
        self.spec = cell
        self.inputs = nn.ModuleList(Rescaler(c, channels, h) for c, h in inputs)
        self.nodes = nn.ModuleList(Node(channels) for _ in range(cell["n_nodes"]))
        self.edges = nn.ModuleDict()
        for edge in cell["edges"]:
            stride = 2 if cell["index"] >= 1 and edge["from"] < cell["n_inputs"] else 1
            self.edges[str(edge["id"])] = nn.ModuleDict({op: Op(op, channels, stride) for op in edge["ops"]})
        self.disabled = set()

    def forward(self, dense, drop_path):
        """The cell's output (its last node) from the dense inputs (the stem's output, then every earlier cell's)."""
        n = self.spec["n_nodes"]
        inbox = [None] * n
        for i, (x, rescaler) in enumerate(zip(dense, self.inputs)):
            inbox[i] = rescaler(x)
        output = n - 1
        for v in range(n):
            outgoing = [e for e in self.spec["edges"] if e["from"] == v and e["id"] not in self.disabled]
            if v != output and not outgoing:
                continue
            total, inbox[v] = inbox[v], None
            if total is None:
                continue
            h = self.nodes[v].bn(total)
            if v == output:
                return h
            for edge in outgoing:
                for op in self.edges[str(edge["id"])].values():
                    y = op(h, drop_path)
                    inbox[edge["to"]] = y if inbox[edge["to"]] is None else inbox[edge["to"]] + y
        raise RuntimeError("every path to the cell's output is switched off")


class Stem(nn.Module):
    """The stem: 3x3 convolution and batch norm, no ReLU."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)
        self.bn = batch_norm(c_out)


class Net(nn.Module):
    """The supernet of `genotype` with `width` channels in cell 0 (doubling per cell); PyTorch's default init."""

    def __init__(self, genotype, width=None, in_channels=None):
        super().__init__()
        width = width or genotype["channels"]
        c_in = in_channels or genotype["input"]["channels"]
        self.stem = Stem(c_in, width)
        self.cells = nn.ModuleList()
        self.towers = nn.ModuleList()
        for k, cell in enumerate(genotype["cells"]):
            level = max(k, 1) - 1
            # Dense inputs: the stem (level 0), then every earlier cell's output (cell j at level j).
            inputs = [(width, level)] + [(width << j, max(level - j, 0)) for j in range(k)]
            self.cells.append(Cell(cell, width << k, inputs))
            self.towers.append(nn.Linear(width << k, genotype["classes"]))

    def forward(self, x, drop_path=0.0):
        """Every tower's logits, one (N, classes) tensor per cell; the last is the network's classifier."""
        dense = [self.stem.bn(self.stem.conv(x))]
        logits = []
        for cell, tower in zip(self.cells, self.towers):
            out = cell(dense, drop_path)
            logits.append(tower(out.mean((2, 3))))
            dense.append(out)
        return logits

    def gates(self):
        """The gate parameters, in named_parameters order."""
        return [p for name, p in self.named_parameters() if name.endswith(".gate")]
