#!/usr/bin/env python3
"""PyTorch twin of `spidernet bench`: the same workloads on the same networks, timed the same way.

Reads the folder `spidernet bench --write-genotypes DIR` leaves: the genotypes, bench.json (batch sizes, steps,
warm-up, metric and training settings, and our parameter counts) and the check tensors. Before any workload it
asserts that its networks have exactly our parameter counts. Prints one JSON line per workload with the fields of
`spidernet bench --json`.

  twin.py --genotypes DIR [--workload a,b,c] [--repeats N] [--threads T] [--device cpu|cuda]
          [--memory-format nchw|channels-last]
  twin.py --genotypes DIR --count-only   # parameter counts, ours and the twin's, then stop
  twin.py --genotypes DIR --check        # load our weights, compare logits with ours, then stop

(a) training: forward with drop-path and gates, loss with the auxiliary towers, backward, gate tracking and clamping,
SGD with momentum and weight decay, on random batches, after the warm-up steps, as src/train.rs `step`.
(b) evaluation: eval-mode forward passes under no_grad. (c) scoring one candidate: the reference's procedure, see
twin_score.py. (d) has no twin: the iteration's work is (a)'s training and (c)'s scoring, and which candidates get
scored depends on the metric values, which differ between two random initialisations.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from twin_net import Net, count, load_check, load_genotype  # noqa: E402
from twin_score import prepare_inputs, score_candidate, thin_parameter_counts  # noqa: E402

DEVICE = torch.device("cpu")
MEMORY_FORMAT = torch.contiguous_format
BATCHES = 4


class MemoryWindow:
    """Peak RSS the way src/system/memory_probe.rs measures it: reset VmHWM through /proc/self/clear_refs, then read it;
    on CUDA also the caching allocator's peaks, as `spidernet bench` reports them."""

    def __init__(self):
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        try:
            self.baseline = self.status("VmRSS:")
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.ok = True
        except OSError:
            self.ok = False

    @staticmethod
    def status(field):
        with open("/proc/self/status") as f:
            line = next(line for line in f if line.startswith(field))
        return int(line.split()[1]) * 1024

    def finish(self):
        fields = {"device": "cuda:0" if DEVICE.type == "cuda" else "cpu",
                  "memory_format": "channels-last" if MEMORY_FORMAT == torch.channels_last else "nchw"}
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
            fields["peak_device_allocated_bytes"] = torch.cuda.max_memory_allocated()
            fields["peak_device_reserved_bytes"] = torch.cuda.max_memory_reserved()
        if not self.ok:
            return {"peak_rss_bytes": None, "added_rss_bytes": None, **fields}
        peak = self.status("VmHWM:")
        return {"peak_rss_bytes": peak, "added_rss_bytes": max(peak - self.baseline, 0), **fields}


def synchronize():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def timed(repeats, work):
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return seconds


def emit(workload, unit, values, threads, window, **fields):
    record = {"workload": workload, "side": "pytorch", "unit": unit, "median": statistics.median(values),
              "values": values, "parameters": None, "edges": None, "batch": None, "threads": threads, **fields,
              **window.finish()}
    print(json.dumps(record), flush=True)


def random_batch(genotype, n, seed):
    gen = torch.Generator().manual_seed(seed)
    shape = genotype["input"]
    images = torch.randn(n, shape["channels"], shape["height"], shape["width"], generator=gen)
    labels = torch.randint(0, genotype["classes"], (n,), generator=gen)
    return images.to(DEVICE).contiguous(memory_format=MEMORY_FORMAT), labels.to(DEVICE)


def training(name, genotype, setup, args):
    window = MemoryWindow()
    config, train, pruner = setup["config"], setup["train"], setup["pruner"]
    torch.manual_seed(0)
    net = Net(genotype).to(DEVICE, memory_format=MEMORY_FORMAT).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=train["lr_max"], momentum=train["momentum"], dampening=0,
                                weight_decay=train["weight_decay"], nesterov=False)
    gates = net.gates()
    open_counts = [0] * len(gates)
    bound = abs(pruner["init"]) * pruner["clamp_factor"]
    batch = config["batch"]
    images, labels = random_batch(genotype, BATCHES * batch, 1)
    step = [0]

    def run(steps):
        for _ in range(steps):
            offset = (step[0] % BATCHES) * batch
            x, y = images[offset:offset + batch], labels[offset:offset + batch]
            logits = net(x, train["drop_path"])
            loss = F.cross_entropy(logits[-1], y)
            for head in logits[:-1]:
                loss = loss + F.cross_entropy(head, y) * train["aux_weight"]
            optimizer.zero_grad()
            loss.backward()
            with torch.no_grad():
                for i, is_open in enumerate(torch.stack([g.detach() for g in gates]).gt(0).tolist()):
                    open_counts[i] += is_open
                for g in gates:
                    g.clamp_(-bound, bound)
            optimizer.step()
            step[0] += 1

    run(config["warmup"])
    synchronize()
    seconds = timed(args.repeats, lambda: run(config["steps"]))
    values = [config["steps"] * batch / s for s in seconds]
    emit(f"a-train-{name}", "images/s", values, args.threads, window, parameters=count(net),
         edges=len([e for c in genotype["cells"] for e in c["edges"]]), batch=batch)


def evaluation(name, genotype, setup, args):
    window = MemoryWindow()
    config = setup["config"]
    torch.manual_seed(0)
    net = Net(genotype).to(DEVICE, memory_format=MEMORY_FORMAT).eval()
    images, _ = random_batch(genotype, config["eval_batch"], 2)

    def passes(n):
        for _ in range(n):
            net(images)

    with torch.no_grad():
        passes(config["warmup"])
        synchronize()
        seconds = timed(args.repeats, lambda: passes(config["steps"]))
    values = [config["steps"] * config["eval_batch"] / s for s in seconds]
    emit(f"b-eval-{name}", "images/s", values, args.threads, window, parameters=count(net),
         edges=len([e for c in genotype["cells"] for e in c["edges"]]), batch=config["eval_batch"])


def scoring(setup, args):
    window = MemoryWindow()
    metrics, candidate = setup["config"]["metrics"], setup["candidate"]
    genotype = load_genotype(os.path.join(args.genotypes, candidate["file"]))
    cell, new_edges = candidate["cell"], candidate["new_edges"]
    prepared = prepare_inputs(genotype, metrics, DEVICE, MEMORY_FORMAT)
    torch.manual_seed(0)
    full_on = Net(genotype).to(DEVICE)
    seconds = timed(args.repeats, lambda: score_candidate(full_on, genotype, cell, new_edges, metrics, prepared,
                                                          DEVICE, MEMORY_FORMAT))
    emit("c-score-candidate", "s", seconds, args.threads, window,
         edges=len([e for c in genotype["cells"] for e in c["edges"]]), batch=metrics["ntk_batch_size"])


def check_counts(setup, genotypes, candidate, verbose):
    """Asserts that every twin network has exactly as many parameters as ours."""
    rows = [(name, setup["genotypes"][name]["parameters"], count(Net(g))) for name, g in genotypes.items()]
    ntk, lrc = thin_parameter_counts(candidate, setup["config"]["metrics"])
    rows += [("candidate-ntk", setup["candidate"]["ntk_parameters"], ntk),
             ("candidate-lrc", setup["candidate"]["lrc_parameters"], lrc)]
    for name, ours, twin in rows:
        if verbose:
            print(json.dumps({"network": name, "spidernet": ours, "pytorch": twin}))
        if ours != twin:
            sys.exit(f"error: network {name}: spidernet has {ours} parameters, the twin {twin}; the twin does not "
                     f"build the same network")


def check_logits(setup, genotypes, folder):
    """Loads our tensors into the twin's networks and compares the logits of every tower with ours."""
    worst = 0.0
    for name, genotype in genotypes.items():
        net = Net(genotype)
        tensors = load_check(net, os.path.join(folder, setup["genotypes"][name]["check"]))
        with torch.no_grad():
            for mode, train in (("eval", False), ("train", True)):
                net.train(train)
                ours = tensors[f"logits_{mode}"]
                twin = torch.stack(net(tensors["input"]))
                diff = (twin - ours).abs().max().item()
                scale = max(ours.abs().max().item(), 1.0)
                print(json.dumps({"network": name, "mode": mode, "max_abs_diff": diff, "max_abs_logit": scale}))
                worst = max(worst, diff / scale)
    if worst > 1e-4:
        sys.exit(f"error: the twin's logits differ from ours by {worst:.2e} (relative); it is not the same network")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genotypes", required=True, help="folder written by spidernet bench --write-genotypes")
    parser.add_argument("--workload", default="a,b,c", help="comma-separated: a, b, c (d has no twin)")
    parser.add_argument("--repeats", type=int, help="timed repeats [default: as bench.json]")
    parser.add_argument("--threads", type=int, help="torch intra-op threads [default: as bench.json]")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--memory-format", default="nchw", choices=["nchw", "channels-last"],
                        help="layout of the networks and their inputs")
    parser.add_argument("--count-only", action="store_true", help="print both sides' parameter counts and stop")
    parser.add_argument("--check", action="store_true", help="compare logits with ours on our weights and stop")
    args = parser.parse_args()
    path = os.path.join(args.genotypes, "bench.json")
    try:
        with open(path) as f:
            setup = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        sys.exit(f"error: cannot read {path} (write it with spidernet bench --write-genotypes): {error}")
    args.repeats = setup["config"]["repeats"] if args.repeats is None else args.repeats
    args.threads = setup["config"]["threads"] if args.threads is None else args.threads
    if args.repeats < 1 or args.threads < 1:
        sys.exit("error: --repeats and --threads must be at least 1")
    workloads = [w.strip() for w in args.workload.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in ("a", "b", "c", "d")]
    if unknown:
        sys.exit(f"error: --workload {','.join(unknown)}: not a workload; use a, b or c")
    global DEVICE, MEMORY_FORMAT
    DEVICE = torch.device(args.device)
    MEMORY_FORMAT = torch.channels_last if args.memory_format == "channels-last" else torch.contiguous_format
    torch.set_num_threads(args.threads)
    genotypes = {name: load_genotype(os.path.join(args.genotypes, setup["genotypes"][name]["file"]))
                 for name in ("initial", "grown")}
    candidate = load_genotype(os.path.join(args.genotypes, setup["candidate"]["file"]))
    check_counts(setup, genotypes, candidate, verbose=args.count_only)
    if args.count_only:
        return
    if args.check:
        check_logits(setup, genotypes, args.genotypes)
        return
    for name, genotype in genotypes.items():
        if "a" in workloads:
            training(name, genotype, setup, args)
    for name, genotype in genotypes.items():
        if "b" in workloads:
            evaluation(name, genotype, setup, args)
    if "c" in workloads:
        scoring(setup, args)
    if "d" in workloads:
        print("workload d: no PyTorch twin (see docs/PERFORMANCE.md)", file=sys.stderr)


if __name__ == "__main__":
    main()
