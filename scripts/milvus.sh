#!/usr/bin/env bash
# A real Milvus 2.3.5 standalone for the end-to-end tests, from the `milvus` PyPI wheel, with LOCAL storage (default),
# with its storage on the S3 server of scripts/s3.sh (MM_MILVUS_STORAGE=minio), or SECURE: local storage with
# authentication (common.security.authorizationEnabled) and one-way TLS on the gRPC port (MM_MILVUS_STORAGE=secure).
# Recipe and measured pitfalls: shared/spec/test-env.md §1, §3, §5.4-5.7.
#
#   scripts/milvus.sh start    ensure the venv, write the config, start Milvus, wait until it answers (idempotent).
#                              A Milvus running in the other storage mode is stopped first (only one can run: fixed
#                              ports and the /run/milvus lock).
#   scripts/milvus.sh stop     SIGTERM, wait up to 60 s (a zombie counts as gone), then SIGKILL (whatever the mode)
#   scripts/milvus.sh status   exit 0 when running and healthy (either mode; MILVUS_STORAGE says which), 1 otherwise
#   scripts/milvus.sh purge    stop, then delete the Milvus dirs of BOTH modes and Milvus' binlogs in the bucket
#                              (keeps the venv, the S3 server and the other buckets' data)
#
# Mode: $MM_MILVUS_STORAGE = local (default) | minio | secure. Each mode has its own Milvus dir (etcd metadata names
# binlogs that exist only in that mode's storage): milvus/ (local), milvus-minio/ (minio), milvus-secure/ (secure),
# each with bin/, configs/, logs/, data/ (secure: also tls/, a CA made on first start and a server certificate it
# signed for 127.0.0.1 and localhost; root keeps the default password Milvus; the tests log in as mm_tester, an
# admin the script makes). The running mode is recorded in run/milvus.mode (and follows from the binary's path).
# State: $MM_TE_DIR (default ~/.cache/milvus-migration/te): those dirs and run/ (milvus.pid, milvus.mode).
# Venv: $MM_VENV (default .venv), made by scripts/python-env.sh.
# Endpoint: 127.0.0.1:19530 (gRPC), http://127.0.0.1:9091/healthz. stdout: MILVUS_* KEY=value lines, with
# MILVUS_STORAGE=<mode>. local: bulk-import files are read by ABSOLUTE path on this host; the data dir (localStorage.path)
# is printed as MILVUS_LOCAL_STORAGE. minio: bulk-import files are keys relative to the bucket MILVUS_BUCKET (without
# MILVUS_S3_ROOT_PATH, under which Milvus keeps its binlogs); the S3_* lines of scripts/s3.sh are printed too.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
te_dir="${MM_TE_DIR:-$HOME/.cache/milvus-migration/te}"
mkdir -p "$te_dir"
te_dir=$(cd "$te_dir" && pwd)            # absolute: Milvus gets absolute paths only
run_dir="$te_dir/run"
pid_file="$run_dir/milvus.pid"
mode_file="$run_dir/milvus.mode"
modes=(local minio secure)
mode="${MM_MILVUS_STORAGE:-local}"   # the requested mode
case "$mode" in local|minio|secure) ;; *) echo "milvus.sh: ERROR: MM_MILVUS_STORAGE must be local, minio or secure, not '$mode'" >&2; exit 2 ;; esac
mode_dir() { if [ "$1" = local ]; then echo "$te_dir/milvus"; else echo "$te_dir/milvus-$1"; fi; }
mv_dir=$(mode_dir "$mode")           # the requested mode's dir; stop/status use the running one's
s3_bucket=milvus-bucket
s3_root_path=files
venv="${MM_VENV:-$root/.venv}"
py="$venv/bin/python"
host=127.0.0.1
grpc_port=19530
metrics_port=9091
etcd_port=2379
healthz="http://$host:$metrics_port/healthz"
start_timeout=180
stop_timeout=60

say() { echo "milvus.sh: $*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"
die() { say "ERROR: $*"; exit 1; }

# The pid in the pid file, if it names a live (not zombie) process running our binary (of either mode's dir).
is_our_milvus() { pid_mode "$1" >/dev/null; }
live_pid() { pid_from_file "$pid_file" is_our_milvus; }

# The storage mode of a running Milvus of ours, from the dir its binary was started from.
pid_mode() {
  local exe m
  exe=$(exe_of "$1") || return 1
  for m in "${modes[@]}"; do
    if [ "$exe" = "$(mode_dir "$m")/bin/milvus" ]; then echo "$m"; return 0; fi
  done
  return 1
}


port_open() { (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null; }

healthy() { [[ "$(curl -sf --max-time 3 "$healthz" 2>/dev/null)" == *OK* ]]; }

# secure mode: pymilvus logs in as root over TLS (the CA of tls/ as the root; the certificate names localhost) and
# makes the tests' own user, an admin, whose password appears nowhere else (so a test can tell it was not printed).
secure_user=mm_tester
secure_password=Mm-Test-Pw-4711
rpc_ok() {
  local extra="" user=""
  if [ "$mode" = secure ]; then
    extra=", secure=True, server_pem_path=\"$mv_dir/tls/ca.pem\", server_name=\"localhost\", user=\"root\", password=\"Milvus\""
    user="
from pymilvus import Role
if \"$secure_user\" not in utility.list_usernames(using=\"mm_check\"):
    utility.create_user(\"$secure_user\", \"$secure_password\", using=\"mm_check\")
Role(\"admin\", using=\"mm_check\").add_user(\"$secure_user\")"
  fi
  "$py" - <<EOF
from pymilvus import connections, utility
connections.connect(alias="mm_check", host="$host", port="$grpc_port", timeout=60$extra)
utility.list_collections(using="mm_check")$user
connections.disconnect("mm_check")
EOF
}

local_storage_path() {
  # localStorage.path from the written milvus.yaml (no yaml module in the venv: the section is flat).
  sed -n '/^localStorage:/,/^[^ #]/s/^  path: *\([^ #]*\).*/\1/p' "$mv_dir/configs/milvus.yaml" 2>/dev/null | head -n1
}

# Needs mv_dir and mode set to the running Milvus'.
print_endpoints() {
  echo "MILVUS_ENDPOINT=$host:$grpc_port"
  echo "MILVUS_URI=http://$host:$grpc_port"
  echo "MILVUS_HEALTHZ=$healthz"
  echo "MILVUS_STORAGE=$mode"
  if [ "$mode" != minio ]; then
    echo "MILVUS_LOCAL_STORAGE=$(local_storage_path)"
  fi
  if [ "$mode" = secure ]; then
    echo "MILVUS_CA_CERT=$mv_dir/tls/ca.pem"
    echo "MILVUS_USER=$secure_user"
    echo "MILVUS_PASSWORD=$secure_password"
  fi
  if [ "$mode" = minio ]; then
    echo "MILVUS_BUCKET=$s3_bucket"
    echo "MILVUS_S3_ROOT_PATH=$s3_root_path"
    [ -z "${s3_env:-}" ] || printf '%s\n' "$s3_env"
  fi
  echo "MILVUS_PY=$py"
  echo "MILVUS_DIR=$mv_dir"
}

# minio mode: the S3 server must run (idempotent; ~0.1 s when it does). Keeps its S3_* lines for print_endpoints.
ensure_s3() {
  s3_env=$(bash "$root/scripts/s3.sh" start) || die "scripts/s3.sh start failed"
  s3_env=$(grep -E '^S3_[A-Z_]+=' <<<"$s3_env" || true)
}

show_logs() {
  local f
  # Milvus logs mostly to stdout; standalone-*.log and etcd.log hold the rest.
  for f in "$mv_dir/logs/milvus-stderr.log" "$mv_dir/logs/milvus-stdout.log" "$mv_dir"/logs/standalone-*.log; do
    [ -s "$f" ] || continue
    say "---- last 40 lines of $f ----"
    tail -n 40 "$f" >&2
  done
}

# secure mode: a CA and a server certificate it signed (127.0.0.1 and localhost), made once per Milvus dir.
make_certs() {
  local d="$mv_dir/tls"
  if [ -s "$d/server.pem" ] && openssl verify -CAfile "$d/ca.pem" "$d/server.pem" >/dev/null 2>&1; then return 0; fi
  command -v openssl >/dev/null || die "openssl is not on PATH (secure mode makes its certificates with it)"
  rm -rf "$d" && mkdir -p "$d"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=milvus-migration test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$d/ca.key" -out "$d/ca.pem" &&
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$d/server.key" -out "$d/server.csr" &&
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
      "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >"$d/server.ext" &&
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 3650 \
      -extfile "$d/server.ext" -out "$d/server.pem"
  } >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; die "making the TLS certificates in $d failed"; }
  say "made a CA and a server certificate in $d"
}

write_config() {
  # §5.4 step 2-3: the wheel's own config writer (not the milvus-server wrapper), all ports pinned, with a
  # SO_REUSEADDR bind check (the package's fails on TIME_WAIT sockets right after a restart).
  MV_DIR="$mv_dir" MV_MODE="$mode" MV_BUCKET="$s3_bucket" MV_ROOT_PATH="$s3_root_path" "$py" - <<'EOF'
import os, re, socket, sys
from milvus import MilvusServerConfig, _initialize_data_files

mv_dir = os.environ["MV_DIR"]
mode = os.environ["MV_MODE"]
storage = os.path.join(mv_dir, "data")

def try_bind_port(self, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        return sock
    except OSError:
        sock.close()
        return None

MilvusServerConfig.try_bind_port = try_bind_port
cfg = MilvusServerConfig(data_dir=mv_dir)
settings = {
    "proxy_port": 19530, "etcd_port": 2379, "proxy_internal_port": 19529, "root_coord_port": 53100,
    "query_coord_port": 19531, "query_node_port": 21123, "index_coord_port": 22930, "index_node_port": 21121,
    "data_coord_port": 13333, "data_node_port": 21124,
    "common.session.ttl": 10,
    "common.storageType": "minio" if mode == "minio" else "local",
    # Not in the spec: the template's 1800 s lets a query node that holds a loaded collection block SIGTERM
    # for 30 min (standalone has no other node to hand segments to); queryNode.gracefulStopTimeout falls back to it.
    "common.gracefulStopTimeout": 5,
}
for comp in ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode"):
    settings[f"{comp}.ip"] = "127.0.0.1"
if mode == "secure":
    # Login required (root / Milvus, the default) and one-way TLS on the proxy's gRPC port.
    tls = os.path.join(mv_dir, "tls")
    settings.update({
        "authorization_enabled": True, "tls_mode": 1,
        "server_pem_path": os.path.join(tls, "server.pem"), "server_key_path": os.path.join(tls, "server.key"),
        "ca_pem_path": os.path.join(tls, "ca.pem"),
    })
if mode == "minio":
    # §5.4: the S3 server of scripts/s3.sh (s3s-fs checks SigV4 with these credentials). cloudProvider aws,
    # useVirtualHost false (path style) and region "" stay at the template's defaults.
    settings.update({
        "minio.address": "127.0.0.1", "minio.port": 9000,
        "minio.accessKeyID": "minioadmin", "minio.secretAccessKey": "minioadmin",
        "minio.bucketName": os.environ["MV_BUCKET"], "minio.rootPath": os.environ["MV_ROOT_PATH"],
        "minio.useSSL": "false",   # extra (non-template) values are written with str(): False would be "False"
    })
for key, value in settings.items():
    # The wrapper reads only ports from cfg.configs; other template items (and extra keys) take set().
    if key.endswith("_port"):
        cfg.configs[key] = value
    else:
        cfg.set(key, value)
try:
    cfg.resolve()
except RuntimeError as e:
    sys.exit(f"milvus.sh: ERROR: {e} (a port Milvus needs is taken)")
_initialize_data_files(cfg.base_data_dir)

# Check what was written: local storage at an absolute path, and every setting present.
text = open(os.path.join(mv_dir, "configs", "milvus.yaml"), encoding="utf-8").read()
m = re.search(r"^localStorage:\n  path: *([^ #\n]+)", text, re.M)
path = m.group(1) if m else ""
if path != storage:
    sys.exit(f"milvus.sh: ERROR: localStorage.path is {path!r}, expected {storage!r}")
storage_type = "minio" if mode == "minio" else "local"
pats = [rf"^  storageType: {storage_type}\b", r"^  gracefulStopTimeout: 5\b", r"^    ttl: 10\b", r"^  port: 19530\b", r"^  endpoints: localhost:2379\b"]
if mode == "minio":
    m = re.search(r"^minio:\n((?:[ #].*\n|\n)*)", text, re.M)
    section = m.group(1) if m else ""
    want = [r"^  address: 127\.0\.0\.1\b", r"^  port: 9000\b", r"^  accessKeyID: minioadmin\b", r"^  secretAccessKey: minioadmin\b",
            r"^  useSSL: false\b", rf"^  bucketName: {re.escape(os.environ['MV_BUCKET'])}\b", rf"^  rootPath: {re.escape(os.environ['MV_ROOT_PATH'])}\b"]
    for pat in want:
        if not re.search(pat, section, re.M):
            sys.exit(f"milvus.sh: ERROR: milvus.yaml's minio section lacks {pat!r}")
if mode == "secure":
    pats += [r"^    authorizationEnabled: true\b", r"^    tlsMode: 1\b", rf"^  serverPemPath: {re.escape(mv_dir)}/tls/server\.pem\b"]
for pat in pats:
    if not re.search(pat, text, re.M):
        sys.exit(f"milvus.sh: ERROR: milvus.yaml lacks {pat!r}")
if len(re.findall(r"^  ip: 127\.0\.0\.1\b", text, re.M)) != 7:
    sys.exit("milvus.sh: ERROR: milvus.yaml does not pin all 7 component ips to 127.0.0.1")
EOF
}

# Waits for /healthz then one real RPC; on timeout shows the logs and fails.
wait_ready() {
  local pid=$1 t0=$2
  while ! healthy; do
    if gone_or_zombie "$pid"; then
      show_logs; die "Milvus (pid $pid) exited during startup"
    fi
    if (( SECONDS - t0 >= start_timeout )); then
      show_logs; die "Milvus not healthy after ${start_timeout} s ($healthz)"
    fi
    sleep 0.5
  done
  say "healthz OK after $((SECONDS - t0)) s"
  local err
  if ! err=$(rpc_ok 2>&1); then
    show_logs; say "$err"; die "healthz OK but list_collections failed"
  fi
  say "list_collections OK after $((SECONDS - t0)) s"
}

cmd_start() {
  local t0=$SECONDS pid running err
  if pid=$(live_pid); then
    running=$(pid_mode "$pid")
    if [ "$running" = "$mode" ]; then
      echo "$mode" >"$mode_file"
      if [ "$mode" = minio ]; then ensure_s3; fi
      if healthy; then
        # secure: the tests' user is made (or found) by a logged-in call.
        if [ "$mode" = secure ] && ! err=$(rpc_ok 2>&1); then say "$err"; die "running, but the login as root over TLS failed"; fi
        say "already running (pid $pid, mode $mode) and healthy"
        print_endpoints; return 0
      fi
      say "running (pid $pid, mode $mode) but not healthy yet; waiting"
      wait_ready "$pid" "$t0"; print_endpoints; return 0
    fi
    # Fixed ports and Milvus' /run/milvus lock: the two modes cannot run at once.
    say "running in mode $running (pid $pid), but $mode was asked for: restarting"
    cmd_stop
  fi
  rm -f "$pid_file" "$mode_file"
  local p waited=0
  # A Milvus that just stopped can hold its ports for a few seconds more: give it 30 s.
  while [ "$waited" -lt 30 ] && { port_open "$grpc_port" || port_open "$metrics_port" || port_open "$etcd_port"; }; do
    sleep 1
    waited=$((waited + 1))
  done
  for p in "$grpc_port" "$metrics_port" "$etcd_port"; do
    if port_open "$p"; then
      die "port $p is in use by a process this script did not start ($(ss -ltnpH "sport = :$p" 2>/dev/null | head -n1 | sed -e "s/.*users:((//" -e "s/))$//"))." \
        "Stop it (or run 'scripts/milvus.sh stop' if it is a leftover Milvus of another MM_TE_DIR) and retry."
    fi
  done
  "$root/scripts/python-env.sh"
  if [ "$mode" = minio ]; then ensure_s3; fi
  mkdir -p "$mv_dir/run" "$mv_dir/logs" "$run_dir"
  if [ "$mode" = secure ]; then make_certs; fi
  say "writing config (mode $mode) and unpacking binaries into $mv_dir"
  write_config
  say "config written after $((SECONDS - t0)) s; starting $mv_dir/bin/milvus run standalone"
  local f
  for f in stdout stderr; do   # keep the previous run's output for post-mortems
    if [ -s "$mv_dir/logs/milvus-$f.log" ]; then mv -f "$mv_dir/logs/milvus-$f.log" "$mv_dir/logs/milvus-$f.prev.log"; fi
  done
  # §5.4 step 4: the binary itself, detached (own session, stdin closed); the pid file names Milvus itself.
  DEPLOY_MODE=STANDALONE METRICS_PORT="$metrics_port" MILVUS_RUN_DIR="$mv_dir/run" \
    LD_LIBRARY_PATH="$mv_dir/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    setsid -f bash -c 'echo $$ >"$1"; cd "$2"; exec nohup "$2/bin/milvus" run standalone' _ "$pid_file" "$mv_dir" \
    </dev/null >"$mv_dir/logs/milvus-stdout.log" 2>"$mv_dir/logs/milvus-stderr.log"
  local i
  for i in $(seq 50); do [ -s "$pid_file" ] && break; sleep 0.1; done
  [ -s "$pid_file" ] || die "no pid file $pid_file after starting Milvus"
  pid=$(cat "$pid_file")
  echo "$mode" >"$mode_file"
  say "started pid $pid (mode $mode)"
  wait_ready "$pid" "$t0"
  say "started in $((SECONDS - t0)) s"
  print_endpoints
}

cmd_stop() {
  local pid t0=$SECONDS
  if ! pid=$(live_pid); then
    if [ -e "$pid_file" ]; then say "pid file names no live Milvus; removing it"; fi
    rm -f "$pid_file" "$mode_file"
    say "not running"
    if port_open "$grpc_port"; then say "note: port $grpc_port is open, but not by a Milvus this script started"; fi
    return 0
  fi
  say "stopping pid $pid (mode $(pid_mode "$pid"), SIGTERM)"
  stop_pid "$pid" "$stop_timeout"
  rm -f "$pid_file" "$mode_file"
  say "stopped in $((SECONDS - t0)) s"
}

cmd_status() {
  local pid
  if ! pid=$(live_pid); then
    echo "milvus: not running (no live pid in $pid_file)"
    if port_open "$grpc_port"; then echo "milvus: note: port $grpc_port is open, but not by a Milvus this script started"; fi
    return 1
  fi
  # Report the running Milvus, whatever MM_MILVUS_STORAGE asks for.
  mode=$(pid_mode "$pid"); mv_dir=$(mode_dir "$mode")
  if healthy; then
    echo "milvus: running (pid $pid, mode $mode), healthy"
    print_endpoints
    return 0
  fi
  echo "milvus: running (pid $pid, mode $mode), NOT healthy ($healthz)"
  return 1
}

cmd_purge() {
  cmd_stop
  local m
  for m in "${modes[@]}"; do rm -rf "$(mode_dir "$m")"; done
  rm -f "$pid_file" "$mode_file"   # not all of run/: scripts/s3.sh keeps its pid file there
  # minio mode's binlogs (its etcd metadata is gone with milvus-minio/). The S3 server itself keeps running.
  rm -rf "$te_dir/s3/$s3_bucket/$s3_root_path"
  say "purged $(for m in "${modes[@]}"; do printf '%s ' "$(mode_dir "$m")"; done)and $te_dir/s3/$s3_bucket/$s3_root_path (venv $venv kept)"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  purge) cmd_purge ;;
  *) echo "usage: MM_MILVUS_STORAGE=local|minio|secure $0 start|stop|status|purge" >&2; exit 2 ;;
esac
