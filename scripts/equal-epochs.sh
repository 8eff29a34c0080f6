#!/usr/bin/env bash
# The equal-epoch study (docs/RESULTS.md, "Recipe or network?"): the network the 30-minute search found (seed 0) and
# the standard recipe's ResNet-9, each trained for the same number of epochs on all of Fashion-MNIST, under recipe
# and width variants, with the test split evaluated after every epoch. Resumable: a variant whose curve already has
# every epoch is skipped, and an unfinished one continues from its checkpoint (in OUT_DIR/checkpoints/), so
# rerunning the script continues where it stopped.
#
#   scripts/equal-epochs.sh [OUT_DIR]    (default docs/results/equal-epochs)
#
# EPOCHS (default 7) and SEED (default 0) set the budget; VARIANTS limits the run to a space-separated list of
# names, in the order given; THREADS (default: all) sets OMP_NUM_THREADS, so that another run can share the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/results/equal-epochs}
epochs=${EPOCHS:-7}
seed=${SEED:-0}
binary=target/release/spidernet
found=docs/results/budget-30m/runs/spidernet-seed0/genotype.json
[[ -x $binary ]] || cargo build --release
mkdir -p "$out"
[[ -n ${THREADS:-} ]] && export OMP_NUM_THREADS=$THREADS

# The found genotype at another width C: the same cells, every channel count scaled.
widened() {
  local channels=$1 path="$out/genotype-c$1.json"
  [[ -f $path ]] || sed "0,/\"channels\": 16/s//\"channels\": $channels/" "$found" > "$path"
  echo "$path"
}

# The standard recipe of bench/baselines.py --model resnet9, in spidernet's flags. The first variants ran before
# batch-norm recalibration (--bn-recalibration) was part of the default final training: they keep it off, so that
# their curves can be rerun as recorded.
standard="--bn-recalibration 0 --batch-size 128 --lr 0.1 --schedule linear --warmup-epochs $(awk "BEGIN { print $epochs / 4 }") --nesterov true \
--label-smoothing 0.1 --weight-decay 5e-4 --decay weights --crop-padding 2"

# name|genotype|flags ("quick" is the default final training as it was before recalibration).
variants=(
  "quick|$found|--bn-recalibration 0"
  "standard|$found|$standard"
  "standard-c32|$(widened 32)|$standard"
  "quick-c32|$(widened 32)|--bn-recalibration 0"
  "quick-linear|$found|--bn-recalibration 0 --schedule linear --warmup-epochs $(awk "BEGIN { print $epochs / 4 }")"
  "standard-no-smoothing|$found|$standard --label-smoothing 0"
  "standard-batch64|$found|$standard --batch-size 64"
  "standard-no-deadhead|$found|$standard --deadhead false"
  "quick-no-deadhead|$found|--bn-recalibration 0 --deadhead false"
  "standard-c32-no-deadhead|$(widened 32)|$standard --deadhead false"
  "quick-recalibrated|$found|--bn-recalibration 2048"
  "quick-recalibrated-c32|$(widened 32)|--bn-recalibration 2048"
  "quick-recalibrated-no-deadhead|$found|--bn-recalibration 2048 --deadhead false"
  "quick-frozen|$found|--bn-recalibration 2048 --freeze-gates 1"
  "quick-frozen-c32|$(widened 32)|--bn-recalibration 2048 --freeze-gates 1"
)

selected=()
if [[ -n ${VARIANTS:-} ]]; then
  for name in $VARIANTS; do
    for entry in "${variants[@]}"; do [[ ${entry%%|*} == "$name" ]] && selected+=("$entry"); done
  done
else
  selected=("${variants[@]}")
fi

for entry in "${selected[@]}"; do
  IFS='|' read -r name genotype flags <<< "$entry"
  curve="$out/$name.jsonl"
  if [[ -f $curve && $(wc -l < "$curve") -ge $epochs ]]; then
    echo "$name: done"
    continue
  fi
  echo "$name: $genotype $flags"
  # shellcheck disable=SC2086 # the flags are words
  "$binary" train "$genotype" --data fashion-mnist --epochs "$epochs" --seed "$seed" $flags --curve "$curve" \
    --checkpoint "$out/checkpoints/$name"
done
