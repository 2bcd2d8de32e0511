#!/usr/bin/env bash
# Benchmark (not a test) of `migration.loadMode: insert` against the live Milvus 2.3.5 (local
# storage, scripts/milvus.sh), printed in one run, 1M x 128 float rows (4 segments):
#   - `load --no-verify` with loadMode insert (rows over gRPC, 16 MiB batches): rows/s;
#   - a pymilvus script inserting the same rows (read from the same npy files) in 10k-row
#     batches into the same server: rows/s, and the ratio insert-load / script (goal >= 1.5);
#   - `load --no-verify` with loadMode import (bulk import of the same dump): rows/s;
#   - full `migrate` times (dump, load, index none, verify) with insert and with import;
#   - `verify --full` of the collection `migrate` loaded with inserts (every key and vector).
#   BENCH_DIR (default /dev/shm/mm-bench-insert), ROWS (default 1000000), DIM (default 128),
#   BATCH_MIB (migration.insertBatchMiB, default 16).
#   PIN=1: Milvus on CPU 0 and both clients on CPU 1 (taskset), as if the server had a machine of its own:
#   on 2 shared cores the script's own CPU use slows the server it measures. Restored at the end.
set -euo pipefail
source "$(dirname "$0")/bench-env.sh"
dir="${BENCH_DIR:-/dev/shm/mm-bench-insert}"
rows="${ROWS:-1000000}" dim="${DIM:-128}" batch="${BATCH_MIB:-16}"
rm -rf "$dir" && mkdir -p "$dir"
client=()
if [ "${PIN:-0}" = 1 ]; then
  milvus_pid=$(cat "${MM_TE_DIR:-$HOME/.cache/milvus-migration/te}/run/milvus.pid")
  taskset -a -cp 0 "$milvus_pid" > /dev/null
  client=(taskset -c 1)
  trap 'taskset -a -cp "0-$(($(nproc) - 1))" "$milvus_pid" > /dev/null; rm -rf "$dir"' EXIT
else
  trap 'rm -rf "$dir"' EXIT
fi
run=$(date +%s)
now() { date +%s.%N; }
timed() {
  local t0 t1
  t0=$(now)
  "${client[@]}" "$@" > "$dir/last.log" 2>&1 || { cat "$dir/last.log" >&2; echo "bench-insert: '$*' failed" >&2; exit 1; }
  t1=$(now)
  echo "$t1 - $t0" | bc
}
"$bin/gen-fixture" bench "$dir/src" --rows "$rows" --segments 4 --dim "$dim" --deleted-pct 0 >&2
config() { # NAME COLLECTION MODE
  cat > "$dir/$1.yaml" <<YAML
meta:
  mode: sqlite
  sqliteFile: $dir/src/db/meta.sqlite
source:
  mode: local
  local:
    tablesDir: $dir/src/db/tables
target:
  mode: local
  local:
    outputDir: $dir/$1-out
  milvus2x:
    endpoint: $MILVUS_ENDPOINT
migration:
  rename: {bench: $2}
  loadMode: $3
  insertBatchMiB: $batch
  index: none
  load: false
YAML
  echo "$dir/$1.yaml"
}
ins=$(config ins "bench_ins_$run" insert)
imp=$(config imp "bench_imp_$run" import)
timed "$bin/milvus-migration" dump --config "$ins" > /dev/null
cp -r "$dir/ins-out" "$dir/imp-out"
t_ins=$(timed "$bin/milvus-migration" load --no-verify --config "$ins")
t_imp=$(timed "$bin/milvus-migration" load --no-verify --config "$imp")
# The script: the same rows from the same npy files, 10k a call, as a pymilvus user would.
t_py=$("${client[@]}" "$py" - "$dir/ins-out" "bench_py_$run" "$dim" "$MILVUS_ENDPOINT" <<'PY'
import glob, sys, time
import numpy as np
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections
out, name, dim, ep = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
host, port = ep.rsplit(":", 1)
connections.connect(host=host, port=port)
schema = CollectionSchema([FieldSchema("id", DataType.INT64, is_primary=True, auto_id=False),
                           FieldSchema("data", DataType.FLOAT_VECTOR, dim=dim)])
coll = Collection(name, schema)
t0 = time.time()
n = 0
for d in sorted(glob.glob(f"{out}/bench/**/id.npy", recursive=True)):
    ids = np.load(d, mmap_mode="r")
    vecs = np.load(d.replace("id.npy", "data.npy"), mmap_mode="r")
    for s in range(0, len(ids), 10_000):
        coll.insert([ids[s:s + 10_000].tolist(), vecs[s:s + 10_000].tolist()])
        n += len(ids[s:s + 10_000])
coll.flush()
print(f"{time.time() - t0:.3f}")
assert n == coll.num_entities, (n, coll.num_entities)
coll.drop()
PY
)
rm -rf "$dir/ins-out" "$dir/imp-out"
m_ins=$(timed "$bin/milvus-migration" migrate --config "$(config ins "bench_mins_$run" insert)")
# Every key and vector of the collection just migrated, reconciled against the dump.
t_full=$(timed "$bin/milvus-migration" verify --full --config "$dir/ins.yaml")
m_imp=$(timed "$bin/milvus-migration" migrate --config "$(config imp "bench_mimp_$run" import)")
"$py" - "$MILVUS_ENDPOINT" "$run" <<'PY'
import sys
from pymilvus import connections, utility
host, port = sys.argv[1].rsplit(":", 1)
connections.connect(host=host, port=port)
for c in utility.list_collections():
    if c.endswith(sys.argv[2]) and c.startswith("bench_"):
        utility.drop_collection(c)
PY
rate() { echo "scale=0; $rows / $1" | bc; }
printf '%s x %s float rows (4 segments)%s:\n' "$rows" "$dim" "$([ "${PIN:-0}" = 1 ] && echo ', Milvus on CPU 0, clients on CPU 1')"
printf '  load, loadMode insert (%2s MiB batches): %7.2f s  %8s rows/s\n' "$batch" "$t_ins" "$(rate "$t_ins")"
printf '  pymilvus insert, 10k-row batches:       %7.2f s  %8s rows/s\n' "$t_py" "$(rate "$t_py")"
printf '  load, loadMode import (bulk import):    %7.2f s  %8s rows/s\n' "$t_imp" "$(rate "$t_imp")"
printf '  ratio insert-load / pymilvus (rows/s): %s\n' "$(echo "scale=2; $t_py / $t_ins" | bc)"
printf '  migrate (dump, load, verify): insert %.2f s, import %.2f s\n' "$m_ins" "$m_imp"
printf '  verify --full (every key and vector):   %7.2f s  %8s rows/s\n' "$t_full" "$(rate "$t_full")"
