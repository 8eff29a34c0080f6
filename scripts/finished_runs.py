"""The finished runs of an experiment folder (OUT/runs/<strategy>-seed<n>/), for the table scripts beside it."""
import json
from pathlib import Path


def finished_runs(out: Path):
    """(run folder, strategy, seed, summary, history records) of every run with a summary.json, in name order."""
    for summary_file in sorted(out.glob("runs/*/summary.json")):
        run = summary_file.parent
        strategy, seed = run.name.rsplit("-seed", 1)
        summary = json.loads(summary_file.read_text())
        history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines() if line]
        yield run, strategy, int(seed), summary, history
