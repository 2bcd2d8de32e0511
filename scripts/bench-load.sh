#!/usr/bin/env bash
# Benchmark (not a test) of loading into the live Milvus 2.3.5 (local storage, started by
# scripts/milvus.sh), printed in one run:
#   (a) 200 segments x 100 rows (dim 16) against the same 20 000 rows in one segment:
#       `load --no-verify` times and their ratio (goal <= 2; one import per segment took 93x).
#       UNPACKED=1 adds the same fragmented load with migration.packSegments: false (~400 s).
#   (b) 2 000 segments x 100 rows (dim 16): dump and `load --no-verify` times.
#   (c) 1M x 128 (one segment, FLAT): a full `migrate` (dump, import, index, load, verify)
#       against the server's own work on the same npy files driven by pymilvus (do_bulk_insert,
#       FLAT index, load), and their ratio (goal <= 1.1).
#   BENCH_DIR (default /dev/shm/mm-bench-load), ROWS_C (default 1000000).
set -euo pipefail
source "$(dirname "$0")/bench-env.sh"
dir="${BENCH_DIR:-/dev/shm/mm-bench-load}"
rm -rf "$dir" && mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT
run_id=$(date +%s)

now() { date +%s.%N; }
# config NAME COLLECTION EXTRA: a migration.yaml for installation $dir/NAME into a new collection.
config() {
  cat > "$dir/$1.yaml" <<YAML
meta:
  mode: sqlite
  sqliteFile: $dir/$1/db/meta.sqlite
source:
  mode: local
  local:
    tablesDir: $dir/$1/db/tables
target:
  mode: local
  local:
    outputDir: $dir/$1-out
  milvus2x:
    endpoint: $MILVUS_ENDPOINT
migration:
  rename: {bench: $2}
$3
YAML
  echo "$dir/$1.yaml"
}
# timed CMD...: runs a command quietly and prints its wall time in seconds.
timed() {
  local t0 t1
  t0=$(now)
  "$@" > "$dir/last.log" 2>&1 || { cat "$dir/last.log" >&2; echo "bench-load: '$*' failed" >&2; exit 1; }
  t1=$(now)
  echo "$t1 - $t0" | bc
}
gen() { "$bin/gen-fixture" bench "$dir/$1" --rows "$2" --segments "$3" --dim "$4" --deleted-pct 0 >&2; }
ratio() { echo "scale=2; $1 / $2" | bc; }

echo "== (a) 200 segments x 100 rows vs 1 segment x 20000 rows, dim 16 (load --no-verify)"
gen frag 20000 200 16
gen one 20000 1 16
cfg_frag=$(config frag "bench_frag_$run_id" "")
cfg_one=$(config one "bench_one_$run_id" "")
"$bin/milvus-migration" dump --config "$cfg_frag" > /dev/null
"$bin/milvus-migration" dump --config "$cfg_one" > /dev/null
t_frag=$(timed "$bin/milvus-migration" load --no-verify --config "$cfg_frag")
imports=$(grep -o 'imported [0-9]* group(s)' "$dir/last.log" || true)
t_one=$(timed "$bin/milvus-migration" load --no-verify --config "$cfg_one")
printf '  200 segments (packed; %s): %6.2f s\n  1 segment:                   %6.2f s\n  ratio: %s (goal <= 2)\n' "$imports" "$t_frag" "$t_one" "$(ratio "$t_frag" "$t_one")"
if [ "${UNPACKED:-0}" = 1 ]; then
  cfg_un=$(config frag "bench_unpacked_$run_id" "  packSegments: false")
  rm -rf "$dir/frag-out"
  "$bin/milvus-migration" dump --config "$cfg_un" > /dev/null
  t_un=$(timed "$bin/milvus-migration" load --no-verify --config "$cfg_un")
  printf '  200 segments, packSegments false: %6.2f s, ratio %s\n' "$t_un" "$(ratio "$t_un" "$t_one")"
fi

echo "== (b) 2000 segments x 100 rows, dim 16"
gen frag2k 200000 2000 16
cfg=$(config frag2k "bench_frag2k_$run_id" "")
t_dump=$(timed "$bin/milvus-migration" dump --config "$cfg")
packs=$(grep -o '([0-9]* of them packed into [0-9]* pack(s))' "$dir/last.log" || true)
t_load=$(timed "$bin/milvus-migration" load --no-verify --config "$cfg")
imports=$(grep -o 'imported [0-9]* group(s)' "$dir/last.log" || true)
printf '  dump: %6.2f s %s\n  load: %6.2f s (%s)\n' "$t_dump" "$packs" "$t_load" "$imports"

rows_c="${ROWS_C:-1000000}"
echo "== (c) $rows_c x 128, one segment: migrate vs the server's own import + FLAT index + load"
gen big "$rows_c" 1 128
cfg=$(config big "bench_big_$run_id" "")
t_mig=$(timed "$bin/milvus-migration" migrate --config "$cfg")
files=$(find "$dir/big-out/bench" -name '*.npy' | sort)
t_py=$(timed "$py" - "bench_py_$run_id" $files <<'EOF'
import sys, time
from pymilvus import connections, utility, Collection, CollectionSchema, FieldSchema, DataType
name, files = sys.argv[1], sys.argv[2:]
connections.connect(host="127.0.0.1", port="19530")
schema = CollectionSchema([FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("data", DataType.FLOAT_VECTOR, dim=128)])
c = Collection(name, schema)
t = utility.do_bulk_insert(name, files=files)
while True:
    s = utility.get_bulk_insert_state(t)
    if s.state_name in ("Completed", "Failed"):
        break
    time.sleep(0.05)
assert s.state_name == "Completed", s
c.create_index("data", {"index_type": "FLAT", "metric_type": "L2", "params": {}})
utility.wait_for_index_building_complete(name)
c.load()
EOF
)
printf '  migrate (dump + import + index + load + verify): %6.2f s\n  pymilvus (import + index + load):               %6.2f s\n  ratio: %s (goal <= 1.1)\n' "$t_mig" "$t_py" "$(ratio "$t_mig" "$t_py")"
"$py" - "$run_id" <<'EOF'
import sys
from pymilvus import connections, utility
connections.connect(host="127.0.0.1", port="19530")
for n in utility.list_collections():
    if n.startswith("bench_") and n.endswith(sys.argv[1]):
        utility.drop_collection(n)
EOF
