#!/usr/bin/env bash
# GPU check, run on a machine with an NVIDIA GPU and PyTorch 2.11.0 but no cargo (the device machine). It uses the
# release binary built elsewhere against libtorch 2.11.0 (target/release/spidernet, carried over), points it at this
# machine's PyTorch libraries, then, in a few minutes:
#   - benchmark (a) training throughput and (c) scoring one candidate on CUDA;
#   - the PyTorch twin of (a) on the same card;
#   - one short search iteration on CUDA (embedded digits), end to end.
# Results go to ${OUT:-target/gpu-check}: the JSON lines of both sides, the table, and the search's run folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SPIDERNET_BIN:-target/release/spidernet}
python=${PYTHON:-python3}
out=${OUT:-target/gpu-check}
repeats=${REPEATS:-5}
mkdir -p "$out"
[ -x "$bin" ] || { echo "error: $bin is missing: build it with cargo build --release and carry it over" >&2; exit 1; }
torch_lib=$("$python" -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
gpu=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1)
echo "GPU: $gpu; torch $("$python" -c 'import torch; print(torch.__version__, torch.cuda.is_available())')"

ours_cmd="$bin bench --device cuda --workload a,c --repeats $repeats --json --write-genotypes $out/genotypes"
twin_cmd="$python bench/twin.py --device cuda --genotypes $out/genotypes --workload a --repeats $repeats"
timeout 300 $ours_cmd > "$out/spidernet.jsonl"
timeout 200 $twin_cmd > "$out/pytorch.jsonl"
printf 'spidernet a,c %s\npytorch a %s\n' "$ours_cmd" "$twin_cmd" > "$out/commands.txt"
"$python" bench/table.py "$out" "$gpu" | tee "$out/table.md"

rm -rf "$out/search"
start=$(date +%s)
timeout 200 "$bin" search --device cuda --iterations 1 --epochs-per-iteration 1 --no-final --out "$out/search" \
  2> "$out/search.log" >/dev/null
echo "one search iteration on CUDA (digits, R=2 C=16, 1 epoch, scoring included): $(( $(date +%s) - start )) s"
tail -3 "$out/search.log"
