#!/usr/bin/env bash
# The equal-budget experiment of docs/RESULTS.md on Fashion-MNIST (all 60,000 / 10,000 images): spidernet, random
# and none at --time-budget BUDGET for 3 seeds each, and both PyTorch baselines for the same budget and seeds.
#
#   scripts/experiment-budget.sh [BUDGET] [OUT_DIR]   (default 30m, runs/experiment-budget-BUDGET)
#
# Resumable: a finished run is kept, an interrupted search continues with --resume (its time budget counts the
# seconds of every process that worked on it), an interrupted baseline starts again. Run nothing else meanwhile:
# the budget is wall time. SEEDS (default "0 1 2"), STRATEGIES (default "spidernet random none") and MODELS (the
# PyTorch baselines, default "cnn resnet"; also resnet9, the standard recipe) narrow it; an empty value runs none.
# FLAGS adds search flags to new runs (e.g. "--ops dense"), and TAG names them apart (runs/<strategy><TAG>-seed<S>).
# Before every run (and every resumed part of one) the machine's speed is probed (`spidernet bench --workload a`,
# training steps of a fixed network) and recorded with the run's name and start in OUT_DIR/probes.jsonl, one line
# per run in the order they ran. Each seed runs its searches and then its baselines, so that a machine whose speed
# drifts over the hours favours no strategy.
# Then: python3 scripts/experiment-budget-table.py OUT_DIR prints the tables.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
budget="${1:-30m}"
out="${2:-$root/runs/experiment-budget-$budget}"
binary="$root/target/release/spidernet"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$binary" ] || (cd "$root" && cargo build --release)
mkdir -p "$out/logs" "$out/runs" "$out/baselines"

# Appends one line to probes.jsonl: the run about to start, the time, and the probe's median training images/s
# on the initial network (the first of workload a's two lines).
probe() {
  local measured
  measured=$("$binary" bench --workload a --repeats 3 --steps 5 --json | sed -n 1p)
  printf '{"run":"%s","started":"%s","probe":%s}\n' "$1" "$(date -u +%FT%TZ)" "$measured" >> "$out/probes.jsonl"
}
for seed in ${SEEDS:-0 1 2}; do
  for strategy in ${STRATEGIES-spidernet random none}; do
    name="$strategy${TAG:-}-seed$seed"
    run="$out/runs/$name"
    [ -f "$run/summary.json" ] && continue
    echo "$(date -u +%T) $name"
    probe "$name"
    if [ -f "$run/config.json" ]; then
      command=("$binary" search --resume "$run")
    else
      rm -rf "$run"
      # shellcheck disable=SC2206 # FLAGS are words
      command=("$binary" search --data fashion-mnist --strategy "$strategy" --seed "$seed" --time-budget "$budget"
        ${FLAGS:-} --out "$run")
    fi
    "${command[@]}" >> "$out/logs/$name.out" 2>> "$out/logs/$name.err"
  done
  for model in ${MODELS-cnn resnet}; do
    summary="$out/baselines/$model-seed$seed.json"
    [ -f "$summary" ] && continue
    echo "$(date -u +%T) pytorch $model seed $seed"
    probe "$model-seed$seed"
    "$python" "$root/bench/baselines.py" --model "$model" --time-budget "$budget" --seed "$seed" --out "$summary" \
      > "$out/logs/$model-seed$seed.out" 2> "$out/logs/$model-seed$seed.err"
  done
done
