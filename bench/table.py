#!/usr/bin/env python3
"""Joins `spidernet bench --json` and `bench/twin.py` output into a Markdown table with the speed-up.

Usage: table.py OUT_DIR THREADS OURS_COMMAND TWIN_COMMAND [DEVICE_NAME]
Reads OUT_DIR/spidernet.jsonl and OUT_DIR/pytorch.jsonl; fails if the two sides' networks differ in size.
"""
import json
import platform
import sys


def load(path):
    with open(path) as f:
        return {r["workload"]: r for r in map(json.loads, filter(str.strip, f))}


def main():
    out, threads, ours_cmd, twin_cmd = sys.argv[1:5]
    device = sys.argv[5] if len(sys.argv) > 5 else None
    ours, theirs = load(f"{out}/spidernet.jsonl"), load(f"{out}/pytorch.jsonl")
    if device is None:
        with open("/proc/cpuinfo") as f:
            device = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), platform.processor())
    print(f"machine: {device}, {threads} threads; medians over the repeats")
    print("| workload | spidernet | PyTorch | speed-up | peak RSS (spidernet / PyTorch) |")
    print("|---|---|---|---|---|")
    mib = lambda r: f"{r['peak_rss_bytes'] / 2**20:,.0f} MiB" if r and r.get("peak_rss_bytes") else "—"
    fmt = lambda r: f"{r['median']:,.2f} {r['unit']}"
    for name, r in ours.items():
        t = theirs.get(name)
        if t is None:
            print(f"| {name} | {fmt(r)} | — | — | {mib(r)} / — |")
            continue
        if r.get("parameters") is not None and t.get("parameters") not in (None, r["parameters"]):
            sys.exit(f"error: {name}: the networks differ ({r['parameters']} against {t['parameters']} parameters)")
        speedup = r["median"] / t["median"] if r["unit"] == "images/s" else t["median"] / r["median"]
        print(f"| {name} | {fmt(r)} | {fmt(t)} | {speedup:.2f}× | {mib(r)} / {mib(t)} |")
    print(f"\nspidernet: `{ours_cmd}`  \npytorch: `{twin_cmd}`")


if __name__ == "__main__":
    main()
