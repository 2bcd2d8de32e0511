#!/usr/bin/env bash
# Sets up everything (Rust target, release build), writes a sample Milvus 1.x installation
# (float + binary collections, partitions, deletions, an index, a dropped collection), then runs
# the guide's steps on it: export -> dump to local NumPy files. Output under .run/demo/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
cargo build --release -p milvus-migration -p mm-tests
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
YAML
"$bin/milvus-migration" dump --config="$demo/migration.yaml" --report="$demo/report.json"
echo
echo "NumPy files and manifest.json are under $demo/output; the run report is $demo/report.json"
