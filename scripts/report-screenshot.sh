#!/usr/bin/env bash
# Opens a report in headless Chromium, checks that the browser parsed the whole page, and takes a screenshot.
# Usage: scripts/report-screenshot.sh REPORT.html OUT.png [WIDTHxHEIGHT]
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 REPORT.html OUT.png [WIDTHxHEIGHT]" >&2
  exit 2
fi
report=$(realpath "$1")
out=$2
size=${3:-1280x4400}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "error: no chromium on PATH; install Debian's chromium package (apt-get install chromium)" >&2
  exit 1
fi
[ -f "$report" ] || { echo "error: $report does not exist" >&2; exit 1; }
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --disable-extensions
  --user-data-dir="$(mktemp -d)")

# The DOM the browser built must hold every drawing of the file and end with the closing tags; an unparsable or
# truncated page, or one that fails to load, does not.
dom=$(timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$report" 2>/dev/null)
expected=$({ grep -o '<svg' "$report" || true; } | wc -l)
parsed=$({ grep -o '<svg' <<<"$dom" || true; } | wc -l)
if [ "$parsed" -ne "$expected" ] || ! grep -q '</html>' <<<"$dom" || ! grep -q 'Final cells' <<<"$dom"; then
  echo "error: chromium did not load $report completely ($parsed of $expected drawings)" >&2
  exit 1
fi
echo "chromium loaded $report: all $expected drawings parsed"

rm -f "$out"
timeout 120 "$browser" "${flags[@]}" --window-size="${size/x/,}" --screenshot="$out" "file://$report" 2>/dev/null
python3 - "$out" <<'PY'
import struct, sys
path = sys.argv[1]
data = open(path, "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit(f"error: {path} is not a PNG")
width, height = struct.unpack(">II", data[16:24])
# A blank white page compresses to a few kilobytes; a page of charts and tables does not.
if len(data) < 60_000:
    sys.exit(f"error: {path} is only {len(data)} bytes: the page looks blank")
print(f"{path}: {width}x{height} screenshot, {len(data) // 1024} KiB")
PY
