#!/usr/bin/env bash
# Benchmark (not a test) of `verify --full` at scale against the live Milvus 2.3.5 (local storage,
# scripts/milvus.sh): ROWS (default 10M) float rows of DIM (default 8) in 8 segments, bulk-imported,
# then every key and vector reconciled with the component's memory capped at MEM_MIB (default 64,
# migration.sandbox.memoryMiB): finishing under that cap is the proof that memory does not grow
# with the collection. Prints the time, rows/s, the process's peak RSS (/usr/bin/time) and the
# clean result, then the same after damaging 1000 rows through pymilvus (found exactly).
#   BENCH_DIR (default /dev/shm/mm-bench-verify).
set -euo pipefail
source "$(dirname "$0")/bench-env.sh"
dir="${BENCH_DIR:-/dev/shm/mm-bench-verify}"
rows="${ROWS:-10000000}" dim="${DIM:-8}" mem="${MEM_MIB:-64}"
rm -rf "$dir" && mkdir -p "$dir"
name="bench_verify_$(date +%s)"
cleanup() {
  "$py" - "$MILVUS_ENDPOINT" "$name" <<'PY' || true
import sys
from pymilvus import connections, utility
host, port = sys.argv[1].rsplit(":", 1)
connections.connect(host=host, port=port)
if utility.has_collection(sys.argv[2]):
    utility.drop_collection(sys.argv[2])
PY
  rm -rf "$dir"
}
trap cleanup EXIT
"$bin/gen-fixture" bench "$dir/src" --rows "$rows" --segments 8 --dim "$dim" --deleted-pct 0 >&2
cat > "$dir/m.yaml" <<YAML
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
    outputDir: $dir/out
  milvus2x:
    endpoint: $MILVUS_ENDPOINT
migration:
  rename: {bench: $name}
  index: none
  load: false
  sandbox:
    memoryMiB: $mem
YAML
t0=$(date +%s.%N)
"$bin/milvus-migration" migrate --config "$dir/m.yaml" > "$dir/migrate.log" 2>&1 || { cat "$dir/migrate.log" >&2; exit 1; }
t_mig=$(echo "$(date +%s.%N) - $t0" | bc)
full() { # LABEL: verify --full under /usr/bin/time; prints "seconds peak_kib exit"
  local code=0
  /usr/bin/time -f '%e %M' -o "$dir/time" "$bin/milvus-migration" verify --full --max-listed 5 --config "$dir/m.yaml" \
    --report "$dir/$1.json" > "$dir/$1.log" 2>&1 || code=$?
  echo "$(tail -n 1 "$dir/time") $code"   # time -o says "Command exited with non-zero status" first
}
read -r t_clean rss_clean code_clean < <(full clean)
[ "$code_clean" = 0 ] || { cat "$dir/clean.log" >&2; echo "bench-verify: the clean collection did not verify" >&2; exit 1; }
# Damage: up to 1000 ids deleted (every 10,000th dumped id), spread over the key space.
read -r t_bad rss_bad code_bad < <(
  "$py" - "$MILVUS_ENDPOINT" "$name" "$dir/out" <<'PY' >&2
import glob, sys
import numpy as np
from pymilvus import Collection, connections
host, port = sys.argv[1].rsplit(":", 1)
connections.connect(host=host, port=port)
ids = np.concatenate([np.load(f, mmap_mode="r")[::10_000] for f in sorted(glob.glob(f"{sys.argv[3]}/**/id.npy", recursive=True))])[:1000]
Collection(sys.argv[2]).delete(expr=f"id in {[int(i) for i in ids]}")
print("deleted", len(ids))
open(sys.argv[3] + "/../deleted", "w").write(str(len(ids)))
PY
  full damaged
)
missing=$("$py" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sum(p["reconciled"]["missing"]["count"] for c in r["collections"] for p in c["partitions"] if "reconciled" in p))' "$dir/damaged.json")
printf '%s rows x dim %s (8 segments), component memory capped at %s MiB:\n' "$rows" "$dim" "$mem"
printf '  migrate (dump, bulk import, verify):  %8.1f s\n' "$t_mig"
printf '  verify --full, clean:                 %8.1f s  %8.0f rows/s  peak RSS %6.0f MiB  exit %s\n' "$t_clean" "$(echo "$rows / $t_clean" | bc)" "$(echo "$rss_clean / 1024" | bc)" "$code_clean"
printf '  verify --full, 1000 ids deleted:      %8.1f s  %8.0f rows/s  peak RSS %6.0f MiB  exit %s, missing found: %s of %s deleted\n' "$t_bad" "$(echo "$rows / $t_bad" | bc)" "$(echo "$rss_bad / 1024" | bc)" "$code_bad" "$missing" "$(cat "$dir/deleted")"
