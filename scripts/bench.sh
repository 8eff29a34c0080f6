#!/usr/bin/env bash
# Runs the benchmark workloads on both sides, spidernet (`spidernet bench`) and its PyTorch twin (bench/twin.py),
# on the same genotypes, batch sizes and thread count, and prints a Markdown table with the speed-up.
# Usage: scripts/bench.sh [WORKLOADS (a,b,c,d)] [REPEATS] [THREADS]; STEPS (10) sets the training steps and
# evaluation passes per repeat, OUT (target/bench) the folder for the raw results and the table.
set -euo pipefail
cd "$(dirname "$0")/.."
workloads=${1:-a,b,c,d}
repeats=${2:-5}
threads=${3:-2}
[ -x .venv/bin/python ] || { echo "error: .venv is missing; run scripts/setup.sh first" >&2; exit 1; }
cargo build --release --quiet
steps=${STEPS:-10}
out=${OUT:-target/bench}
mkdir -p "$out"
ours_cmd="target/release/spidernet bench --workload $workloads --repeats $repeats --steps $steps --threads $threads --json --write-genotypes $out/genotypes"
echo "spidernet: $ours_cmd" >&2
OMP_NUM_THREADS=$threads $ours_cmd > "$out/spidernet.jsonl"
twin_workloads=$(tr -d 'd' <<<"$workloads" | sed 's/,,*/,/g; s/^,//; s/,$//')
twin_cmd=".venv/bin/python bench/twin.py --genotypes $out/genotypes --workloads ${twin_workloads:-none} --repeats $repeats --steps $steps --threads $threads"
echo "pytorch:   $twin_cmd" >&2
OMP_NUM_THREADS=$threads $twin_cmd > "$out/pytorch.jsonl"
.venv/bin/python bench/table.py "$out" "$threads" "$ours_cmd" "$twin_cmd" | tee "$out/table.md"
