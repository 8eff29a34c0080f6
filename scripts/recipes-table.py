#!/usr/bin/env python3
"""The recipe study's curves (scripts/recipes.sh) as a Markdown table: test accuracy after every epoch, the best,
the mean training seconds per epoch and the ops deadheaded, one row per variant in the script's order."""
import json
import re
import sys
from pathlib import Path


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results/recipes")
    # The order of scripts/recipes.sh, which lists every variant as "name:flags"; others go last, by name.
    listed = re.findall(r'^\s*"([^":]+):', (Path(__file__).parent / "recipes.sh").read_text(), re.M)
    curves = sorted(out.glob("*.jsonl"), key=lambda p: (listed.index(p.stem) if p.stem in listed else len(listed), p.stem))
    if not curves:
        sys.exit(f"error: {out} holds no learning curves (*.jsonl); run scripts/recipes.sh first")
    epochs = max(len(path.read_text().splitlines()) for path in curves)
    header = ["variant"] + [f"epoch {e}" for e in range(1, epochs + 1)] + ["best", "s / epoch", "ops deadheaded"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for path in curves:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        accuracy = [100 * row["eval"]["accuracy"] for row in rows]
        cells = [f"{a:.1f}" for a in accuracy] + ["…"] * (epochs - len(rows))
        seconds = sum(row["seconds"] for row in rows) / len(rows)
        killed = sum(len(row["deadhead"]["killed"]) for row in rows)
        print(f"| {path.stem} | " + " | ".join(cells) + f" | {max(accuracy):.1f} | {seconds:.0f} | {killed} |")


if __name__ == "__main__":
    main()
