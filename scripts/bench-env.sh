# Sourced by the Milvus benchmarks (bench-insert.sh, bench-load.sh, bench-verify.sh) after `set -euo pipefail`:
# the release build, the venv, and a Milvus 2.3.5 on local storage (scripts/milvus.sh); sets root, bin, py and
# exports MILVUS_*. Build and setup output goes to stderr, so stdout keeps only the figures.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
source scripts/env.sh
scripts/python-env.sh >&2
mm_build >&2
bin="$CARGO_TARGET_DIR/release"
py="$root/.venv/bin/python"
eval "$(MM_MILVUS_STORAGE=local bash scripts/milvus.sh start | grep -E '^MILVUS_[A-Z_]+=' | sed 's/^/export /')"
