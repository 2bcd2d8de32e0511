#!/usr/bin/env bash
# Benchmark (not a test): the Node host's dump (tests/node-host, jco) of one large float segment
# (default 1 GiB, dim 768, 1% of rows deleted) against the native host's dump of the same
# installation, in one run; prints both times, their ratio (node / native), and the Node host's
# new-instance times (jco's instantiation: in the dump's Workers, and 500 in a row by
# bench-instances.mjs). Node 20 (the machine's) and Node 24 (tests/node-host's) are both measured.
#   BENCH_DIR (default /dev/shm/mm-bench-node), GIB, DIM, DELETED_PCT, RUNS (default 3; best run)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
mm_build >&2
(cd tests/node-host && npm ci --no-audit --no-fund --loglevel=error) >&2
bin="$CARGO_TARGET_DIR/release"
dir="${BENCH_DIR:-/dev/shm/mm-bench-node}"
gib="${GIB:-1}" dim="${DIM:-768}" pct="${DELETED_PCT:-1}" runs="${RUNS:-3}"
rm -rf "$dir" && mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT
"$bin/gen-fixture" bench "$dir/src" --gib "$gib" --dim "$dim" --deleted-pct "$pct" >&2
"$bin/milvus-migration" export -s "$dir/src/db/meta.sqlite" -o "$dir/meta" >&2
"$bin/milvus-migration" component --out "$dir/engine.wasm" >&2
node tests/node-host/transpile.mjs "$dir/engine.wasm" "$dir/gen"
cat > "$dir/migration.yaml" <<YAML
meta:
  mode: local
  localFile: $dir/meta/meta.json
source:
  mode: local
  local:
    tablesDir: $dir/src/db/tables
target:
  mode: local
  local:
    outputDir: $dir/native
YAML
now() { date +%s.%N; }
best() { printf '%s\n' "$@" | sort -g | head -1; }
cat "$dir"/src/db/tables/*/*/* > /dev/null 2>&1 || true # warm the page cache
native=() node20=() node24=() inst20="" inst24=""
for _ in $(seq "$runs"); do
  rm -rf "$dir/native" "$dir/node"
  t0=$(now); "$bin/milvus-migration" dump --config "$dir/migration.yaml" > /dev/null; t1=$(now)
  native+=("$(echo "$t1 - $t0" | bc)")
  for v in 20 24; do
    rm -rf "$dir/node"
    n=node; [ "$v" = 24 ] && n="$root/tests/node-host/node_modules/.bin/node"
    t0=$(now)
    out=$("$n" tests/node-host/dump.mjs --gen "$dir/gen" --meta "$dir/meta/meta.json" --tables "$dir/src/db/tables" --out "$dir/node")
    t1=$(now)
    cmp -s "$dir/native/manifest.json" "$dir/node/manifest.json" || { echo "bench-node: the Node $v dump differs from the native one" >&2; exit 1; }
    if [ "$v" = 20 ]; then node20+=("$(echo "$t1 - $t0" | bc)"); inst20=$(grep -o 'new instance .*' <<<"$out"); else node24+=("$(echo "$t1 - $t0" | bc)"); inst24=$(grep -o 'new instance .*' <<<"$out"); fi
  done
done
i20=$(node tests/node-host/bench-instances.mjs "$dir/gen" 500)
i24=$("$root/tests/node-host/node_modules/.bin/node" tests/node-host/bench-instances.mjs "$dir/gen" 500)
n=$(best "${native[@]}") a=$(best "${node20[@]}") b=$(best "${node24[@]}")
printf 'dump of %s GiB (dim %s, %s%% deleted), best of %s:\n' "$gib" "$dim" "$pct" "$runs"
printf '  native:  %6.2f s\n  node 20: %6.2f s  ratio node/native %s  (%s)\n  node 24: %6.2f s  ratio node/native %s  (%s)\n' \
  "$n" "$a" "$(echo "scale=2; $a / $n" | bc)" "$inst20" "$b" "$(echo "scale=2; $b / $n" | bc)" "$inst24"
printf '%s\n%s\n' "$i20" "$i24"
