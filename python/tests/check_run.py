#!/usr/bin/env python3
"""Checks spidernet_torch against a trained run and our own evaluation of it.

  check_run.py RUN_DIR OUTPUTS

OUTPUTS is what `spidernet eval RUN_DIR --data DATA --outputs OUTPUTS` writes: `images` (N, C, H, W) f32, already
normalised, `labels` (N) i64 and `logits` (N, classes) f32, our evaluation-mode final logits. Checks that the package
reproduces those logits to 1e-4 and summary.json's test accuracy exactly, that its state_dict names are those of
weights.safetensors, that one SGD step trains it, and that broken run folders raise RunFolderError. Exits non-zero
on the first failed check; prints every measured number.
"""
import copy
import json
import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
# This checkout's package first, installed or not.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import spidernet_torch as st  # noqa: E402

TOLERANCE = 1e-4


def expect(condition, message):
    """Fails the check with `message` unless `condition` holds."""
    if not condition:
        raise AssertionError(message)


def report(name, **values):
    """Prints one measured result as a JSON line."""
    print(json.dumps({"check": name, **values}), flush=True)


def eval_logits(model, images, batch=256):
    """Evaluation-mode final logits of `images`, batch by batch."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model(images[i:i + batch]) for i in range(0, len(images), batch)])


def check_logits(model, outputs):
    """The package's logits equal ours to TOLERANCE."""
    ours = outputs["logits"]
    mine = eval_logits(model, outputs["images"])
    expect(mine.shape == ours.shape, f"logits have shape {tuple(mine.shape)}, ours {tuple(ours.shape)}")
    diff = (mine - ours).abs().max().item()
    disagree = (mine.argmax(1) != ours.argmax(1)).sum().item()
    report("logits", images=len(ours), max_abs_diff=diff, max_abs_logit=ours.abs().max().item(),
           predictions_differing=disagree)
    expect(diff <= TOLERANCE, f"logits differ from ours by {diff:.3e} > {TOLERANCE}")
    return mine


def check_accuracy(run_dir, logits, labels):
    """The package's accuracy equals summary.json's test_accuracy: the same count of correct predictions."""
    with open(os.path.join(run_dir, "summary.json")) as f:
        accuracy = json.load(f)["test_accuracy"]
    n = len(labels)
    correct = (logits.argmax(1) == labels).sum().item()
    expected = round(accuracy * n)
    report("accuracy", correct=correct, images=n, accuracy=correct / n, summary_test_accuracy=accuracy,
           summary_correct=expected)
    expect(abs(expected - accuracy * n) < 1e-6, f"summary.json's test_accuracy {accuracy} is not a count out of {n}")
    expect(correct == expected, f"{correct}/{n} correct, summary.json says {expected}/{n} ({accuracy})")


def check_names(model, run_dir):
    """state_dict names (less num_batches_tracked) are exactly weights.safetensors' names, with the same shapes."""
    tensors = st.read_safetensors(os.path.join(run_dir, "weights.safetensors"))
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    report("names", state_dict=len(state), safetensors=len(tensors),
           only_in_state_dict=sorted(set(state) - set(tensors))[:5],
           only_in_safetensors=sorted(set(tensors) - set(state))[:5])
    expect(set(state) == set(tensors), "state_dict names differ from weights.safetensors' names")
    for name, t in tensors.items():
        expect(torch.equal(state[name].cpu(), t.to(state[name].dtype)), f"{name} was not loaded as written")
    expect("mean" not in state and "std" not in state, "the normalisation buffers are in the state_dict")


def check_normalize(model, run_dir):
    """normalize() applies normalization.json."""
    with open(os.path.join(run_dir, "normalization.json")) as f:
        stats = json.load(f)
    c = len(stats["mean"])
    pixels = torch.rand(3, c, 4, 4)
    expected = (pixels - torch.tensor(stats["mean"]).view(1, c, 1, 1)) / torch.tensor(stats["std"]).view(1, c, 1, 1)
    diff = (model.normalize(pixels) - expected).abs().max().item()
    report("normalize", max_abs_diff=diff)
    expect(diff < 1e-6, f"normalize() is off by {diff}")


def op_prefix(name):
    """'cells.k.edges.id.op' for a parameter inside an op, else None."""
    parts = name.split(".")
    return ".".join(parts[:5]) if len(parts) > 5 and parts[0] == "cells" and parts[2] == "edges" else None


def check_training(model, outputs, before):
    """One SGD step in training mode gives every parameter a gradient and changes the evaluation logits."""
    model = copy.deepcopy(model)
    gates = {n[:-len(".gate")]: p.item() for n, p in model.named_parameters() if n.endswith(".gate")}
    closed = {op for op, w in gates.items() if w <= 0}
    torch.manual_seed(0)
    images, labels = outputs["images"][:64], outputs["labels"][:64]
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    towers = model.forward_all(images)
    # The final classifier's loss plus the auxiliary towers' (weight 0.4), so that every tower trains.
    loss = F.cross_entropy(towers[-1], labels) + 0.4 * sum(F.cross_entropy(t, labels) for t in towers[:-1])
    optimizer.zero_grad()
    loss.backward()
    no_grad, zero = [], []
    for name, p in model.named_parameters():
        if p.grad is None:
            no_grad.append(name)
        elif not torch.isfinite(p.grad).all():
            raise AssertionError(f"{name} has a non-finite gradient")
        elif p.grad.abs().max().item() == 0 and op_prefix(name) not in closed:
            zero.append(name)
    old = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer.step()
    moved = max((p.detach() - old[n]).abs().max().item() for n, p in model.named_parameters())
    flipped = [op for op, w in gates.items() if (w > 0) != (model.get_submodule(op).gate.item() > 0)]
    after = eval_logits(model, outputs["images"])
    change = (after - before).abs().max().item()
    report("training", loss=loss.item(), parameters=len(old), gates=len(gates), closed_gates=len(closed),
           without_gradient=no_grad[:5], zero_gradient_outside_closed_ops=zero[:5], max_parameter_change=moved,
           gates_flipped=flipped, max_eval_logit_change=change)
    expect(not no_grad, f"parameters without a gradient: {no_grad[:5]}")
    expect(not zero, f"parameters with an all-zero gradient outside closed ops: {zero[:5]}")
    expect(change > TOLERANCE, f"one SGD step changed the evaluation logits by only {change:.3e}")


def expect_error(run_dir, *words):
    """Loading `run_dir` raises RunFolderError whose message holds every one of `words`."""
    try:
        st.load(run_dir)
    except st.RunFolderError as error:
        message = str(error)
        expect(all(w in message for w in words), f"the error {message!r} does not name {words}")
        return message
    raise AssertionError(f"loading {run_dir} did not raise RunFolderError")


def check_errors(run_dir):
    """Broken run folders raise RunFolderError naming the file and the problem."""
    weights = st.read_safetensors(os.path.join(run_dir, "weights.safetensors"))
    removed = sorted(weights)[len(weights) // 2]
    messages = {}
    with tempfile.TemporaryDirectory() as tmp:
        def folder(name, tensors=weights, genotype=None, normalization=None):
            path = os.path.join(tmp, name)
            os.makedirs(path)
            for file in ("genotype.json", "normalization.json", "classes.json"):
                if os.path.exists(os.path.join(run_dir, file)):
                    shutil.copy(os.path.join(run_dir, file), path)
            if tensors is not None:
                st.write_safetensors(os.path.join(path, "weights.safetensors"), tensors)
            for file, text in (("genotype.json", genotype), ("normalization.json", normalization)):
                if text is not None:
                    with open(os.path.join(path, file), "w") as f:
                        f.write(text)
            return path

        messages["missing folder"] = expect_error(os.path.join(tmp, "no-such-run"), "no-such-run", "no such folder")
        missing = {k: v for k, v in weights.items() if k != removed}
        messages["missing tensor"] = expect_error(folder("missing", missing), "weights.safetensors", removed,
                                                  "missing")
        extra = {**weights, "cells.0.edges.999.identity.gate": torch.tensor(0.01)}
        messages["unexpected tensor"] = expect_error(folder("extra", extra), "cells.0.edges.999.identity.gate",
                                                     "unexpected")
        shaped = {**weights, "stem.conv.weight": torch.zeros(1, 1, 1, 1)}
        messages["wrong shape"] = expect_error(folder("shape", shaped), "stem.conv.weight", "(1, 1, 1, 1)")
        messages["no weights"] = expect_error(folder("no-weights", None), "weights.safetensors", "missing")
        no_genotype = folder("no-genotype")
        os.remove(os.path.join(no_genotype, "genotype.json"))
        messages["no genotype"] = expect_error(no_genotype, "genotype.json", "missing")
        messages["corrupt genotype"] = expect_error(folder("genotype", genotype="{\"cells\": ["), "genotype.json")
        messages["genotype without cells"] = expect_error(
            folder("no-cells", genotype=json.dumps({"input": {"channels": 1}, "classes": 10, "channels": 16})), "genotype.json",
            "cells")
        messages["bad normalization"] = expect_error(folder("norm", normalization="{\"mean\": [0.3], \"std\": [0]}"),
                                                     "normalization.json")
        # The writer and reader round-trip: a folder rewritten from model.tensors() loads to the same network.
        model = st.load(run_dir)
        same = st.load(folder("rewritten", model.tensors()))
        shape = model.genotype["input"]
        x = torch.randn(8, shape["channels"], shape["height"], shape["width"])
        roundtrip = (eval_logits(model, x) - eval_logits(same, x)).abs().max().item()
    report("errors", removed_tensor=removed, roundtrip_max_abs_diff=roundtrip, messages=messages)
    expect(roundtrip == 0, f"rewritten weights give logits {roundtrip} away")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_run.py RUN_DIR OUTPUTS")
    run_dir, outputs_path = sys.argv[1], sys.argv[2]
    outputs = st.read_safetensors(outputs_path)
    for name, dtype in (("images", torch.float32), ("labels", torch.int64), ("logits", torch.float32)):
        expect(name in outputs, f"{outputs_path} has no tensor {name!r}")
        expect(outputs[name].dtype == dtype, f"{outputs_path}: {name} is {outputs[name].dtype}, expected {dtype}")
    report("package", file=st.__file__, version=st.__version__, torch=torch.__version__)
    model = st.load(run_dir)
    logits = check_logits(model, outputs)
    check_accuracy(run_dir, logits, outputs["labels"])
    check_names(model, run_dir)
    check_normalize(model, run_dir)
    check_training(model, outputs, logits)
    check_errors(run_dir)
    print("all checks passed")


if __name__ == "__main__":
    main()
