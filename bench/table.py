#!/usr/bin/env python3
"""Joins the JSON lines of `spidernet bench --json` and `bench/twin.py` into a Markdown table with the speed-up.

Usage: table.py OUT_DIR [DEVICE_NAME]
Reads OUT_DIR/spidernet.jsonl, OUT_DIR/pytorch.jsonl and OUT_DIR/commands.txt (one "side workload command" line
per run). Either side may hold a workload in several memory formats (NCHW, channels-last): each of ours gets a
row, with every twin variant beside it and the speed-up against the fastest. Fails if a workload's networks differ
in size between the two sides.
"""
import json
import os
import platform
import sys


# Our workloads without a twin of their own, and the twin workload that measures the same work in the reference.
REFERENCE_COUNTERPART = {"c-score-in-cell": "c-score-candidate"}


def load(path):
    """The JSON lines of one side, in order; old lines without a memory format count as NCHW."""
    try:
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []
    except json.JSONDecodeError as error:
        sys.exit(f"error: {path} is not JSON lines: {error}")
    for r in records:
        r.setdefault("memory_format", "nchw")
    return records


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), platform.processor())
    except OSError:
        return platform.processor() or "unknown CPU"


def value(r):
    if r is None:
        return "—"
    if r.get("skipped"):
        return "skipped"
    return f"{r['median']:,.3g} {r['unit']}" if r["unit"] == "s" else f"{r['median']:,.1f} {r['unit']}"


def memory(r):
    """Peak device memory held by tensors on CUDA; else the peak RSS and what the workload added to it."""
    if not r:
        return "—"
    if r.get("peak_device_allocated_bytes") is not None:
        return f"{r['peak_device_allocated_bytes'] / 2**20:,.0f} MiB on the device"
    if not r.get("peak_rss_bytes"):
        return "—"
    return f"{r['peak_rss_bytes'] / 2**20:,.0f} MiB (+{r['added_rss_bytes'] / 2**20:,.0f})"


def best(records):
    """The fastest of the twin's variants of one workload (highest throughput, or lowest time)."""
    timed = [r for r in records if r.get("median") is not None]
    if not timed:
        return None
    return max(timed, key=lambda r: r["median"]) if timed[0]["unit"] == "images/s" else min(timed,
                                                                                          key=lambda r: r["median"])


def speedup(ours, theirs):
    """> 1 means spidernet is faster: a throughput ratio, or a time ratio the other way round."""
    if not ours or not theirs or ours.get("median") is None or theirs.get("median") is None:
        return "—"
    ratio = ours["median"] / theirs["median"] if ours["unit"] == "images/s" else theirs["median"] / ours["median"]
    return f"{ratio:.2f}×"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    ours, theirs = load(f"{out}/spidernet.jsonl"), load(f"{out}/pytorch.jsonl")
    if not ours:
        sys.exit(f"error: {out}/spidernet.jsonl holds no results")
    threads = {r["threads"] for r in ours + theirs}
    device = sys.argv[2] if len(sys.argv) > 2 else f"{cpu_model()}, {os.cpu_count()} logical CPUs"
    formats = sorted({r["memory_format"] for r in theirs}, key=["nchw", "channels-last"].index)
    print(f"machine: {device}; threads: {', '.join(map(str, sorted(threads)))}; medians over the repeats; "
          "speed-up > 1 means spidernet is faster, against the fastest PyTorch variant\n")
    twin_columns = "".join(f" PyTorch {f} |" for f in formats)
    print(f"| workload | batch | spidernet layout | spidernet |{twin_columns} speed-up | peak memory spidernet "
          "| peak memory PyTorch (fastest) |")
    print("|---|---|---|---|" + "---|" * len(formats) + "---|---|---|")
    for r in ours:
        name = r["workload"]
        counterpart = REFERENCE_COUNTERPART.get(name, "")
        variants = [t for t in theirs if t["workload"] == name] or [t for t in theirs if t["workload"] == counterpart]
        for t in variants:
            if r.get("parameters") is not None and t.get("parameters") not in (None, r["parameters"]):
                sys.exit(f"error: {name}: the networks differ ({r['parameters']} against {t['parameters']} "
                         "parameters)")
        by_format = {t["memory_format"]: t for t in variants}
        fastest = best(variants)
        cells = "".join(f" {value(by_format.get(f))} |" for f in formats)
        batch = r.get("batch") or "—"
        print(f"| {name} | {batch} | {r['memory_format']} | {value(r)} |{cells} {speedup(r, fastest)} "
              f"| {memory(r)} | {memory(fastest)} |")
    names = list(dict.fromkeys(r["workload"] for r in ours))
    last = {r["workload"]: r for r in ours}
    for name in names:
        r = last[name]
        if r.get("details"):
            parts = ", ".join(f"{k} {v:,.3g}" for k, v in sorted(r["details"].items()))
            print(f"\n{name} (spidernet): {parts}")
        if r.get("skipped"):
            print(f"\n{name} skipped: {r['skipped']}")
    if "c-score-in-cell" in last:
        print("\nc-score-in-cell: seconds per candidate when all of a cell's edges are scored against one measurement of "
              "the unsplit network; the reference procedure scores each candidate from scratch, so its figure is "
              "c-score-candidate's.")
    commands = os.path.join(out, "commands.txt")
    if os.path.exists(commands):
        print("\ncommands:\n")
        with open(commands) as f:
            for line in filter(str.strip, f):
                print(f"    {line.rstrip()}")


if __name__ == "__main__":
    main()
