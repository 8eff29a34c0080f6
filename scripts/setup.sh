#!/usr/bin/env bash
# Installs libtorch 2.11.0 (from PyPI's torch wheel) into a cached virtual environment outside the clone,
# and points this checkout at it. Idempotent: a second run only checks and relinks.
#
# Cache location: $SPIDERNET_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/spidernet.
set -euo pipefail

TORCH_VERSION=2.11.0
# The export tests run our ONNX files in onnxruntime and check them with onnx's checker.
ONNXRUNTIME_VERSION=1.32.0
ONNX_VERSION=1.23.2
# The spidernet_torch package (python/) is built with this setuptools (bdist_wheel built in, no isolated build
# env); python/tests/check_onnx_route.py measures onnx2torch, which needs the torchvision of our torch.
SETUPTOOLS_VERSION=80.9.0
ONNX2TORCH_VERSION=1.5.15
TORCHVISION_VERSION=0.26.0
# The metric-validation tests check our rank correlations against scipy.stats.
SCIPY_VERSION=1.17.1
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${SPIDERNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spidernet}
venv="$cache/venv-torch-$TORCH_VERSION"
libtorch="$cache/libtorch-$TORCH_VERSION"
python=${PYTHON:-python3}

say() { echo "setup: $*" >&2; }

torch_ok() {
  [ -x "$venv/bin/python" ] &&
    "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null
}

mkdir -p "$cache"
if torch_ok; then
  say "torch $TORCH_VERSION already in $venv"
else
  say "installing torch==$TORCH_VERSION into $venv (about 3 GB from PyPI, once)"
  command -v "$python" >/dev/null || { say "error: $python not found; install Python 3.9+ first"; exit 1; }
  rm -rf "$venv.partial"
  "$python" -m venv "$venv.partial"
  "$venv.partial/bin/python" -m pip install --quiet --upgrade pip
  "$venv.partial/bin/python" -m pip install --quiet "torch==$TORCH_VERSION" numpy
  # Only a complete install takes the final name, so an interrupted set-up never looks finished.
  # (Moving a venv is safe here: everything runs through its bin/python, never a script's shebang.)
  rm -rf "$venv"
  mv "$venv.partial" "$venv"
  torch_ok || { say "error: torch $TORCH_VERSION did not import from $venv"; exit 1; }
fi

onnx_ok() {
  "$venv/bin/python" -c "
import sys, onnx, onnxruntime
sys.exit(onnxruntime.__version__ != '$ONNXRUNTIME_VERSION' or onnx.__version__ != '$ONNX_VERSION')" 2>/dev/null
}
if onnx_ok; then
  say "onnxruntime $ONNXRUNTIME_VERSION and onnx $ONNX_VERSION already in $venv"
else
  say "installing onnxruntime==$ONNXRUNTIME_VERSION and onnx==$ONNX_VERSION into $venv"
  "$venv/bin/python" -m pip install --quiet "onnxruntime==$ONNXRUNTIME_VERSION" "onnx==$ONNX_VERSION"
  onnx_ok || { say "error: onnxruntime $ONNXRUNTIME_VERSION / onnx $ONNX_VERSION did not import from $venv"; exit 1; }
fi

python_tools_ok() {
  "$venv/bin/python" -c "
import sys, importlib.metadata as m
want = {'setuptools': '$SETUPTOOLS_VERSION', 'onnx2torch': '$ONNX2TORCH_VERSION', 'torchvision': '$TORCHVISION_VERSION',
        'scipy': '$SCIPY_VERSION'}
sys.exit(any(m.version(name).split('+')[0] != version for name, version in want.items()))" 2>/dev/null
}
if python_tools_ok; then
  say "setuptools $SETUPTOOLS_VERSION, onnx2torch $ONNX2TORCH_VERSION, torchvision $TORCHVISION_VERSION and scipy $SCIPY_VERSION already in $venv"
else
  say "installing setuptools==$SETUPTOOLS_VERSION, onnx2torch==$ONNX2TORCH_VERSION, torchvision==$TORCHVISION_VERSION, scipy==$SCIPY_VERSION into $venv"
  # torch pinned too, so that pip never trades our torch for the newest one torchvision would accept.
  "$venv/bin/python" -m pip install --quiet "setuptools==$SETUPTOOLS_VERSION" "onnx2torch==$ONNX2TORCH_VERSION" \
    "torchvision==$TORCHVISION_VERSION" "scipy==$SCIPY_VERSION" "torch==$TORCH_VERSION"
  python_tools_ok || { say "error: setuptools / onnx2torch / torchvision / scipy did not install into $venv"; exit 1; }
fi
# The package itself, every time (a second or two, offline): the venv then runs this checkout's version.
"$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation --force-reinstall "$repo/python"
rm -rf "$repo/python/build" "$repo/python/spidernet_torch.egg-info"
say "spidernet_torch $("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('spidernet-torch'))") installed from $repo/python"

torch_dir=$("$venv/bin/python" -c "import torch, os; print(os.path.dirname(torch.__file__))")
abi=$("$venv/bin/python" -c "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))")
[ "$abi" = 1 ] || { say "error: torch in $venv uses the pre-C++11 ABI, which tch does not expect"; exit 1; }

# tch's build script wants a libtorch folder (include/, lib/, build-version): make one out of the wheel's files.
tmp="$libtorch.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
ln -s "$torch_dir/include" "$tmp/include"
ln -s "$torch_dir/lib" "$tmp/lib"
echo "$TORCH_VERSION" > "$tmp/build-version"
rm -rf "$libtorch"
mv "$tmp" "$libtorch"

ln -sfn "$libtorch" "$repo/.libtorch"
ln -sfn "$venv" "$repo/.venv"
say "libtorch $TORCH_VERSION ready: $repo/.libtorch -> $libtorch"
