#!/usr/bin/env bash
# Fuzzes the parsers and run-folder readers (every target, or the TARGETs given) for SECONDS each (default 120), starting
# from the committed seeds. Usage: scripts/fuzz.sh [SECONDS [TARGET...]]
# Needs the nightly toolchain and cargo-fuzz (cargo install cargo-fuzz); results are in docs/FUZZING.md.
set -euo pipefail
seconds=${1:-120}
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"
# The fuzz binaries link libtorch through the spidernet crate but do not get its rpath.
export LD_LIBRARY_PATH="$root/.libtorch/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
targets=("${@:2}")
[ ${#targets[@]} -gt 0 ] || targets=(idx cifar genotype_json checkpoint_state history plans normalization weights image)
mkdir -p artifacts
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  echo "== $target: $seconds s (full log: fuzz/artifacts/$target.log)"
  status=0
  # Run-folder seeds are whole files of a real run, larger than the parsers' inputs.
  case "$target" in
    weights) max_len=131072 ;;
    history | checkpoint_state | plans) max_len=32768 ;;
    *) max_len=8192 ;;
  esac
  cargo +nightly fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 > "artifacts/$target.log" 2>&1 || status=$?
  grep -E "DONE|stat::|ERROR|SUMMARY|panicked|Test unit written" "artifacts/$target.log" || true
  [ "$status" -eq 0 ] || { echo "fuzz target $target failed (exit $status)"; exit "$status"; }
done
