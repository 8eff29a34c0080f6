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
# The c10d shim (src/distributed/) compiles against libtorch's ProcessGroupGloo.hpp, which includes gloo's headers;
# the wheel ships c10d's but not gloo's. These are Debian 12's, unpacked from the package without installing it.
# They serve only to declare the types the shim passes through as pointers (docs/DISTRIBUTED.md, *Building*).
GLOO_DEB_VERSION=0.0~git20220518.5b14351-3
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
  rm -rf "$venv"
  mv "$venv.partial" "$venv"
  torch_ok || { say "error: torch $TORCH_VERSION did not import from $venv"; exit 1; }
fi
# A venv writes its own path into its console scripts' shebangs (torchrun, pip) and its activate files: those of
# one built under the .partial name, by this script or an earlier one, are rewritten to the path it has now.
"$venv/bin/python" - "$venv" <<'EOF_PY'
import pathlib, sys
root = pathlib.Path(sys.argv[1])
# The name ends the path, so this rewrites both the path and the prompt's name.
old, new = f"{root.name}.partial".encode(), root.name.encode()
for path in [*(root / "bin").iterdir(), root / "pyvenv.cfg"]:
    if path.is_symlink() or not path.is_file():
        continue
    text = path.read_bytes()
    if old in text:
        path.write_bytes(text.replace(old, new))
EOF_PY
"$venv/bin/torchrun" --help >/dev/null || { say "error: $venv/bin/torchrun does not run"; exit 1; }

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

# gloo's headers for the c10d shim, unpacked into the cache once (apt-get download needs no root). Without them
# only a single-process build works (cargo build --no-default-features): a warning, not a failure.
gloo="$cache/gloo-headers-${GLOO_DEB_VERSION//[~:]/_}"
fetch_gloo() {
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || {
    say "warning: apt-get and dpkg-deb are needed to fetch gloo's headers; build with --no-default-features (no distributed runs)"
    return 1
  }
  local tmp="$gloo.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  if ! (cd "$tmp" && apt-get download -qq "libgloo-dev=$GLOO_DEB_VERSION" 2>/dev/null); then
    # A fresh machine may not have read the package lists yet; only root can.
    [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1
    (cd "$tmp" && apt-get download -qq "libgloo-dev=$GLOO_DEB_VERSION") || {
      say "warning: could not download libgloo-dev=$GLOO_DEB_VERSION; build with --no-default-features (no distributed runs)"
      rm -rf "$tmp"
      return 1
    }
  fi
  dpkg-deb -x "$tmp"/libgloo-dev_*.deb "$tmp/root"
  rm -rf "$gloo"
  mv "$tmp/root" "$gloo"
  rm -rf "$tmp"
}
if [ -f "$gloo/usr/include/gloo/algorithm.h" ]; then
  say "gloo headers already in $gloo"
else
  say "unpacking libgloo-dev=$GLOO_DEB_VERSION's headers into $gloo"
  fetch_gloo || exit 0
fi
ln -sfn "$gloo/usr/include" "$repo/.gloo-include"
say "gloo headers ready: $repo/.gloo-include"
