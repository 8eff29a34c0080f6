"""A trained spidernet run folder as a PyTorch module: `load(run_dir)` and the `SpiderNet` it returns."""
import json
import math
import os
import warnings

import torch

from .network import Net
from .safetensors import SafetensorsError, read_safetensors

GENOTYPE, WEIGHTS, NORMALIZATION, CLASSES = "genotype.json", "weights.safetensors", "normalization.json", "classes.json"


class RunFolderError(ValueError):
    """A run folder this package cannot load: the message names the file and what is wrong with it."""


def _state_names(module):
    """The module's state_dict names and shapes, without the batch norms' num_batches_tracked."""
    return {k: tuple(v.shape) for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}


class SpiderNet(Net):
    """A trained spidernet network: `forward` gives the final classifier's logits, `forward_all` every tower's.

    Parameter and buffer names are our tensor names (docs/EXPORT.md). Gates are parameters whose forward value is
    exactly 0 or 1 (open while > 0) with a straight-through gradient. `drop_path` (default 0) is the probability of
    dropping an op's output per sample, applied only in training mode. `mean` and `std` hold the input normalisation
    as non-persistent buffers, so that they stay out of the state_dict.
    """

    def __init__(self, genotype, mean, std, classes):
        super().__init__(genotype)
        self.genotype = genotype
        self.classes = list(classes)
        self.drop_path = 0.0
        shape = (1, len(mean), 1, 1)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(shape), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(shape), persistent=False)

    def forward_all(self, x):
        """Every tower's logits, a list of (N, classes) tensors, one per cell; the last is `forward`'s."""
        return super().forward(x, self.drop_path if self.training else 0.0)

    def forward(self, x):
        """The final classifier's logits (N, classes) for normalised images x (N, C, H, W) float32."""
        return self.forward_all(x)[-1]

    def normalize(self, images):
        """Images (N, C, H, W) with pixels in [0, 1] mapped to the network's input with normalization.json."""
        images = torch.as_tensor(images, device=self.mean.device).to(self.mean.dtype)
        return (images - self.mean) / self.std

    def tensors(self):
        """Our tensors by name, on the CPU: what weights.safetensors holds (write them with write_safetensors)."""
        return {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()
                if not k.endswith("num_batches_tracked")}


def _read_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise RunFolderError(f"{path}: missing; a run folder holds {what}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFolderError(f"{path}: cannot read {what}: {error}") from None


def _genotype_error(path, error):
    """A RunFolderError for a genotype.json whose content does not describe a network."""
    kind = "missing field" if isinstance(error, KeyError) else "bad value"
    return RunFolderError(f"{path}: not a genotype this package can build ({kind}: {error})")


def _input_shape(genotype, path):
    """(input channels, classes) of a genotype, or a RunFolderError naming genotype.json."""
    if not isinstance(genotype, dict):
        raise RunFolderError(f"{path}: not a genotype (expected a JSON object)")
    if genotype.get("format", 1) != 1:
        raise RunFolderError(f"{path}: genotype format {genotype['format']!r}; this package reads format 1")
    try:
        channels, classes = int(genotype["input"]["channels"]), int(genotype["classes"])
    except (KeyError, TypeError, ValueError) as error:
        raise _genotype_error(path, error) from None
    if channels < 1 or classes < 1:
        raise RunFolderError(f"{path}: {channels} input channels and {classes} classes")
    return channels, classes


def _normalization(path, channels):
    if not os.path.exists(path):
        warnings.warn(f"{path}: missing; normalize() will leave images unchanged (mean 0, std 1)")
        return [0.0] * channels, [1.0] * channels
    stats = _read_json(path, "the input's per-channel mean and std")
    try:
        mean, std = [float(v) for v in stats["mean"]], [float(v) for v in stats["std"]]
    except (KeyError, TypeError, ValueError) as error:
        raise RunFolderError(f"{path}: expected {{\"mean\": [numbers], \"std\": [numbers]}} ({error!r})") from None
    if len(mean) != channels or len(std) != channels:
        raise RunFolderError(f"{path}: {len(mean)} means and {len(std)} stds for {channels} input channels")
    if not all(math.isfinite(m) for m in mean) or not all(math.isfinite(s) and s > 0 for s in std):
        raise RunFolderError(f"{path}: means must be finite and stds finite and > 0, got {mean} and {std}")
    return mean, std


def _classes(path, count):
    if not os.path.exists(path):
        return [str(i) for i in range(count)]
    names = _read_json(path, "the class names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(names) != count:
        raise RunFolderError(f"{path}: expected a JSON list of {count} class-name strings")
    return names


def _check_weights(path, tensors, expected):
    """Raises a RunFolderError naming every tensor that is missing, unexpected or of the wrong shape."""
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    wrong = [f"{k} is {tuple(tensors[k].shape)}, expected {expected[k]}"
             for k in expected if k in tensors and tuple(tensors[k].shape) != expected[k]]
    problems = []
    for label, items in (("missing tensors", missing), ("unexpected tensors", unexpected), ("wrong shapes", wrong)):
        if items:
            shown = ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise RunFolderError(f"{path} does not fit genotype.json: " + "; ".join(problems))


def load(run_dir, device="cpu"):
    """The trained network of a run folder as a `SpiderNet` in evaluation mode on `device`."""
    run_dir = os.fspath(run_dir)
    if not os.path.isdir(run_dir):
        raise RunFolderError(f"{run_dir}: no such folder")
    genotype_path = os.path.join(run_dir, GENOTYPE)
    genotype = _read_json(genotype_path, "the network's architecture")
    channels, classes = _input_shape(genotype, genotype_path)
    mean, std = _normalization(os.path.join(run_dir, NORMALIZATION), channels)
    names = _classes(os.path.join(run_dir, CLASSES), classes)
    try:
        model = SpiderNet(genotype, mean, std, names)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as error:
        raise _genotype_error(genotype_path, error) from None
    weights_path = os.path.join(run_dir, WEIGHTS)
    try:
        tensors = read_safetensors(weights_path)
    except FileNotFoundError:
        raise RunFolderError(f"{weights_path}: missing; a run folder holds the trained network's tensors") from None
    except (OSError, SafetensorsError) as error:
        raise RunFolderError(f"{weights_path}: cannot read the trained network's tensors: {error}") from None
    _check_weights(weights_path, tensors, _state_names(model))
    model.load_state_dict(tensors, strict=False)  # only num_batches_tracked stays at its initial value
    return model.to(device).eval()
