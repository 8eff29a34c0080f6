#!/usr/bin/env bash
# The kill-anywhere soak of docs/RELIABILITY.md: a small digits search, search and final training, is interrupted at a
# random moment and resumed, again and again; every cycle must end with the genotype, weights and test accuracy of an
# uninterrupted run with the same seed, and with the same files.
#
#   scripts/soak.sh [KILL_CYCLES [TERM_CYCLES]] [OUT_DIR]      (default 30 SIGKILL and 10 SIGTERM cycles)
#
# The moments are drawn uniformly over the uninterrupted run's wall time, except that every third cycle draws its
# moment within that run's final training (which is short), and the first SIGKILL falls 0.05 s after the start,
# before the run folder exists: resume must then refuse with advice, and the same command start the run again.
#
# Then one cycle whose disk fills up: the run folder is on a small tmpfs (needs root), the search fails for want of
# space, the tmpfs is enlarged and the run resumed. SOAK_SEED (default 1) seeds the kill moments; SETTINGS
# overrides the search. One line per cycle goes to OUT_DIR/cycles.jsonl; the last line printed is the summary.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
kills="${1:-30}"
terms="${2:-10}"
out="${3:-$root/runs/soak}"
binary="$root/target/release/spidernet"
settings="${SETTINGS:---reductions 1 --channels 8 --iterations 3 --epochs-per-iteration 2 --search-samples 600 --final-epochs 24 --final-samples 1200 --seed 7}"
RANDOM="${SOAK_SEED:-1}"
[ -x "$binary" ] || (cd "$root" && cargo build --release)
rm -rf "$out"
mkdir -p "$out"
log="$out/cycles.jsonl"
: > "$log"

# The run folder's files, relative to it, sorted (report.html's charts included).
files_of() { (cd "$1" && find . -type f | sort); }

# The phase the last JSON event of a killed process names, "file writing" when a temporary file was left.
phase_of() { # events_file run_dir
  if find "$2" -name '.*.tmp-*' 2>/dev/null | grep -q .; then echo "file writing"; return; fi
  python3 - "$1" <<'EOF'
import json, sys
last = None
for line in open(sys.argv[1]):
    try:
        last = json.loads(line)
    except ValueError:
        pass
event = (last or {}).get("event")
if event is None:
    print("start (data loading, first checkpoint)")
elif event in ("candidate_scored", "iteration_started"):
    print("scoring")
elif event in ("mutation_applied", "mutation_refused", "ops_deadheaded", "iteration_finished"):
    print("iteration commit")
elif event == "training_started" or (event == "epoch_finished" and last.get("iteration", 0) > 0):
    print("search training")
elif event == "search_stopped":
    print("before the final training")
elif event in ("final_training_started", "epoch_finished"):
    print("final training")
else:
    print("after " + event)
EOF
}

# Compares run folder $1 with the reference; prints "ok" or what differs.
compare() {
  local what=()
  cmp -s "$1/genotype.json" "$out/reference/genotype.json" || what+=("genotype")
  cmp -s "$1/weights.safetensors" "$out/reference/weights.safetensors" || what+=("weights")
  [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["test_accuracy"])' "$1/summary.json" 2>/dev/null)" = \
    "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["test_accuracy"])' "$out/reference/summary.json")" ] ||
    what+=("test accuracy")
  [ "$(files_of "$1")" = "$(files_of "$out/reference")" ] || what+=("files: $(diff <(files_of "$1") <(files_of "$out/reference") | grep '^[<>]' | tr '\n' ' ')")
  if [ ${#what[@]} -eq 0 ]; then echo ok; else (IFS=';'; echo "${what[*]}"); fi
}

# Records one cycle.
record() { # kind cycle signal_seconds phase exit_code result
  python3 -c 'import json,sys; k,c,s,p,e,r=sys.argv[1:]; print(json.dumps({"kind":k,"cycle":int(c),"signal_after_s":float(s),"phase":p,"exit":int(e),"result":r}))' "$@" >> "$log"
  echo "$(date -u +%T) $1 $2: signal after $3 s in $4 (exit $5): $6"
}

echo "$(date -u +%T) reference run: spidernet search $settings"
start=$(date +%s.%N)
# Each event line is stamped with its arrival, to find when the final training began.
# shellcheck disable=SC2086
"$binary" search --out "$out/reference" --json $settings 2> "$out/reference.err" |
  while IFS= read -r line; do printf '%s %s\n' "$(date +%s.%N)" "$line"; done > "$out/reference.events"
reference_seconds=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$start" "$(date +%s.%N)")
final_start=$(python3 - "$out/reference.events" "$start" <<'EOF'
import sys
for line in open(sys.argv[1]):
    stamp, _, event = line.partition(" ")
    if '"event":"final_training_started"' in event:
        print(f"{float(stamp) - float(sys.argv[2]):.2f}")
        break
EOF
)
[ -n "$final_start" ] || { echo "error: the reference run reported no final_training_started event" >&2; exit 1; }
echo "$(date -u +%T) reference: $reference_seconds s, the final training from $final_start s"

cycle() { # kind(SIGKILL|SIGTERM) number
  local kind=$1 n=$2 run="$out/$1-$2"
  local delay from=0
  [ $((n % 3)) -eq 0 ] && from=$final_start
  delay=$(python3 -c "import sys; a, b, u = map(float, sys.argv[1:]); print(f'{a + (b - a) * u / 32768:.2f}')" \
    "$from" "$reference_seconds" "$RANDOM")
  [ "$kind" = SIGKILL ] && [ "$n" -eq 1 ] && delay=0.05
  # shellcheck disable=SC2086
  "$binary" search --out "$run" --json $settings > "$run.events" 2> "$run.err" &
  local pid=$!
  sleep "$delay"
  kill "-${kind#SIG}" "$pid" 2>/dev/null || true
  local code=0
  wait "$pid" || code=$?
  local phase
  phase=$(phase_of "$run.events" "$run")
  [ "$code" -eq 0 ] && phase="after the run ended"
  local result
  if [ "$kind" = SIGTERM ] && [ "$code" -ne 0 ] && [ "$code" -ne 143 ]; then
    result="SIGTERM exit status $code, not 143"
  elif [ "$kind" = SIGTERM ] && [ "$code" -eq 143 ] && ! grep -q "interrupted; resume with: spidernet search --resume $run" "$run.err"; then
    result="no resume hint after SIGTERM"
  else
    if [ "$code" -ne 0 ] && [ ! -f "$run/config.json" ]; then
      # Stopped before its first checkpoint: --resume must refuse and say to start again, which the cycle does.
      if "$binary" search --resume "$run" > /dev/null 2>> "$run.err"; then
        record "$kind" "$n" "$delay" "$phase" "$code" "resumed a folder without config.json"; return
      fi
      grep -q "nothing to resume: start it again with the same command" "$run.err" ||
        { record "$kind" "$n" "$delay" "$phase" "$code" "resume refused without advice"; return; }
      # shellcheck disable=SC2086
      "$binary" search --out "$run" $settings > /dev/null 2>> "$run.err" ||
        { record "$kind" "$n" "$delay" "$phase" "$code" "the restart failed"; return; }
      phase="$phase; restarted"
    elif [ "$code" -ne 0 ]; then
      "$binary" search --resume "$run" > /dev/null 2>> "$run.err" || { record "$kind" "$n" "$delay" "$phase" "$code" "resume failed"; return; }
    fi
    result=$(compare "$run")
  fi
  record "$kind" "$n" "$delay" "$phase" "$code" "$result"
}

for n in $(seq 1 "$kills"); do cycle SIGKILL "$n"; done
for n in $(seq 1 "$terms"); do cycle SIGTERM "$n"; done

# The full disk: a tmpfs holding the run folder, twice the final weights' size, fills during the final training.
disk="$out/full-disk"
mkdir -p "$disk"
weights_bytes=$(stat -c %s "$out/reference/weights.safetensors")
if mount -t tmpfs -o "size=$((2 * weights_bytes))" tmpfs "$disk" 2>/dev/null; then
  code=0
  # shellcheck disable=SC2086
  "$binary" search --out "$disk/run" $settings > /dev/null 2> "$out/full-disk.err" || code=$?
  error=$(grep '^error: ' "$out/full-disk.err" || true)
  leftovers=$(find "$disk/run" -name '.*.tmp-*' | wc -l)
  mount -o remount,size=256m "$disk"
  if [ "$code" -eq 0 ]; then
    result="the run fitted: the tmpfs was not small enough"
  elif [[ "$error" != *"No space left on device"* ]]; then
    result="unexpected error: $error"
  elif [ "$leftovers" -ne 0 ]; then
    result="$leftovers temporary files left"
  elif ! "$binary" search --resume "$disk/run" > /dev/null 2>> "$out/full-disk.err"; then
    result="resume failed"
  else
    result=$(compare "$disk/run")
  fi
  record full-disk 1 0 "${error:-no error}" "$code" "$result"
  umount -l "$disk"
else
  echo "full-disk cycle skipped: cannot mount a tmpfs (needs root)"
fi

python3 - "$log" <<'EOF'
import collections, json, sys
cycles = [json.loads(line) for line in open(sys.argv[1])]
phases = collections.Counter(c["phase"] for c in cycles if c["kind"] != "full-disk")
bad = [c for c in cycles if c["result"] != "ok"]
print(f"{len(cycles)} cycles, {len(bad)} mismatches; kills by phase: " + ", ".join(f"{p}: {n}" for p, n in sorted(phases.items())))
for c in bad:
    print(f"  {c['kind']} {c['cycle']}: {c['result']}")
EOF
