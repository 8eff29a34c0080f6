"""Recomputes the train-free metrics of a `spidernet score --dump` folder in PyTorch, from the dumped networks and
inputs alone, and compares them with what spidernet reported (docs/METRICS.md, *Dump format*).

    python -m spidernet_torch.scoring DUMP_DIR [--json]

For every network and repeat: the NTK's gradient rows G (one backward per sample through the batch's train-mode
graph, w.r.t. every parameter named `*.weight` or `*.gate`), both condition numbers of G·Gᵀ, and the distinct ReLU
sign patterns over the crops. With `--dump-gradients`, κ is also recomputed from spidernet's own G. Exits with
status 1 when a value disagrees beyond the tolerances (see `disagreements`).
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn

from .network import Net
from .safetensors import read_safetensors

FAITHFUL_NAN_VALUE = 1e5
"""What the faithful κ is when λ_max/λ_min is not finite, as spidernet records it."""


class DumpError(ValueError):
    """A dump folder that cannot be read: the message names the file."""


def _json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise DumpError(f"cannot read {path}: {error}") from error


def load_network(dump, entry, repeat):
    """The scoring network `entry` of the manifest with the tensors of `repeat`, in train mode."""
    genotype = _json(os.path.join(dump, entry["genotype"]))
    net = Net(genotype, entry["width"], entry["input"]["channels"])
    tensors = read_safetensors(os.path.join(dump, entry["tensors"][repeat]))
    result = net.load_state_dict(tensors, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise DumpError(f"{entry['tensors'][repeat]} does not fit {entry['genotype']}: missing {missing[:5]}, "
                        f"unexpected {result.unexpected_keys[:5]}")
    return net.train()


def gradient_rows(net, batches):
    """G: per sample, the gradient of the sum of its final logits through the whole batch's graph."""
    params = [p for name, p in net.named_parameters() if name.endswith(".weight") or name.endswith(".gate")]
    rows = []
    for batch in batches:
        per_sample = net(batch)[-1].sum(-1)
        for n in range(len(batch)):
            grads = torch.autograd.grad(per_sample[n], params, retain_graph=True, allow_unused=True)
            rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                                   for g, p in zip(grads, params)]))
    return torch.stack(rows)


def conditioning(rows, threshold):
    """(sound κ, faithful κ, dropped eigenvalues) of G·Gᵀ, computed as spidernet computes them."""
    g64 = rows.double()
    eigen64 = torch.linalg.eigvalsh(g64 @ g64.T, UPLO="U")
    lambda_max = eigen64[-1].item()
    kept = eigen64[eigen64 > threshold * lambda_max]
    sound = lambda_max / kept[0].item() if len(kept) else math.inf
    g32 = rows.float()
    eigen32 = torch.linalg.eigvalsh(g32 @ g32.T, UPLO="U")
    faithful = (eigen32[-1] / eigen32[0]).item()
    if not math.isfinite(faithful):
        faithful = FAITHFUL_NAN_VALUE
    return sound, faithful, len(eigen64) - len(kept)


def region_count(net, batches):
    """Distinct sign patterns (> 0) of every ReLU's output over all crop batches together."""
    outputs = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out))
             for m in net.modules() if isinstance(m, nn.ReLU)]
    patterns = set()
    try:
        with torch.no_grad():
            for batch in batches:
                outputs.clear()
                net(batch)
                if outputs:
                    bits = torch.cat([o.reshape(len(batch), -1) > 0 for o in outputs], 1).numpy()
                else:
                    bits = np.zeros((len(batch), 0), dtype=bool)
                patterns.update(row.tobytes() for row in np.packbits(bits, axis=1))
    finally:
        for hook in hooks:
            hook.remove()
    return len(patterns)


def relative(a, b):
    """|a − b| / |b| (0 when both are 0)."""
    return abs(a - b) / abs(b) if b != 0 else abs(a)


def recompute(dump):
    """One record per (network, repeat): what spidernet reported and what PyTorch recomputes."""
    manifest = _json(os.path.join(dump, "scoring.json"))
    threshold = manifest["metrics"]["ntk_threshold"]
    inputs = []
    for file in manifest["inputs"]:
        tensors = read_safetensors(os.path.join(dump, file))
        inputs.append({kind: [tensors[f"{kind}.{b}"] for b in range(sum(k.startswith(kind + ".") for k in tensors))]
                       for kind in ("ntk", "lrc")})
    reported = {}
    for candidate in manifest["candidates"]:
        for repeat, values in enumerate(candidate["repeats"]):
            for side in ("on", "off"):
                reported[(candidate["networks"][f"ntk_{side}"], repeat)] = values[f"ntk_{side}"]
                reported[(candidate["networks"][f"lrc_{side}"], repeat)] = values[f"lrc_{side}"]
    records = []
    for entry in manifest["networks"]:
        for repeat in range(len(entry["tensors"])):
            net = load_network(dump, entry, repeat)
            want = reported[(entry["name"], repeat)]
            record = {"network": entry["name"], "repeat": repeat, "metric": entry["metric"]}
            if entry["metric"] == "ntk":
                rows = gradient_rows(net, inputs[repeat]["ntk"])
                sound, faithful, dropped = conditioning(rows, threshold)
                record.update(sound=sound, sound_reported=want["sound"], faithful=faithful,
                              faithful_reported=want["faithful"], dropped=dropped, dropped_reported=want["dropped"])
                if entry.get("gradients"):
                    theirs = read_safetensors(os.path.join(dump, entry["gradients"][repeat]))["rows"]
                    # Columns may come in another order, so the kernels G·Gᵀ are compared, not G.
                    ours_kernel, their_kernel = rows.double() @ rows.double().T, theirs.double() @ theirs.double().T
                    record["kernel_max_abs_difference"] = (ours_kernel - their_kernel).abs().max().item()
                    record["kernel_max_abs"] = their_kernel.abs().max().item()
                    from_dump = conditioning(theirs, threshold)
                    record.update(sound_from_dumped_rows=from_dump[0], faithful_from_dumped_rows=from_dump[1])
            else:
                record.update(regions=region_count(net, inputs[repeat]["lrc"]), regions_reported=want["regions"])
            records.append(record)
    return records


def disagreements(records, tolerance, recompute_tolerance):
    """The records that disagree: a region or dropped-eigenvalue count that differs at all; κ recomputed from
    spidernet's own rows beyond `tolerance`; the sound κ, or the kernel G·Gᵀ, recomputed from the networks beyond
    `recompute_tolerance` (relative). The faithful κ recomputed from the networks is never held to a tolerance: it
    divides by an eigenvalue that rounding alone decides (docs/METRICS.md)."""
    failed = []
    for r in records:
        if r["metric"] == "lrc":
            bad = r["regions"] != r["regions_reported"]
        else:
            bad = relative(r["sound"], r["sound_reported"]) > recompute_tolerance or r["dropped"] != r["dropped_reported"]
            if "sound_from_dumped_rows" in r:
                bad |= relative(r["sound_from_dumped_rows"], r["sound_reported"]) > tolerance
                bad |= relative(r["faithful_from_dumped_rows"], r["faithful_reported"]) > tolerance
                bad |= r["kernel_max_abs_difference"] > recompute_tolerance * r["kernel_max_abs"]
        if bad:
            failed.append(r)
    return failed


def main(argv=None):
    """Recomputes a dump, prints the comparison, and exits 1 on a disagreement."""
    parser = argparse.ArgumentParser(prog="python -m spidernet_torch.scoring", description=__doc__.split("\n")[0])
    parser.add_argument("dump", help="a folder written by `spidernet score --dump`")
    parser.add_argument("--tolerance", type=float, default=1e-6,
                        help="relative tolerance of κ recomputed from the dumped rows G (default 1e-6)")
    parser.add_argument("--recompute-tolerance", type=float, default=1e-5,
                        help="relative tolerance of the sound κ and of G·Gᵀ recomputed from the networks (default 1e-5)")
    parser.add_argument("--json", action="store_true", help="print the records as JSON")
    args = parser.parse_args(argv)
    try:
        records = recompute(args.dump)
    except DumpError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(records, indent=1))
    else:
        for r in records:
            if r["metric"] == "ntk":
                extra = ""
                if "sound_from_dumped_rows" in r:
                    extra = (f"; from the dumped G: sound rel {relative(r['sound_from_dumped_rows'], r['sound_reported']):.1e}"
                             f", faithful rel {relative(r['faithful_from_dumped_rows'], r['faithful_reported']):.1e}"
                             f"; G·Gᵀ max diff {r['kernel_max_abs_difference'] / r['kernel_max_abs']:.1e}"
                             f" of its largest entry")
                print(f"{r['network']:<22} repeat {r['repeat']}  κ sound {r['sound']:.6e} vs {r['sound_reported']:.6e}"
                      f" (rel {relative(r['sound'], r['sound_reported']):.1e}), faithful {r['faithful']:.4e} vs "
                      f"{r['faithful_reported']:.4e}, dropped {r['dropped']}/{r['dropped_reported']}{extra}")
            else:
                print(f"{r['network']:<22} repeat {r['repeat']}  regions {r['regions']} vs {r['regions_reported']}")
    failed = disagreements(records, args.tolerance, args.recompute_tolerance)
    print(f"{len(records) - len(failed)} of {len(records)} values agree", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
