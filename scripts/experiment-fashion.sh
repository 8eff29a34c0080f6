#!/usr/bin/env bash
# SpiderNet against random search on Fashion-MNIST: 3 seeds each, same settings and memory budget.
# Usage: scripts/experiment-fashion.sh [OUT_DIR]   (default runs/experiment-fashion; finished runs are kept)
# Then: python3 scripts/experiment-table.py OUT_DIR   prints the table of docs/RESULTS.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/runs/experiment-fashion}"
binary="$root/target/release/spidernet"
[ -x "$binary" ] || (cd "$root" && cargo build --release)
mkdir -p "$out/logs"
for seed in 0 1 2; do
  for strategy in spidernet random; do
    run="$out/runs/$strategy-seed$seed"
    [ -f "$run/summary.json" ] && continue
    rm -rf "$run"
    echo "$(date -u +%T) $strategy seed $seed"
    /usr/bin/time -v "$binary" search --data fashion-mnist --strategy "$strategy" --seed "$seed" \
      --search-samples 2000 --iterations 3 --epochs-per-iteration 2 \
      --final-samples 5000 --final-epochs 5 --memory-budget 3GiB --out "$run" \
      > "$out/logs/$strategy-seed$seed.out" 2> "$out/logs/$strategy-seed$seed.err"
  done
done
