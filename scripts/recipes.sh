#!/usr/bin/env bash
# The final-training recipe study (docs/RESULTS.md, "Final-training recipe"): one genotype trained on a seeded
# Fashion-MNIST subset under each recipe variant, with the test split evaluated after every epoch. Resumable: a
# variant whose curve already has every epoch is skipped, so rerunning the script continues where it stopped.
#
#   scripts/recipes.sh [OUT_DIR]    (default docs/results/recipes)
#
# EPOCHS (default 5), SAMPLES (default 10000) and SEED (default 0) set the budget; VARIANTS limits the run to a
# space-separated list of names.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/results/recipes}
epochs=${EPOCHS:-5}
samples=${SAMPLES:-10000}
seed=${SEED:-0}
binary=target/release/spidernet
genotype=docs/results/recipes/initial-genotype.json
[[ -x $binary ]] || cargo build --release
mkdir -p "$out"

# name: flags (the quick profile's recipe is the base; "reference" changes nothing).
variants=(
  "reference:"
  "lr0.025:--lr 0.025"
  "lr0.05:--lr 0.05"
  "lr0.1:--lr 0.1"
  "lr0.05-cutout0:--lr 0.05 --cutout-probability 0"
  "lr0.05-droppath0:--lr 0.05 --drop-path 0"
  "lr0.05-aux0:--lr 0.05 --aux-weight 0"
  "lr0.05-light:--lr 0.05 --cutout-probability 0 --drop-path 0"
  "lr0.1-light:--lr 0.1 --cutout-probability 0 --drop-path 0"
  "lr0.1-light-aux0:--lr 0.1 --cutout-probability 0 --drop-path 0 --aux-weight 0"
  "lr0.1-light-nesterov-warmup1:--lr 0.1 --cutout-probability 0 --drop-path 0 --nesterov true --warmup-epochs 1"
  "lr0.1-light-smooth0.1:--lr 0.1 --cutout-probability 0 --drop-path 0 --label-smoothing 0.1"
  "lr0.1-ramp-cutout0:--lr 0.1 --cutout-probability 0 --drop-path-ramp true"
  "lr0.1-light-batch128:--lr 0.1 --cutout-probability 0 --drop-path 0 --batch-size 128"
)

for entry in "${variants[@]}"; do
  name=${entry%%:*}
  flags=${entry#*:}
  if [[ -n ${VARIANTS:-} && " $VARIANTS " != *" $name "* ]]; then continue; fi
  curve="$out/$name.jsonl"
  if [[ -f $curve && $(wc -l < "$curve") -ge $epochs ]]; then
    echo "$name: done"
    continue
  fi
  echo "$name: $flags"
  # shellcheck disable=SC2086 # the flags are words
  "$binary" train "$genotype" --data fashion-mnist --train-samples "$samples" --epochs "$epochs" --seed "$seed" \
    $flags --curve "$curve"
done
