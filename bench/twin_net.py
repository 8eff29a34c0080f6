"""The supernet of a genotype.json in PyTorch, for the bench twins: the network itself lives in the spidernet_torch
package (python/spidernet_torch/network.py, the same network as src/supernet, src/nn/ops.rs and src/nn/pruner.rs);
this module adds what only the twins need: parameter counts, genotype reading and the check files.
"""
import json
import os
import sys

# The package's source folder, so that the bench scripts run without installing it.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from spidernet_torch.network import (GATE_INIT, Cell, ConvBn, Net, Node, Op, Rescaler, Stem,  # noqa: E402,F401
                                     batch_norm, padding)
from spidernet_torch.safetensors import SafetensorsError, read_safetensors as _read  # noqa: E402


def count(net):
    """Trainable scalars, gates included: what `Supernet::parameter_count` counts."""
    return sum(p.numel() for p in net.parameters())


def load_genotype(path):
    """The genotype at `path` as a dict; exits with a message when it cannot be read."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise SystemExit(f"error: cannot read the genotype {path}: {error}")


def read_safetensors(path):
    """The tensors of a safetensors file, by name; exits with a message when it cannot be read."""
    try:
        return _read(path)
    except (OSError, SafetensorsError) as error:
        raise SystemExit(f"error: {error}")


def load_check(net, path):
    """Loads our network's tensors (`net.<name>`) from a check file into `net`; returns the file's tensors."""
    tensors = read_safetensors(path)
    state = {name[4:]: t for name, t in tensors.items() if name.startswith("net.")}
    result = net.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise SystemExit(f"error: {path} does not fit the twin's network: missing {missing[:5]}, "
                         f"unexpected {result.unexpected_keys[:5]}")
    return tensors
