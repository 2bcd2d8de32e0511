#!/usr/bin/env bash
# Benchmark (not a test): dump of one large float segment (default 1 GiB, dim 768, 1% of rows
# deleted, unsorted) local -> local with the release build, against `cp` of the same files.
# Prints both throughputs, their ratio and the dump's peak RSS. Targets: ratio >= 0.8, RSS <= 256 MiB.
#   BENCH_DIR  where the installation and outputs go (default /dev/shm/mm-bench: tmpfs, so disk
#              noise does not swamp the comparison; set a disk path to measure the disk instead)
#   GIB, DIM, DELETED_PCT, RUNS (default 3; the best run of each is reported)
#   FORMAT=parquet  write rows.parquet file groups (migration.format) instead of npy; run it at two
#              GIB values to see that peak RSS follows the row group, not the segment
#   TARGET=s3  dump to an S3 bucket instead (the s3s-fs of scripts/s3.sh, on loopback), compared
#              with a plain multipart upload of the same files through the same client (object_store)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
mm_build >&2
bin="$CARGO_TARGET_DIR/release"
dir="${BENCH_DIR:-/dev/shm/mm-bench}"
gib="${GIB:-1}" dim="${DIM:-768}" pct="${DELETED_PCT:-1}" runs="${RUNS:-3}"
rm -rf "$dir" && mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT
"$bin/gen-fixture" bench "$dir/src" --gib "$gib" --dim "$dim" --deleted-pct "$pct" >&2
seg=$(find "$dir/src/db/tables" -name '*.rv' -printf '%h\n')
bytes=$(( $(stat -c %s "$seg"/*.rv) + $(stat -c %s "$seg"/*.uid) ))
if [ "${TARGET:-local}" = s3 ]; then
  eval "$(bash scripts/s3.sh start | grep -E '^S3_[A-Z_]+=' | sed 's/^/export /')"
  target_yaml="  mode: remote
  remote:
    outputDir: bench/dump
    cloud: aws
    endpoint: ${S3_ENDPOINT#http://}
    region: us-east-1
    bucket: $S3_BUCKET
    ak: $S3_ACCESS_KEY
    sk: $S3_SECRET_KEY
    useSSL: false
    checkBucket: false"
  baseline() { "$bin/gen-fixture" upload --endpoint "$S3_ENDPOINT" --bucket "$S3_BUCKET" --ak "$S3_ACCESS_KEY" --sk "$S3_SECRET_KEY" --prefix bench/plain "$seg"/*.rv "$seg"/*.uid; }
  base_name="upload"
else
  target_yaml="  mode: local
  local:
    outputDir: $dir/out"
  baseline() { rm -rf "$dir/cp" && mkdir -p "$dir/cp" && cp "$seg"/*.rv "$seg"/*.uid "$dir/cp/"; }
  base_name="cp"
fi
cat > "$dir/migration.yaml" <<YAML
meta:
  mode: sqlite
  sqliteFile: $dir/src/db/meta.sqlite
source:
  mode: local
  local:
    tablesDir: $dir/src/db/tables
target:
$target_yaml
migration:
  format: ${FORMAT:-numpy}
YAML
now() { date +%s.%N; }
best_cp=999999 best_dump=999999 rss=0 cpu=
cat "$seg"/*.rv "$seg"/*.uid > /dev/null  # warm the page cache for both
for _ in $(seq "$runs"); do
  t0=$(now); baseline; t1=$(now)
  best_cp=$(echo "$t1 - $t0" | bc -l | awk -v b="$best_cp" '{print ($1<b)?$1:b}')
  rm -rf "$dir/cp" "$dir/out"
  t0=$(now)
  /usr/bin/time -f '%M %U %S' -o "$dir/rss" "$bin/milvus-migration" dump --config "$dir/migration.yaml" --report "$dir/report.json" > "$dir/dump.log"
  t1=$(now)
  best_dump=$(echo "$t1 - $t0" | bc -l | awk -v b="$best_dump" '{print ($1<b)?$1:b}')
  read -r r u sy < "$dir/rss"; [ "$r" -gt "$rss" ] && rss=$r
  cpu="$cpu $(echo "$u + $sy" | bc -l)"
done
# CPU time (user + system) tells a busy machine from a slow dump: wall time needs free cores.
cpu_min=$(echo $cpu | tr ' ' '\n' | sort -n | head -1)
grep -E '^dumped' "$dir/dump.log"
awk -v base="$base_name" -v b="$bytes" -v c="$best_cp" -v d="$best_dump" -v rss="$rss" -v gib="$gib" -v dim="$dim" -v pct="$pct" -v dir="$dir" -v cpu="$cpu_min" -v fmt="${FORMAT:-numpy}" 'BEGIN {
  printf "segment: %.2f GiB (%d bytes), dim %d, %s%% deleted, in %s, format %s\n", b/2^30, b, dim, pct, dir, fmt
  printf "%s: %.3f s  %.2f GB/s\n", base, c, b/c/1e9
  printf "dump: %.3f s  %.2f GB/s (whole process: start, plan, convert, manifest)\n", d, b/d/1e9
  printf "ratio dump/%s: %.2f (target >= 0.8)\n", base, c/d
  printf "dump CPU (user+sys, best run): %.3f s\n", cpu
  printf "dump peak RSS: %.1f MiB (target <= 256)\n", rss/1024
}'
