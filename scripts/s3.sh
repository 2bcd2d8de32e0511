#!/usr/bin/env bash
# An S3 server on 127.0.0.1:9000 for the tests and for Milvus' `minio` storage (MM_MILVUS_STORAGE=minio scripts/milvus.sh):
# s3s-fs 0.14.1, which stores objects as plain files (a bucket is a directory under the root) and checks SigV4.
# Recipe and measured pitfalls: shared/spec/test-env.md §1, §5.2, §5.7.
#
#   scripts/s3.sh start     ensure the s3s-fs binary (cargo install, ~4 min the first time), create the buckets, start the
#                           server and wait until it answers a signed request (idempotent)
#   scripts/s3.sh stop      SIGTERM, wait up to 30 s (a zombie counts as gone), then SIGKILL
#   scripts/s3.sh status    exit 0 when the server this script started answers
#   scripts/s3.sh install   only ensure the binary
#
# State: $MM_TE_DIR (default ~/.cache/milvus-migration/te): s3/ (the data: s3/<bucket>/<key>), run/s3.pid, run/s3.log.
# Binary: `s3s-fs` on PATH, else ~/.cargo/bin/s3s-fs, else $MM_TE_DIR/tools/bin/s3s-fs, else `cargo install` into ~/.cargo.
# Buckets: milvus-bucket (Milvus' own; bulk-insert files must be in it) and source-bucket (a 1.x source in tests).
# Clients: path-style requests over plain http, region us-east-1 (any region signs; s3s-fs does not check it).
# stdout: S3_* KEY=value lines; progress goes to stderr.
set -euo pipefail
te_dir="${MM_TE_DIR:-$HOME/.cache/milvus-migration/te}"
mkdir -p "$te_dir"
te_dir=$(cd "$te_dir" && pwd)
s3_root="$te_dir/s3"
run_dir="$te_dir/run"
pid_file="$run_dir/s3.pid"
log_file="$run_dir/s3.log"
lock_file="$run_dir/s3.lock"
host=127.0.0.1
port=9000
endpoint="http://$host:$port"
region=us-east-1
access_key=minioadmin
secret_key=minioadmin
bucket=milvus-bucket
source_bucket=source-bucket
version=0.14.1
start_timeout=30
stop_timeout=30

say() { echo "s3.sh: $*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"
die() { say "ERROR: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

# A SigV4-signed request (curl signs). s3s-fs rejects unsigned requests (403) and signed ones without
# x-amz-content-sha256 (400 "missing header"); here: the SHA-256 of the empty body.
signed() { # METHOD PATH [curl args]
  local method=$1 path=$2; shift 2
  curl -s --max-time 5 -X "$method" -H "x-amz-content-sha256: $empty_sha256" \
    --aws-sigv4 "aws:amz:$region:s3" --user "$access_key:$secret_key" "$@" "$endpoint$path" 2>/dev/null
}
empty_sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

answers() { [ "$(signed GET / -o /dev/null -w '%{http_code}' || true)" = 200 ]; }   # ListBuckets

# Both buckets listed by the server itself.
buckets_listed() {
  local body
  body=$(signed GET /) || return 1
  [[ "$body" == *"<Name>$bucket</Name>"* && "$body" == *"<Name>$source_bucket</Name>"* ]]
}

find_bin() {
  local b
  for b in "$(command -v s3s-fs 2>/dev/null || true)" "$HOME/.cargo/bin/s3s-fs" "$te_dir/tools/bin/s3s-fs"; do
    if [ -n "$b" ] && [ -x "$b" ]; then readlink -f "$b"; return 0; fi
  done
  return 1
}

ensure_bin() {
  local b
  if b=$(find_bin); then echo "$b"; return 0; fi
  command -v cargo >/dev/null || die "s3s-fs is not installed and cargo is not on PATH"
  say "s3s-fs not found; cargo install s3s-fs@$version --locked --features binary (about 3-4 min on 2 cores)"
  local t0=$SECONDS target="$te_dir/tools/s3s-fs-target"
  # Own target dir (not the project's CARGO_TARGET_DIR); `plain cargo install s3s-fs` picks 0.17, which needs rustc 1.96.
  CARGO_TARGET_DIR="$target" cargo install "s3s-fs@$version" --locked --features binary >&2 ||
    die "cargo install s3s-fs@$version failed"
  rm -rf "$target"
  b=$(find_bin) || die "cargo install finished but no s3s-fs binary was found"
  say "installed $b in $((SECONDS - t0)) s"
  echo "$b"
}

# The pid in the pid file, if it names a live (not zombie) s3s-fs.
is_s3s_fs() { local exe; exe=$(exe_of "$1") && [ "$(basename "$exe")" = s3s-fs ]; }
live_pid() { pid_from_file "$pid_file" is_s3s_fs; }

print_env() {
  echo "S3_ENDPOINT=$endpoint"
  echo "S3_BUCKET=$bucket"
  echo "S3_SOURCE_BUCKET=$source_bucket"
  echo "S3_REGION=$region"
  echo "S3_ACCESS_KEY=$access_key"
  echo "S3_SECRET_KEY=$secret_key"
  echo "S3_DATA_DIR=$s3_root"
}

make_buckets() {
  # s3s-fs: a bucket is a directory directly under the root. Pre-create Milvus' bucket, or its components race to
  # create it and one gets a 500 "File exists" (§1).
  mkdir -p "$s3_root/$bucket" "$s3_root/$source_bucket"
}

cmd_start() {
  local t0=$SECONDS pid bin
  mkdir -p "$run_dir"
  exec 9>"$lock_file"
  flock 9   # one start at a time (e.g. milvus.sh and a test both starting it)
  make_buckets
  if pid=$(live_pid); then
    if answers; then say "already running (pid $pid)"; print_env; return 0; fi
    say "running (pid $pid) but not answering yet; waiting"
  else
    rm -f "$pid_file"
    if port_open; then
      die "port $port is in use by a process this script did not start ($(ss -ltnpH "sport = :$port" 2>/dev/null | head -n1 | sed -e 's/.*users:((//' -e 's/))$//')). Stop it and retry."
    fi
    bin=$(ensure_bin)
    say "starting $bin on $host:$port, root $s3_root (log $log_file)"
    pid=$(start_detached s3s-fs "$bin" --host "$host" --port "$port" --access-key "$access_key" --secret-key "$secret_key" "$s3_root") || exit 1
  fi
  until answers; do
    if gone_or_zombie "$pid"; then tail -n 40 "$log_file" >&2 || true; die "s3s-fs (pid $pid) exited during startup"; fi
    if (( SECONDS - t0 >= start_timeout )); then tail -n 40 "$log_file" >&2 || true; die "s3s-fs does not answer after ${start_timeout} s"; fi
    sleep 0.1
  done
  buckets_listed || die "s3s-fs answers but does not list the buckets $bucket and $source_bucket (root $s3_root)"
  say "running (pid $pid), answering after $((SECONDS - t0)) s"
  print_env
}

cmd_stop() {
  local pid t0=$SECONDS
  if ! pid=$(live_pid); then
    rm -f "$pid_file"
    say "not running"
    if port_open; then say "note: port $port is open, but not by an s3s-fs this script started"; fi
    return 0
  fi
  say "stopping pid $pid (SIGTERM)"
  stop_pid "$pid" "$stop_timeout"
  rm -f "$pid_file"
  say "stopped in $((SECONDS - t0)) s"
}

cmd_status() {
  local pid
  if ! pid=$(live_pid); then
    echo "s3: not running (no live pid in $pid_file)"
    if port_open; then echo "s3: note: port $port is open, but not by an s3s-fs this script started"; fi
    return 1
  fi
  if answers; then echo "s3: running (pid $pid), answering"; print_env; return 0; fi
  echo "s3: running (pid $pid), NOT answering on $endpoint"
  return 1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  install) ensure_bin >/dev/null ;;
  *) echo "usage: $0 start|stop|status|install" >&2; exit 2 ;;
esac
