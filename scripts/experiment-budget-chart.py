#!/usr/bin/env python3
"""Test accuracy against wall time for equal-budget experiments (scripts/experiment-budget.sh), as a standalone SVG.

    python3 scripts/experiment-budget-chart.py OUT_DIR[:ARM,ARM,...][=LABEL] ... > chart.svg

Each PyTorch baseline is a line through its per-epoch test accuracies (one line per seed). A search has one test
accuracy, after its final training, so each search run is a marker at its whole run's seconds; several OUT_DIRs
(e.g. a 30-minute and a 2-hour experiment) put several budgets on one chart; :ARM,... takes only the named arms of
a folder (as the table script names them: spidernet, none-dense, pytorch-resnet9, ...), so that folders of reruns
under a new default and of runs that still stand share one chart; a LABEL names a folder's searches in the legend
(e.g. the settings they ran with). The time axis is logarithmic.
"""
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finished_runs import finished_runs  # noqa: E402

WIDTH, HEIGHT = 880, 440
LEFT, RIGHT, TOP, BOTTOM = 64, 270, 24, 52
COLOURS = {
    "spidernet": "#d62728",
    "random": "#9467bd",
    "none": "#8c564b",
    "pytorch-cnn": "#1f77b4",
    "pytorch-resnet": "#2ca02c",
}
MARKERS = {"spidernet": "circle", "random": "square", "none": "diamond"}
# Further series (labelled folders) take these colours in turn.
SPARE_COLOURS = ["#ff7f0e", "#17becf", "#e377c2", "#bcbd22", "#7f7f7f"]


def collect(outs):
    """(baseline curves {name: [[(seconds, accuracy)]]}, search points {name: [(seconds, accuracy)]}) of
    (folder, arms or None for all, label) triples."""
    curves, points = {}, {}
    for out, arms, label in outs:
        baselines = [json.loads(path.read_text()) for path in sorted(out.glob("baselines/*.json"))]
        searches = [(strategy, summary) for _, strategy, _, summary, _ in finished_runs(out)]
        found = {summary["strategy"] for summary in baselines} | {strategy for strategy, _ in searches}
        if arms is None:
            arms = found
        elif arms - found:
            sys.exit(f"error: {out} has no finished runs of {', '.join(sorted(arms - found))}")
        for summary in baselines:
            if summary["strategy"] not in arms:
                continue
            curve = [(c["seconds"], 100 * c["test_accuracy"]) for c in summary["curve"]]
            curves.setdefault(summary["strategy"], []).append(curve)
        for strategy, summary in searches:
            if strategy not in arms:
                continue
            seconds = summary.get("run_seconds") or (
                summary["search_training_seconds"]
                + summary["search_scoring_seconds"]
                + summary["final_training_seconds"]
            )
            name = f"{strategy}, {label}" if label else strategy
            points.setdefault(name, []).append((seconds, 100 * summary["test_accuracy"]))
    return curves, points


def nice_ticks(low, high, count=6):
    """Round tick values spanning [low, high]."""
    step = 10 ** math.floor(math.log10((high - low) / count))
    for factor in (1, 2, 5, 10):
        if (high - low) / (step * factor) <= count:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def time_ticks(low, high):
    """Ticks at round durations (seconds) inside [low, high], with labels."""
    candidates = [
        (10, "10 s"), (30, "30 s"), (60, "1 min"), (120, "2 min"), (300, "5 min"), (600, "10 min"),
        (1200, "20 min"), (1800, "30 min"), (3600, "1 h"), (7200, "2 h"), (14400, "4 h"),
    ]
    return [(s, label) for s, label in candidates if low <= s <= high]


def marker(shape, x, y, colour):
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}" stroke="white"/>'
    if shape == "square":
        return f'<rect x="{x - 4.5:.1f}" y="{y - 4.5:.1f}" width="9" height="9" fill="{colour}" stroke="white"/>'
    return (
        f'<polygon points="{x:.1f},{y - 6:.1f} {x + 6:.1f},{y:.1f} {x:.1f},{y + 6:.1f} {x - 6:.1f},{y:.1f}" '
        f'fill="{colour}" stroke="white"/>'
    )


def chart(curves, points):
    everything = [p for runs in curves.values() for curve in runs for p in curve]
    everything += [p for runs in points.values() for p in runs]
    if not everything:
        sys.exit("error: the folders hold no finished runs (runs/*/summary.json or baselines/*.json)")
    seconds = [s for s, _ in everything]
    accuracies = [a for _, a in everything]
    x_low, x_high = math.log10(max(1.0, min(seconds) * 0.8)), math.log10(max(seconds) * 1.25)
    y_low = math.floor(min(accuracies) / 5) * 5
    y_high = min(100, math.ceil(max(accuracies) / 5) * 5 + (0 if max(accuracies) % 5 else 5))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(s):
        return LEFT + (math.log10(s) - x_low) / (x_high - x_low) * plot_w

    def y_of(a):
        return TOP + (y_high - a) / (y_high - y_low) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
    ]
    for a in nice_ticks(y_low, y_high):
        y = y_of(a)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{a:g}</text>')
    for s, label in time_ticks(10 ** x_low, 10 ** x_high):
        x = x_of(s)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_h}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{label}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>')
    out.append(
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 12}" text-anchor="middle">'
        "wall time (log scale): training and evaluation, search included</text>"
    )
    out.append(
        f'<text transform="translate(16 {TOP + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle">'
        "test accuracy (%)</text>"
    )
    spare = iter(SPARE_COLOURS * 4)

    def colour_of(name):
        return COLOURS.get(name) or next(spare)

    legend = []
    for name, runs in sorted(curves.items()):
        colour = colour_of(name)
        for curve in runs:
            path = " ".join(f"{x_of(s):.1f},{y_of(a):.1f}" for s, a in curve if s > 0)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5" opacity="0.85"/>')
        legend.append((name, colour, None, len(runs)))
    for name, runs in sorted(points.items()):
        colour = colour_of(name)
        shape = MARKERS.get(name.split(",")[0], "circle")
        for s, a in runs:
            out.append(marker(shape, x_of(s), y_of(a), colour))
        legend.append((name, colour, shape, len(runs)))
    for i, (name, colour, shape, count) in enumerate(legend):
        x, y = LEFT + plot_w + 16, TOP + 14 + 20 * i
        if shape is None:
            out.append(f'<line x1="{x}" y1="{y}" x2="{x + 18}" y2="{y}" stroke="{colour}" stroke-width="2"/>')
        else:
            out.append(marker(shape, x + 9, y, colour))
        runs = "run" if count == 1 else "runs"
        out.append(f'<text x="{x + 26}" y="{y + 4}">{name} ({count} {runs})</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    outs = []
    for arg in sys.argv[1:]:
        folder, _, label = arg.partition("=")
        path, colon, arm_list = folder.partition(":")
        if not Path(path).is_dir():
            sys.exit(f"error: {path} is not a folder")
        arms = {arm for arm in arm_list.split(",") if arm} if colon else None
        if colon and not arms:
            sys.exit(f"error: {arg}: name at least one arm after ':'")
        outs.append((Path(path), arms, label))
    sys.stdout.write(chart(*collect(outs)))


if __name__ == "__main__":
    main()
