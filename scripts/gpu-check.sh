#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU and PyTorch 2.11.0 but no cargo. It runs the release binary built
# elsewhere against libtorch 2.11.0 (SPIDERNET_BIN, default target/release/spidernet), on this machine's PyTorch
# libraries (put first on LD_LIBRARY_PATH, ahead of the binary's build-time rpath), in under 8 minutes:
#   1. spidernet doctor --device cuda: stops at once, with the reason, when CUDA cannot work;
#   2. the twin's input files, and the twin's logits checked against ours (on the CPU);
#   3. benchmarks (a) training and (c) scoring on CUDA, spidernet and its PyTorch twin on the same card, both NCHW
#      and channels-last;
#   4. one short search on CUDA (embedded digits, 1 iteration, 1 final epoch), with the final training's peak
#      device memory against the memory estimate.
# Every step has its own time limit (450 s in all); a step that fails or runs out is recorded and the next one runs. Everything
# goes under one folder named after the card: ${OUT:-target/gpu-check}/gpu-check-<card>/ (doctor.json, steps.tsv,
# spidernet.jsonl, pytorch.jsonl, table.md, search/, search.md and each step's log). Exit status: 0 when every step
# passed, 1 otherwise.
# REHEARSE=cpu runs every step on the CPU at the benchmarks' tiny test sizes, to try the script itself on a machine
# without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${SPIDERNET_BIN:-target/release/spidernet}
python=${PYTHON:-python3}
root=${OUT:-target/gpu-check}
repeats=${REPEATS:-3}
device=cuda
quick=()
if [ "${REHEARSE:-}" = cpu ]; then
  device=cpu
  quick=(--quick)
fi
started=$(date +%s)

say() { echo "gpu-check: $*" >&2; }
[ -x "$bin" ] || { say "error: $bin is missing: build it with cargo build --release and carry it over"; exit 1; }
torch_lib=$("$python" -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))") ||
  { say "error: $python cannot import torch"; exit 1; }
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mkdir -p "$root"
out=$root/gpu-check-pending
rm -rf "$out"
mkdir -p "$out"
failures=0

# step NAME LIMIT_SECONDS COMMAND...: runs COMMAND under a time limit, stderr to $out/NAME.log (stdout goes where
# the caller redirects it), and records the outcome and seconds in $out/steps.tsv.
step() {
  local name=$1 limit=$2
  shift 2
  local begin=$(date +%s) status outcome
  say "$name (limit ${limit}s): $*"
  timeout --kill-after=10 "$limit" "$@" 2> "$out/$name.log"
  status=$?
  case $status in
    0) outcome=ok ;;
    124|137) outcome="timed out after ${limit}s" ;;
    *) outcome="failed with status $status" ;;
  esac
  printf '%s\t%s\t%s\t%s\n' "$name" "$outcome" "$(( $(date +%s) - begin ))" "$*" >> "$out/steps.tsv"
  if [ $status -ne 0 ]; then
    failures=$((failures + 1))
    say "$name: $outcome; last lines of $out/$name.log:"
    tail -5 "$out/$name.log" >&2
  fi
  return $status
}

printf 'step\toutcome\tseconds\tcommand\n' > "$out/steps.tsv"
if ! step doctor 30 "$bin" doctor --device "$device" --json > "$out/doctor.json"; then
  rm -rf "$root/gpu-check-no-cuda"
  mv "$out" "$root/gpu-check-no-cuda"
  say "stopped: CUDA is not usable (see $root/gpu-check-no-cuda/doctor.json)"
  exit 1
fi
card=$("$python" -c "
import json, sys
report = json.load(open(sys.argv[1]))
if sys.argv[2] == 'cpu':
    print(f\"{report['cpu']['model']}, {report['cpu']['logical_cpus']} logical CPUs (rehearsal)\")
else:
    d = report['cuda']['devices'][0]
    print(f\"{d['name']}, {d['memory_bytes'] / 2**30:.0f} GiB, compute capability {d['compute_capability']}\")
" "$out/doctor.json" "$device")
slug=$(echo "${card%%,*}" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/-*$//')
rm -rf "$root/gpu-check-$slug"
mv "$out" "$root/gpu-check-$slug"
out=$root/gpu-check-$slug
echo "$card" > "$out/card.txt"
"$python" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'devices', torch.cuda.device_count())" \
  >> "$out/card.txt" 2>&1
say "card: $card"

files=$out/genotypes
# The logit check runs on the CPU, against the check tensors our CPU build wrote: both sides must build one network.
step files 20 "$bin" bench --workload none "${quick[@]}" --write-genotypes "$files" > /dev/null &&
  step twin-check 40 "$python" bench/twin.py --genotypes "$files" --check > "$out/twin-check.jsonl"

ours="$bin bench --device $device --workload a,c --repeats $repeats --json ${quick[*]}"
twin="$python bench/twin.py --genotypes $files --device $device --workload a,c --repeats $repeats"
: > "$out/spidernet.jsonl"
: > "$out/pytorch.jsonl"
: > "$out/commands.txt"
for format in nchw channels-last; do
  echo "spidernet a,c $ours --memory-format $format" >> "$out/commands.txt"
  step "spidernet-$format" 70 $ours --memory-format "$format" >> "$out/spidernet.jsonl"
  echo "pytorch a,c $twin --memory-format $format" >> "$out/commands.txt"
  step "pytorch-$format" 70 $twin --memory-format "$format" >> "$out/pytorch.jsonl"
done
"$python" bench/table.py "$out" "$card" > "$out/table.md" 2> "$out/table.log" && cat "$out/table.md"

rm -rf "$out/search"
step search 80 "$bin" search --device "$device" --iterations 1 --epochs-per-iteration 1 --final-epochs 1 \
  --out "$out/search" > /dev/null
"$python" - "$out/search/summary.json" > "$out/search.md" <<'EOF' && cat "$out/search.md"
import json, sys
s = json.load(open(sys.argv[1]))
peak, estimate = s.get("final_training_peak_device_bytes"), s["estimated_memory_bytes"]
mib = lambda b: f"{b / 2**20:,.1f} MiB"
print(f"search (digits, 1 iteration, 1 final epoch): test accuracy {s['test_accuracy']:.2%}, "
      f"search {s['search_training_seconds'] + s['search_scoring_seconds']:.1f} s "
      f"(training {s['search_training_seconds']:.1f} s, scoring {s['search_scoring_seconds']:.1f} s), "
      f"final training {s['final_training_seconds']:.1f} s")
if peak is None:
    print("peak device memory: not measured")
else:
    print(f"final training: peak device memory {mib(peak)} against the estimate {mib(estimate)} "
          f"(measured / estimate {peak / estimate:.2f})")
EOF

say "done in $(( $(date +%s) - started )) s with $failures failed step(s); results in $out"
column -t -s $'\t' "$out/steps.tsv" >&2 2>/dev/null || cat "$out/steps.tsv" >&2
[ $failures -eq 0 ]
