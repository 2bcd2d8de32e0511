#!/usr/bin/env bash
# The project's Python venv (.venv, or $MM_VENV): numpy for byte-exact npy checks, plus the Milvus 2.3.5
# standalone binaries (the `milvus` wheel), the pymilvus 2.3.7 client and the S3 client used by
# scripts/milvus.sh and tests/py/. Pins: shared/spec/test-env.md §5.1 (this set works together).
# Idempotent: skips when the venv already imports pymilvus, milvus and the pinned numpy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="${MM_VENV:-$root/.venv}"
numpy_pin=2.4.6
pins=(
  milvus==2.3.5 pymilvus==2.3.7 'setuptools<70' marshmallow==3.22.0 environs==9.5.0 grpcio==1.60.0
  "numpy==$numpy_pin" protobuf==7.36.2 minio==7.2.20 pandas==3.1.1 pyarrow==26.0.1
)
check='import sys, numpy, pymilvus, milvus; sys.exit(numpy.__version__ != "'"$numpy_pin"'")'
if [ -x "$venv/bin/python" ] && [ -x "$venv/bin/milvus-server" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
  exit 0
fi
echo "python-env: installing ${pins[*]} into $venv" >&2
t0=$SECONDS
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
"$venv/bin/python" -c "$check" || { echo "python-env: $venv still fails: $check" >&2; exit 1; }
"$venv/bin/python" -c 'import numpy, pymilvus, milvus; print("python-env: numpy", numpy.__version__, "pymilvus", pymilvus.__version__, "milvus", milvus.__version__, "in", "'"$venv"'")'
echo "python-env: done in $((SECONDS - t0)) s" >&2
