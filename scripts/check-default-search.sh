#!/usr/bin/env bash
# Runs the README's default search (embedded digits, seed 0) and checks that the final test accuracy is at
# least 96 %, then that its report opens in headless Chromium (screenshot in target/check-default-search/).
# Prints the wall time; the time target (5 minutes on 2 cores) is tracked in docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/check-default-search
rm -rf "$out"
start=$(date +%s)
cargo run --release --quiet -- search --out "$out" 2>/dev/null
echo "default search took $(( $(date +%s) - start )) s"
python3 - "$out/summary.json" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
accuracy = summary["test_accuracy"]
print(f"default search: test accuracy {100 * accuracy:.2f}%")
if accuracy < 0.96:
    sys.exit(f"default search reached {100 * accuracy:.2f}%, below the 96% it must reach")
PY
scripts/report-screenshot.sh "$out/report.html" "$out/report.png"
