#!/usr/bin/env python3
"""Mean ± std over seeds of each strategy's runs made by scripts/experiment-fashion.sh, as a Markdown table."""
import json
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finished_runs import finished_runs  # noqa: E402


def max_rss_bytes(log: Path):
    """The whole process's peak RSS, from /usr/bin/time -v in the run's stderr log."""
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", log.read_text(errors="replace"))
    return int(match.group(1)) * 1024 if match else None


def rows(out: Path):
    for run, strategy, seed, summary, history in finished_runs(out):
        yield strategy, seed, {
            "test accuracy (%)": 100 * summary["test_accuracy"],
            "final validation accuracy of the search (%)": 100 * history[-1]["validation_accuracy"],
            "parameters": summary["parameters"],
            "edges (all cells)": sum(summary["edges_per_cell"]),
            "estimated training memory (MiB)": summary["estimated_memory_bytes"] / 2**20,
            "peak RSS in final training (MiB)": (summary.get("final_training_peak_rss_bytes") or 0) / 2**20,
            "peak RSS of the whole run (MiB)": (max_rss_bytes(out / "logs" / f"{run.name}.err") or 0) / 2**20,
            "search training (s)": summary["search_training_seconds"],
            "search scoring (s)": summary["search_scoring_seconds"],
            "final training (s)": summary["final_training_seconds"],
        }


def cell(values):
    if len(values) < 2:
        return f"{values[0]:.4g}" if values else "—"
    mean, std = statistics.mean(values), statistics.stdev(values)
    digits = 1 if abs(mean) < 1e4 else 0
    return f"{mean:,.{digits}f} ± {std:,.{digits}f}"


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/experiment-fashion")
    by_strategy = {}
    for strategy, seed, values in rows(out):
        by_strategy.setdefault(strategy, []).append((seed, values))
    strategies = sorted(by_strategy, key=lambda s: s != "spidernet")
    if not strategies:
        sys.exit(f"{out}: no finished run (runs/*/summary.json)")
    seeds = {s: sorted(seed for seed, _ in by_strategy[s]) for s in strategies}
    print("| | " + " | ".join(f"{s} (seeds {', '.join(map(str, seeds[s]))})" for s in strategies) + " |")
    print("|---|" + "---|" * len(strategies))
    for metric in by_strategy[strategies[0]][0][1]:
        print(f"| {metric} | " + " | ".join(cell([v[metric] for _, v in by_strategy[s]]) for s in strategies) + " |")
    print()
    print("| run | test accuracy (%) | parameters | edges | search training (s) | scoring (s) | final training (s) |")
    print("|---|---|---|---|---|---|---|")
    for s in strategies:
        for seed, v in sorted(by_strategy[s], key=lambda item: item[0]):
            print(
                f"| {s} seed {seed} | {v['test accuracy (%)']:.2f} | {v['parameters']:,} | {v['edges (all cells)']} "
                f"| {v['search training (s)']:.0f} | {v['search scoring (s)']:.0f} | {v['final training (s)']:.0f} |"
            )


if __name__ == "__main__":
    main()
