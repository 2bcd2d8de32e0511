#!/usr/bin/env bash
# The project's Python venv (.venv): numpy for byte-exact npy checks. Idempotent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="${MM_VENV:-$root/.venv}"
pins=(numpy==2.4.6)
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import numpy, sys; sys.exit(numpy.__version__ != "2.4.6")' 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
"$venv/bin/python" -c 'import numpy; print("numpy", numpy.__version__, "in", "'"$venv"'")'
