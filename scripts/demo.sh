#!/usr/bin/env bash
# The guide end to end on an embedded sample: sets up what is missing (Rust target, release build,
# the Python venv with the milvus==2.3.5 wheel), starts a Milvus 2.3.5 standalone on 127.0.0.1:19530
# (scripts/milvus.sh, by PID; it keeps running), writes a sample Milvus 1.x installation (float +
# binary collections, partitions, deletions, an index, a dropped collection), runs the guide's three
# commands verbatim (export -s ... -o ..., dump --config=..., load --config=...; load verifies), and
# searches Milvus for a stored vector to show the data is there. Output under .run/demo/. A second
# run reuses the build, the venv and the running Milvus. Stop Milvus with: bash scripts/milvus.sh stop
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
cargo build --release -p milvus-migration -p mm-tests
scripts/python-env.sh
eval "$(MM_MILVUS_STORAGE=local bash scripts/milvus.sh start | grep -E '^MILVUS_[A-Z_]+=' | sed 's/^/export /')"
py="$root/.venv/bin/python"
bin="$CARGO_TARGET_DIR/release"
demo="$root/.run/demo"
rm -rf "$demo" && mkdir -p "$demo"
"$bin/gen-fixture" sample "$demo/milvus"
"$bin/milvus-migration" export -s "$demo/milvus/db/meta.sqlite" -o "$demo/migration_data"
cat > "$demo/migration.yaml" <<YAML
dumper:
  worker:
    limit: 2
    workMode: milvus1x
    reader:
      bufferSize: 1024
    writer:
      bufferSize: 1024
meta:
  mode: local
  localFile: $demo/migration_data/meta.json
source:
  mode: local
  local:
    tablesDir: $demo/milvus/db/tables
target:
  mode: local
  local:
    outputDir: $demo/output
  milvus2x:
    endpoint: $MILVUS_ENDPOINT
migration:
  # The demo's own 2.x names, dropped and loaded afresh on every run.
  rename: {books: demo_books, fingerprints: demo_fingerprints}
YAML
"$py" - "$MILVUS_ENDPOINT" <<'PY'
import sys
from pymilvus import connections, utility
host, port = sys.argv[1].rsplit(":", 1)
connections.connect(host=host, port=port)
for c in ("demo_books", "demo_fingerprints"):
    if utility.has_collection(c):
        utility.drop_collection(c)
PY
"$bin/milvus-migration" dump --config="$demo/migration.yaml" --report="$demo/report.json"
"$bin/milvus-migration" load --config="$demo/migration.yaml" --report="$demo/load-report.json"
echo
# Queryable: the first live row of books' default partition, searched for, comes back first.
"$py" - "$MILVUS_ENDPOINT" "$demo/output" <<'PY'
import glob, sys
import numpy as np
from pymilvus import Collection, connections
host, port = sys.argv[1].rsplit(":", 1)
connections.connect(host=host, port=port)
first = sorted(glob.glob(f"{sys.argv[2]}/books/_default/**/id.npy", recursive=True))[0]
i, v = int(np.load(first)[0]), np.load(first.replace("id.npy", "data.npy"))[0].tolist()
hit = Collection("demo_books").search([v], "data", {"metric_type": "L2", "params": {"ef": 64}}, limit=1, consistency_level="Strong")[0][0]
print(f"search in demo_books for the vector of id {i}: Milvus 2.x returns id {hit.id} first (distance {hit.distance:.1f})")
assert hit.id == i
PY
echo
echo "NumPy files and manifest.json are under $demo/output; run reports: $demo/report.json, $demo/load-report.json"
echo "Milvus 2.3.5 keeps running on $MILVUS_ENDPOINT (collections demo_books, demo_fingerprints); stop it with: bash scripts/milvus.sh stop"
