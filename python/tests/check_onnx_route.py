#!/usr/bin/env python3
"""Checks the ONNX-to-PyTorch route: onnx2torch's conversion of an ONNX model from `spidernet export`.

  check_onnx_route.py ONNX_FILE

Converts the model with onnx2torch, runs it and onnxruntime on 100 random normalised inputs (and on a batch of 1),
and requires the logits to agree to 1e-4. Then reports what a converted model offers for training: its parameter
names, its batch norms, whether one SGD step in training mode gives every parameter a gradient, and what the
export left out (gates and the auxiliary towers, by the genotype in the model's metadata). Exits non-zero when the
conversion fails or the logits disagree.
"""
import json
import sys
import warnings

import numpy as np
import onnx
import onnxruntime
import torch
import torch.nn.functional as F

TOLERANCE = 1e-4


def report(name, **values):
    """Prints one measured result as a JSON line."""
    print(json.dumps({"check": name, **values}), flush=True)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_onnx_route.py ONNX_FILE")
    path = sys.argv[1]
    try:
        from onnx2torch import convert
    except ImportError as error:
        sys.exit(f"error: onnx2torch is not installed ({error}); scripts/setup.sh installs it")
    import importlib.metadata as metadata
    report("versions", onnx2torch=metadata.version("onnx2torch"), torch=torch.__version__,
           onnxruntime=onnxruntime.__version__, onnx=onnx.__version__)

    model = onnx.load(path)
    meta = {p.key: p.value for p in model.metadata_props}
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape  # ["batch", C, H, W]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = convert(model).eval()
        torch.manual_seed(0)
        # Normalised inputs: zero mean, unit variance per channel, as normalization.json makes them.
        x = torch.randn(100, *shape[1:])
        with torch.no_grad():
            mine = net(x).numpy()
            single = net(x[:1]).numpy()
    ours = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    diff = float(np.abs(mine - ours).max())
    diff_single = float(np.abs(single - ours[:1]).max())
    report("logits", images=len(x), max_abs_diff=diff, batch_of_one_max_abs_diff=diff_single,
           max_abs_logit=float(np.abs(ours).max()), predictions_differing=int((mine.argmax(1) != ours.argmax(1)).sum()))

    # Training: one SGD step on random labels in training mode.
    names = [n for n, _ in net.named_parameters()]
    batch_norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [bn.running_mean.clone() for bn in batch_norms]
    with warnings.catch_warnings(record=True) as caught_training:
        warnings.simplefilter("always")
        net.train()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
        labels = torch.randint(0, ours.shape[1], (len(x),))
        loss = F.cross_entropy(net(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        net.eval()
        with torch.no_grad():
            change = float(np.abs(net(x).numpy() - mine).max())
    without = [n for n, p in net.named_parameters() if p.grad is None]
    moved = sum(not torch.equal(b, bn.running_mean) for b, bn in zip(before, batch_norms))
    report("training", parameters=len(names), scalars=sum(p.numel() for p in net.parameters()),
           first_names=names[:4], batch_norms=len(batch_norms), batch_norms_with_updated_stats=moved,
           without_gradient=without[:5], max_eval_logit_change=change)

    messages = sorted({f"{w.category.__name__}: {str(w.message)[:110]}…" for w in caught + caught_training})
    report("warnings", messages=messages)

    if "genotype" in meta:
        genotype = json.loads(meta["genotype"])
        ops = sum(len(e["ops"]) for c in genotype["cells"] for e in c["edges"])
        report("left_out", gates_in_genotype=ops, gates_in_torch=sum(n.endswith("gate") for n in names),
               towers_in_genotype=len(genotype["cells"]),
               towers_in_torch=sum(isinstance(m, torch.nn.Linear) for m in net.modules()))

    if not diff <= TOLERANCE or not diff_single <= TOLERANCE:
        sys.exit(f"error: onnx2torch's logits differ from onnxruntime's by {max(diff, diff_single):.3e} > {TOLERANCE}")
    print("onnx2torch agrees with onnxruntime")


if __name__ == "__main__":
    main()
