#!/usr/bin/env bash
# The project's virtualenv with the extras asked for: hack/venv.sh VENV EXTRAS (e.g. .venv dev).
# uv installs it when uv can be had (one wheel from PyPI, kept in $CACHE/uv): ~25 s on this
# machine from a warm cache, where pip took 3-5 minutes for the same ~150 packages (one index
# round trip after another). Without uv (no index reachable for it), pip does the same job.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
venv=$1
extras=$2
uv=$CACHE/uv/bin/uv
if [ ! -x "$uv" ]; then
  progress "installing uv into $CACHE/uv (once)"
  if ! { python3 -m venv "$CACHE/uv" && "$CACHE/uv/bin/pip" install -q 'uv>=0.5,<1'; }; then
    progress "uv unavailable: pip instead"
    rm -rf "$CACHE/uv"
  fi
fi
if [ -x "$uv" ]; then
  # --seed: pip inside the venv too (hack/build-images.sh builds the images' wheels with it).
  [ -x "$venv/bin/python" ] || "$uv" venv -q --seed --python python3 "$venv"
  VIRTUAL_ENV=$venv "$uv" pip install -q -e ".[$extras]"
else
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -e ".[$extras]"
fi
