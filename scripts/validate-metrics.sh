#!/usr/bin/env bash
# The metric-validation study on Fashion-MNIST (docs/METRICS.md, *Validating the metrics*; results in
# docs/RESULTS.md): 3 seeds × 2 search states (search phases on 10,000 images), every candidate split of every
# cell, continuations of 1 epoch over 5,000 images, 2 replicates. Resumable: rerun the script and it continues
# where it stopped. THREADS (default: all) sets OMP_NUM_THREADS, so that a build can share the machine.
#
#   scripts/validate-metrics.sh [OUT_DIR]    (default docs/results/validation/fashion-mnist)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/results/validation/fashion-mnist}
binary=target/release/spidernet
[[ -x $binary ]] || cargo build --release
[[ -n ${THREADS:-} ]] && export OMP_NUM_THREADS=$THREADS
"$binary" validate-metrics --data fashion-mnist --seeds "${SEEDS:-0,1,2}" --states 2 --search-samples 10000 \
  --continuation-epochs 1 --continuation-samples 5000 --replicates 2 --out "$out"
