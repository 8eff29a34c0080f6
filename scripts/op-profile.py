#!/usr/bin/env python3
"""Where a genotype's training time goes, op by op: the per-op timings of `spidernet bench --workload e --json`
summed over the live ops of a genotype (every edge's ops at that edge's shape).

    target/release/spidernet bench --workload e --json > ops.jsonl
    python3 scripts/op-profile.py ops.jsonl RUN_DIR/genotype.json [more genotype.json ...]

Prints, per genotype, a Markdown table: each op type's live count, its summed forward-and-backward milliseconds per
batch of 64, and its share of the ops' total; then what the same edges would cost with all 7 ops each, which is
what pruning saved. The ops' sum leaves out what is not an op (cell preprocessing, node
batch norms, the classifier, the optimiser step), so it is a lower bound of a training step.
"""
import json
import sys
from pathlib import Path

OPS = ["identity", "max_pool_3x3", "avg_pool_3x3", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"]


def timings(path):
    table = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if record["workload"].startswith("e-op-") and record.get("median") is not None:
            table[record["workload"]] = record["median"]
    if not table:
        sys.exit(f"error: {path} holds no e-op-* measurements (run spidernet bench --workload e --json)")
    return table


def profile(table, genotype_path):
    genotype = json.loads(Path(genotype_path).read_text())
    count = {op: 0 for op in OPS}
    milliseconds = {op: 0.0 for op in OPS}
    for cell in genotype["cells"]:
        for edge in cell["edges"]:
            stride = 2 if cell["index"] >= 1 and edge["from"] < cell["n_inputs"] else 1
            for op in edge["ops"]:
                key = f"e-op-{op}-cell{cell['index']}-s{stride}"
                if key not in table:
                    sys.exit(f"error: no timing {key} for {genotype_path} (only R = 2 networks are timed)")
                count[op] += 1
                milliseconds[op] += table[key]
    total = sum(milliseconds.values())
    unpruned = sum(
        table[f"e-op-{op}-cell{cell['index']}-s{2 if cell['index'] >= 1 and edge['from'] < cell['n_inputs'] else 1}"]
        for cell in genotype["cells"]
        for edge in cell["edges"]
        for op in OPS
    )
    edges = sum(len(cell["edges"]) for cell in genotype["cells"])
    print(f"{genotype_path}: {sum(count.values())} live ops on {edges} edges, {total:.1f} ms per batch of 64 in its ops;")
    print(f"with all 7 ops on every edge, {unpruned:.1f} ms: pruning made the ops {unpruned / total:.2f}x faster")
    print()
    print("| op | live | ms per batch | share |")
    print("|---|---|---|---|")
    for op in sorted(OPS, key=lambda o: -milliseconds[o]):
        if count[op]:
            print(f"| {op} | {count[op]} | {milliseconds[op]:.1f} | {100 * milliseconds[op] / total:.0f} % |")
    print()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    table = timings(sys.argv[1])
    for genotype in sys.argv[2:]:
        profile(table, genotype)


if __name__ == "__main__":
    main()
