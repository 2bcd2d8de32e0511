#!/usr/bin/env bash
# milvus-lite 3.2.2 (PyPI `milvus-lite`, pure Python) as a second real Milvus server for the end-to-end tests of the
# insert path (loadMode: insert). It speaks the Milvus gRPC protocol but is not Milvus: no Import / ListImportTasks /
# GetImportState / GetIndexState (UNIMPLEMENTED), Insert de-duplicates keys, Flush returns no segment ids, no
# BinaryVector. Facts: shared/spec/insert-parquet.md §3. Prove duplicates, binary vectors, limits and auth on the real
# 2.3.5 of scripts/milvus.sh; use this one for the float Insert / Upsert / verify / repair path.
#
#   scripts/milvus-lite.sh start    ensure the venv, start the server on a free port of 127.0.0.1, wait until it answers
#                                   GetVersion (idempotent: a second start while it runs only prints the lines below)
#   scripts/milvus-lite.sh stop     SIGTERM, wait up to 30 s (a zombie counts as gone), then SIGKILL
#   scripts/milvus-lite.sh status   exit 0 when the server this script started runs and answers, 1 otherwise
#   scripts/milvus-lite.sh purge    stop, then delete the server's data dir (keeps the venv)
#
# Venv: $MM_LITE_VENV (default .venv-lite), separate from scripts/python-env.sh's .venv (which pins pymilvus 2.3.7 for
# the 2.3.5 server; milvus-lite imports pymilvus.grpc_gen of a recent pymilvus without declaring it).
# State: $MM_TE_DIR (default ~/.cache/milvus-migration/te)/milvus-lite: data/ (--data-dir), milvus-lite.pid,
# milvus-lite.port (the port is reused while it stays free), milvus-lite.log (+ .prev.log), lock.
# Port: $MM_LITE_PORT if set, else the last one used if free, else a free one picked by the kernel; never 19530 (the
# real Milvus) and never bound on 0.0.0.0 (milvus-lite's own defaults are 0.0.0.0:19530).
# stdout: MILVUS_LITE_* KEY=value lines (ENDPOINT host:port, URI, VERSION = GetVersion's "milvus_lite-3.2.2", PY = the
# venv's python with pymilvus, DATA_DIR); progress goes to stderr.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
te_dir="${MM_TE_DIR:-$HOME/.cache/milvus-migration/te}"
mkdir -p "$te_dir"
te_dir=$(cd "$te_dir" && pwd)
state_dir="$te_dir/milvus-lite"
data_dir="$state_dir/data"
pid_file="$state_dir/milvus-lite.pid"
port_file="$state_dir/milvus-lite.port"
log_file="$state_dir/milvus-lite.log"
lock_file="$state_dir/lock"
venv="${MM_LITE_VENV:-$root/.venv-lite}"
py="$venv/bin/python"
host=127.0.0.1
real_milvus_port=19530
lite_version=3.2.2
# This set works together (measured): pymilvus 3.0.2 is the newest; its grpc_gen has every message milvus-lite uses.
pins=(
  "milvus-lite==$lite_version" pymilvus==3.0.2 grpcio==1.85.3 protobuf==7.36.2 numpy==2.4.6 pyarrow==26.0.1
  faiss-cpu==1.15.1 pandas==3.1.1
)
start_timeout=60
stop_timeout=30

say() { echo "milvus-lite.sh: $*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"
die() { say "ERROR: $*"; exit 1; }

# The pid in the pid file, if it names a live (not zombie) milvus-lite server on our data dir.
is_our_lite() {
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ "$cmd" == *milvus-lite*" server "*"--data-dir $data_dir "* ]]
}
live_pid() { pid_from_file "$pid_file" is_our_lite; }

port_open() { (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null; }

ensure_venv() {
  local check='import importlib.metadata as m, sys
want = dict(p.split("==") for p in sys.argv[1:])
bad = {k: m.version(k) for k in want if m.version(k) != want[k]}
sys.exit(f"wrong versions: {bad}" if bad else 0)'
  if [ -x "$py" ] && [ -x "$venv/bin/milvus-lite" ] && "$py" -c "$check" "${pins[@]}" 2>/dev/null; then return 0; fi
  local t0=$SECONDS
  say "installing ${pins[*]} into $venv"
  [ -x "$py" ] || python3 -m venv "$venv" || die "python3 -m venv $venv failed"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" >&2 || die "pip install into $venv failed"
  "$py" -c "$check" "${pins[@]}" || die "$venv still has the wrong versions"
  "$py" -c 'import pymilvus.grpc_gen.milvus_pb2_grpc, milvus_lite.adapter.grpc.server' || die "$venv cannot import milvus-lite's server"
  say "venv ready in $((SECONDS - t0)) s"
}

# A free port on 127.0.0.1: $MM_LITE_PORT, else the last one used if free, else one the kernel picks.
pick_port() { pick_free_port MM_LITE_PORT "$real_milvus_port" "$port_file"; }

# Waits (in one python process) until GetVersion answers on PORT while PID lives; prints the version.
# Exit 0: answered; 3: the process died; 4: timeout.
wait_version() {
  local pid=$1 port=$2 timeout=$3
  "$py" - "$pid" "$host:$port" "$timeout" <<'EOF'
import os, sys, time
import grpc
from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc

pid, addr, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])

def alive():
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

deadline = time.monotonic() + timeout
last = ""
with grpc.insecure_channel(addr) as ch:
    stub = milvus_pb2_grpc.MilvusServiceStub(ch)
    while True:
        if not alive():
            sys.exit(3)
        try:
            r = stub.GetVersion(milvus_pb2.GetVersionRequest(), timeout=2)
            if r.status.code == 0 and r.status.error_code == 0 and r.version:
                print(r.version)
                sys.exit(0)
            last = f"status {r.status.code}/{r.status.error_code} {r.status.reason!r}"
        except grpc.RpcError as e:
            last = f"{e.code().name}: {e.details()}"
        if time.monotonic() >= deadline:
            print(last, file=sys.stderr)
            sys.exit(4)
        time.sleep(0.2)
EOF
}

print_env() {
  echo "MILVUS_LITE_ENDPOINT=$host:$1"
  echo "MILVUS_LITE_URI=http://$host:$1"
  echo "MILVUS_LITE_VERSION=$2"
  echo "MILVUS_LITE_PY=$py"
  echo "MILVUS_LITE_DATA_DIR=$data_dir"
}

show_log() {
  [ -s "$log_file" ] || return 0
  say "---- last 40 lines of $log_file ----"
  tail -n 40 "$log_file" >&2
}

cmd_start() {
  local t0=$SECONDS pid port version rc try
  mkdir -p "$state_dir"
  exec 9>"$lock_file"
  flock 9   # one start at a time
  ensure_venv
  if pid=$(live_pid); then
    port=$(cat "$port_file" 2>/dev/null || true)
    [[ "$port" =~ ^[0-9]+$ ]] || die "milvus-lite runs (pid $pid) but $port_file names no port; run '$0 stop' and retry"
    rc=0; version=$(wait_version "$pid" "$port" "$start_timeout") || rc=$?
    [ "$rc" = 0 ] || { show_log; die "milvus-lite (pid $pid, port $port) does not answer GetVersion (rc $rc)"; }
    say "already running (pid $pid, port $port)"
    if [ -n "${MM_LITE_PORT:-}" ] && [ "$MM_LITE_PORT" != "$port" ]; then
      say "note: MM_LITE_PORT=$MM_LITE_PORT is ignored while it runs on $port ('$0 stop' first to move it)"
    fi
    print_env "$port" "$version"
    return 0
  fi
  rm -f "$pid_file"
  mkdir -p "$data_dir"
  for try in 1 2 3; do   # a port picked free can be taken before the server binds it
    port=$(pick_port) || exit 1   # pick_port said why
    say "starting milvus-lite $lite_version on $host:$port, data dir $data_dir (log $log_file)"
    pid=$(PYTHONUNBUFFERED=1 start_detached milvus-lite "$venv/bin/milvus-lite" server --data-dir "$data_dir" --host "$host" --port "$port") || exit 1
    echo "$port" >"$port_file"
    rc=0; version=$(wait_version "$pid" "$port" "$start_timeout") || rc=$?
    case "$rc" in
      0) say "running (pid $pid), answering after $((SECONDS - t0)) s"; print_env "$port" "$version"; return 0 ;;
      3) if grep -qiE 'bind|address already in use|Failed to add port' "$log_file" && [ -z "${MM_LITE_PORT:-}" ]; then
           say "port $port was taken; picking another"; rm -f "$port_file"; continue
         fi
         show_log; die "milvus-lite (pid $pid) exited during startup" ;;
      *) show_log; stop_pid "$pid" "$stop_timeout"; rm -f "$pid_file"
         die "milvus-lite does not answer GetVersion on $host:$port after ${start_timeout} s" ;;
    esac
  done
  show_log; die "milvus-lite could not bind a port after 3 tries"
}

cmd_stop() { stop_service milvus-lite; }

cmd_status() {
  local pid port version
  if ! pid=$(live_pid); then
    echo "milvus-lite: not running (no live pid in $pid_file)"
    return 1
  fi
  port=$(cat "$port_file" 2>/dev/null || true)
  if [[ "$port" =~ ^[0-9]+$ ]] && version=$(wait_version "$pid" "$port" 3 2>/dev/null); then
    echo "milvus-lite: running (pid $pid), answering"
    print_env "$port" "$version"
    return 0
  fi
  echo "milvus-lite: running (pid $pid), NOT answering on $host:${port:-?}"
  return 1
}

cmd_purge() {
  cmd_stop
  rm -rf "$data_dir"
  say "deleted $data_dir"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  purge) cmd_purge ;;
  *) echo "usage: $0 start|stop|status|purge" >&2; exit 2 ;;
esac
