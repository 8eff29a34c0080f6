#!/usr/bin/env python3
"""The equal-budget experiment (scripts/experiment-budget.sh) as Markdown: mean ± std over seeds of every strategy
and baseline, and Welch's t of spidernet's test accuracy against each of the others.

    python3 scripts/experiment-budget-table.py OUT_DIR[=ARM,ARM,...] ... [--arms NAME,NAME,...]

Several folders pool their arms (OUT_DIR=ARM,... takes only the named arms of that folder), so that arms which ran
under different defaults stay in folders of their own; an arm found in two folders is an error. --arms keeps the
named arms only (as the table's header names them: spidernet, none-dense, pytorch-resnet9, ...), in the order given.
"""
import argparse
import json
import math
import signal
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finished_runs import finished_runs  # noqa: E402


WHOLE_FIELDS = {
    "parameters",
    "live ops",
    "final-training images/s",
    "search training (s)",
    "scoring (s)",
    "final training (s)",
    "whole run (s)",
}


def spidernet_rows(out: Path):
    for run, strategy, seed, summary, history in finished_runs(out):
        # A run with no search (strategy none) has no iteration records to measure pruning against.
        most_ops = max([r["live_ops"] for r in history], default=None)
        yield strategy, seed, {
            "test accuracy (%)": 100 * summary["test_accuracy"],
            "parameters": summary["parameters"],
            "live ops": summary["live_ops"],
            "share pruned (%)": 100 * (1 - summary["live_ops"] / max(most_ops, summary["live_ops"]))
            if most_ops
            else float("nan"),
            "final-training images/s": summary.get("final_train_images_per_second") or float("nan"),
            "search training (s)": max(0.0, summary["search_training_seconds"]),
            "scoring (s)": max(0.0, summary["search_scoring_seconds"]),
            "final training (s)": summary["final_training_seconds"],
            "whole run (s)": summary.get("run_seconds") or float("nan"),
        }


def baseline_rows(out: Path):
    for path in sorted(out.glob("baselines/*.json")):
        model, seed = path.stem.rsplit("-seed", 1)
        summary = json.loads(path.read_text())
        yield summary["strategy"], int(seed), {
            "test accuracy (%)": 100 * summary["test_accuracy"],
            "parameters": summary["parameters"],
            "live ops": float("nan"),
            "share pruned (%)": float("nan"),
            "final-training images/s": summary["images_per_second"],
            "search training (s)": 0.0,
            "scoring (s)": 0.0,
            "final training (s)": summary["final_training_seconds"],
            "whole run (s)": summary["final_training_seconds"],
        }


def incomplete_beta(a, b, x):
    """The regularised incomplete beta I_x(a, b), by Lentz's continued fraction."""
    if x <= 0 or x >= 1:
        return max(0.0, min(1.0, x))
    if x > (a + 1) / (a + b + 2):
        return 1 - incomplete_beta(b, a, 1 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)) / a
    c, d, f = 1.0, 0.0, 1.0
    for i in range(400):
        m = i // 2
        if i == 0:
            numerator = 1.0
        elif i % 2 == 0:
            numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            numerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1 + numerator * d
        d = 1 / (d if abs(d) > 1e-30 else 1e-30)
        c = 1 + numerator / (c if abs(c) > 1e-30 else 1e-30)
        f *= c * d
        if abs(1 - c * d) < 1e-12:
            break
    return front * (f - 1)


def welch(a, b):
    """Welch's t, its degrees of freedom and the two-sided p-value; None with fewer than 2 samples a side."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return None
    t = (statistics.mean(a) - statistics.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    p = incomplete_beta(df / 2, 0.5, df / (df + t * t))
    return t, df, p


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="+", help="experiment folders, each optionally =ARM,ARM,... to take only those")
    parser.add_argument("--arms", help="comma-separated arms to keep, in this order")
    args = parser.parse_args()
    folders = [folder_arms(spec) for spec in args.out]
    groups = pooled_groups(folders)
    if args.arms:
        wanted = [arm for arm in args.arms.split(",") if arm]
        missing = [arm for arm in wanted if arm not in groups]
        if missing:
            sys.exit(f"error: --arms {args.arms}: {', '.join(args.out)} has no finished runs of "
                     f"{', '.join(missing)} (it has {', '.join(groups)})")
        groups = {arm: groups[arm] for arm in wanted}
    names = list(groups)
    fields = list(next(iter(groups.values()))[0])
    print("| | " + " | ".join(f"{n} (n = {len(groups[n])})" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for field in fields:
        cells = []
        for name in names:
            values = [row[field] for row in groups[name] if not math.isnan(row[field])]
            # Counts and seconds read best whole, with thousands separators; accuracies to a hundredth.
            spec = ",.0f" if field in WHOLE_FIELDS else ".2f" if field == "test accuracy (%)" else ".1f"
            if not values:
                cells.append("—")
            elif len(values) == 1:
                cells.append(f"{values[0]:{spec}}")
            else:
                cells.append(f"{statistics.mean(values):{spec}} ± {statistics.stdev(values):{spec}}")
        print(f"| {field} | " + " | ".join(cells) + " |")
    if "spidernet" in groups:
        print()
        print("| spidernet against | Δ test accuracy (points) | Welch's t | df | p (two-sided) |")
        print("|---|---|---|---|---|")
        ours = [row["test accuracy (%)"] for row in groups["spidernet"]]
        for name in names:
            if name == "spidernet":
                continue
            theirs = [row["test accuracy (%)"] for row in groups[name]]
            delta = statistics.mean(ours) - statistics.mean(theirs)
            test = welch(ours, theirs)
            stats = "— | — | —" if test is None else f"{test[0]:.2f} | {test[1]:.1f} | {test[2]:.3f}"
            print(f"| {name} | {delta:+.2f} | {stats} |")

    for out, _ in folders:
        print_probes(out)


def folder_arms(spec: str):
    """OUT_DIR or OUT_DIR=ARM,ARM,...: the folder and the arms to take from it (None: all of them)."""
    folder, _, arms = spec.partition("=")
    return Path(folder), ([arm for arm in arms.split(",") if arm] if arms else None)


def pooled_groups(folders):
    """Every finished run's row, by arm, over all folders; an arm may come from one folder only."""
    groups, source = {}, {}
    for out, arms in folders:
        found = {}
        for name, _, row in list(spidernet_rows(out)) + list(baseline_rows(out)):
            found.setdefault(name, []).append(row)
        if not found:
            sys.exit(f"error: {out} holds no finished runs (runs/*/summary.json or baselines/*.json)")
        missing = [arm for arm in arms or [] if arm not in found]
        if missing:
            sys.exit(f"error: {out} has no finished runs of {', '.join(missing)} (it has {', '.join(found)})")
        for name in arms or found:
            if name in groups:
                sys.exit(f"error: arm {name} is in both {source[name]} and {out}: take it from one (FOLDER=ARM,...)")
            groups[name], source[name] = found[name], out
    return groups


def print_probes(out: Path):
    """The runs in the order they started, each with the machine-speed probe taken just before it."""
    path = out / "probes.jsonl"
    if not path.exists():
        return
    print()
    print("| order | run | started (UTC) | machine-speed probe (`bench --workload a`) |")
    print("|---|---|---|---|")
    for order, line in enumerate(path.read_text().splitlines(), start=1):
        entry = json.loads(line)
        probe = entry["probe"]
        print(f"| {order} | {entry['run']} | {entry['started']} | {probe['median']:,.0f} {probe['unit']} |")


if __name__ == "__main__":
    # A reader that stops early (`| head`) ends the output quietly.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    main()
