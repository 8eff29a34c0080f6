#!/usr/bin/env bash
# Runs the benchmark workloads on both sides, spidernet (`spidernet bench`) and its PyTorch twin (bench/twin.py),
# on the same genotypes, batch sizes and thread count, and prints a Markdown table with the speed-up (> 1: we are
# faster). Each workload runs in its own process on each side, so that its peak memory is its own. Before timing,
# the twin must show the same parameter counts and the same logits on our weights.
# Usage: scripts/bench.sh [WORKLOADS (a,b,c,d)] [REPEATS (5)] [THREADS (2)]; STEPS (10) sets the training steps and
# evaluation passes per repeat, OUT (target/bench) the folder for the results: spidernet.jsonl, pytorch.jsonl,
# commands.txt, table.md and the twin's input files in genotypes/. The twin runs in each memory format of
# TWIN_FORMATS (nchw,channels-last), and the speed-up is against its fastest.
set -euo pipefail
cd "$(dirname "$0")/.."
workloads=${1:-a,b,c,d}
repeats=${2:-5}
threads=${3:-2}
python=.venv/bin/python
[ -x "$python" ] || { echo "error: $python is missing; run scripts/setup.sh first" >&2; exit 1; }
for w in ${workloads//,/ }; do
  case $w in a|b|c|d) ;; *) echo "error: workload '$w': use a, b, c or d, comma-separated" >&2; exit 1 ;; esac
done
cargo build --release --quiet
steps=${STEPS:-10}
twin_formats=${TWIN_FORMATS:-nchw,channels-last}
out=${OUT:-target/bench}
files=$out/genotypes
mkdir -p "$out"
rm -f "$out/spidernet.jsonl" "$out/pytorch.jsonl" "$out/commands.txt" "$out/table.md"
export OMP_NUM_THREADS=$threads
ours="target/release/spidernet bench --repeats $repeats --steps $steps --threads $threads --json"
ours="$ours --write-genotypes $files"
twin="$python bench/twin.py --genotypes $files --repeats $repeats --threads $threads"
$ours --workload none
$python bench/twin.py --genotypes "$files" --check >&2
for w in ${workloads//,/ }; do
  echo "spidernet: $ours --workload $w" >&2
  echo "spidernet $w $ours --workload $w" >> "$out/commands.txt"
  $ours --workload "$w" >> "$out/spidernet.jsonl"
  if [ "$w" != d ]; then
    for format in ${twin_formats//,/ }; do
      echo "pytorch:   $twin --workload $w --memory-format $format" >&2
      echo "pytorch $w $twin --workload $w --memory-format $format" >> "$out/commands.txt"
      $twin --workload "$w" --memory-format "$format" >> "$out/pytorch.jsonl"
    done
  fi
done
$python bench/table.py "$out" | tee "$out/table.md"
