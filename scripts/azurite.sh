#!/usr/bin/env bash
# Azurite 3.35.0 (npm `azurite`, the Azure Storage emulator), blob service only, for the Azure tests
# (tests/tests/azure_e2e.rs): `cloud: azure` sources and targets through object_store's MicrosoftAzureBuilder.
# 3.35.0 is the newest that runs on the machine's Node.js 20 (3.36+ need Node >= 21).
#
#   scripts/azurite.sh start     npm ci into scripts/azurite (pinned by its package-lock.json), start the blob service on
#                                127.0.0.1, wait until it answers, create the containers (idempotent)
#   scripts/azurite.sh stop      SIGTERM, wait up to 30 s (a zombie counts as gone), then SIGKILL
#   scripts/azurite.sh status    exit 0 when the Azurite this script started answers
#   scripts/azurite.sh install   only npm ci
#
# State: $MM_TE_DIR (default ~/.cache/milvus-migration/te)/azurite: data/ (--location), azurite.pid, azurite.port
# (reused while it stays free), azurite.log (+ .prev.log), lock.
# Port: $MM_AZURITE_PORT if set, else the last one used if free, else a free one the kernel picks; never Azurite's default
# 10000 (a developer's own Azurite may hold it). Bound on 127.0.0.1 only.
# Account: Azurite's well-known development account devstoreaccount1 and its published key (not a secret). Clients use
# the account URL http://127.0.0.1:<port>/devstoreaccount1 (path style) with Shared Key auth.
# Containers: milvus-bucket (a target) and source-bucket (a 1.x source).
# stdout: AZURE_* KEY=value lines; progress goes to stderr.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
te_dir="${MM_TE_DIR:-$HOME/.cache/milvus-migration/te}"
mkdir -p "$te_dir"
te_dir=$(cd "$te_dir" && pwd)
state_dir="$te_dir/azurite"
data_dir="$state_dir/data"
pid_file="$state_dir/azurite.pid"
port_file="$state_dir/azurite.port"
log_file="$state_dir/azurite.log"
lock_file="$state_dir/lock"
pkg_dir="$root/scripts/azurite"
bin="$pkg_dir/node_modules/.bin/azurite-blob"
version=3.35.0
host=127.0.0.1
default_port=10000
account=devstoreaccount1
# Azurite's published development key (docs: "Use Azurite for local Azure Storage development").
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
containers=(milvus-bucket source-bucket)
api_version=2021-08-06
start_timeout=30
stop_timeout=30

say() { echo "azurite.sh: $*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"
die() { say "ERROR: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null; }

ensure_pkg() {
  if [ -x "$bin" ] && [ "$(node -p "require('$pkg_dir/node_modules/azurite/package.json').version" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  command -v npm >/dev/null || die "npm is not on PATH (Azurite is an npm package)"
  local t0=$SECONDS
  say "npm ci in $pkg_dir (azurite $version)"
  (cd "$pkg_dir" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci in $pkg_dir failed"
  [ -x "$bin" ] || die "npm ci finished but $bin is missing"
  say "installed in $((SECONDS - t0)) s"
}

# The pid in the pid file, if it names a live (not zombie) Azurite blob service on our data dir.
is_our_azurite() {
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ "$cmd" == *azurite-blob*"--location $data_dir "* ]]
}
live_pid() { pid_from_file "$pid_file" is_our_azurite; }

# A port for Azurite: $MM_AZURITE_PORT, else the last one used if free, else one the kernel picks (not 10000).
pick_port() { pick_free_port MM_AZURITE_PORT "$default_port" "$port_file"; }

# A Shared Key signed request (the emulator checks the signature like Azure does). Path-style URLs: the canonical
# resource names the account twice (/account/account/container).
signed() { # METHOD PATH QUERY(k=v&k=v, sorted, no encoding needed) [curl args]
  local method=$1 path=$2 query=$3; shift 3
  local date canon_q="" sts sig url
  date=$(LC_ALL=C TZ=GMT date '+%a, %d %b %Y %H:%M:%S GMT')
  if [ -n "$query" ]; then canon_q=$'\n'$(tr '&=' $'\n:' <<<"$query"); fi
  # VERB, then 11 standard headers (all empty: Content-Length of an empty body is empty), then x-ms-* and the resource.
  sts="$method"$'\n\n\n\n\n\n\n\n\n\n\n\n'"x-ms-date:$date"$'\n'"x-ms-version:$api_version"$'\n'"/$account/$account$path$canon_q"
  sig=$(printf '%s' "$sts" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$(base64 -d <<<"$key" | xxd -p -c 256)" -binary | base64 -w0)
  url="http://$host:$port/$account$path${query:+?$query}"
  curl -s --max-time 5 -X "$method" -H "x-ms-date: $date" -H "x-ms-version: $api_version" -H "Content-Length: 0" \
    -H "Authorization: SharedKey $account:$sig" "$@" "$url" 2>/dev/null
}

# Azurite itself answers (an unsigned request gets a 403 from a server that says it is Azurite-Blob).
answers() { curl -s --max-time 2 -o /dev/null -D - "http://$host:$port/$account?comp=list" 2>/dev/null | grep -qi '^server: Azurite-Blob'; }

make_containers() {
  local c code
  for c in "${containers[@]}"; do
    code=$(signed PUT "/$c" "restype=container" -o /dev/null -w '%{http_code}') || true
    case "$code" in
      201|409) ;;   # created, or it exists
      *) die "creating container $c failed (HTTP ${code:-none}); see $log_file" ;;
    esac
  done
  # Listed by the server itself, with the key the clients use.
  local body
  body=$(signed GET "" "comp=list") || die "listing containers failed"
  for c in "${containers[@]}"; do
    [[ "$body" == *"<Name>$c</Name>"* ]] || die "Azurite answers but does not list container $c"
  done
}

print_env() {
  echo "AZURE_ENDPOINT=http://$host:$port/$account"
  echo "AZURE_ACCOUNT=$account"
  echo "AZURE_KEY=$key"
  echo "AZURE_CONTAINER=${containers[0]}"
  echo "AZURE_SOURCE_CONTAINER=${containers[1]}"
  echo "AZURITE_DATA_DIR=$data_dir"
}

show_log() {
  [ -s "$log_file" ] || return 0
  say "---- last 40 lines of $log_file ----"
  tail -n 40 "$log_file" >&2
}

cmd_start() {
  local t0=$SECONDS pid try
  mkdir -p "$state_dir"
  exec 9>"$lock_file"
  flock 9   # one start at a time
  ensure_pkg
  if pid=$(live_pid); then
    port=$(cat "$port_file" 2>/dev/null || true)
    [[ "$port" =~ ^[0-9]+$ ]] || die "Azurite runs (pid $pid) but $port_file names no port; run '$0 stop' and retry"
    until answers; do
      (( SECONDS - t0 < start_timeout )) || { show_log; die "Azurite (pid $pid, port $port) does not answer"; }
      sleep 0.1
    done
    make_containers
    say "already running (pid $pid, port $port)"
    print_env
    return 0
  fi
  rm -f "$pid_file"
  mkdir -p "$data_dir"
  for try in 1 2 3; do   # a port picked free can be taken before Azurite binds it
    port=$(pick_port) || exit 1
    say "starting azurite-blob $version on $host:$port, data $data_dir (log $log_file)"
    pid=$(start_detached Azurite "$bin" --blobHost "$host" --blobPort "$port" --location "$data_dir" --disableTelemetry --silent) || exit 1
    echo "$port" >"$port_file"
    until answers; do
      if gone_or_zombie "$pid"; then
        if grep -q 'EADDRINUSE' "$log_file" && [ -z "${MM_AZURITE_PORT:-}" ]; then say "port $port was taken; picking another"; continue 2; fi
        show_log; die "Azurite (pid $pid) exited during startup"
      fi
      if (( SECONDS - t0 >= start_timeout )); then
        show_log; stop_pid "$pid" "$stop_timeout"; rm -f "$pid_file"; die "Azurite does not answer on $host:$port after ${start_timeout} s"
      fi
      sleep 0.1
    done
    make_containers
    say "running (pid $pid), answering after $((SECONDS - t0)) s"
    print_env
    return 0
  done
  show_log; die "Azurite could not bind a port after 3 tries"
}

cmd_stop() { stop_service Azurite; }

cmd_status() {
  local pid
  if ! pid=$(live_pid); then
    echo "azurite: not running (no live pid in $pid_file)"
    return 1
  fi
  port=$(cat "$port_file" 2>/dev/null || true)
  if [[ "$port" =~ ^[0-9]+$ ]] && answers; then echo "azurite: running (pid $pid), answering"; print_env; return 0; fi
  echo "azurite: running (pid $pid), NOT answering on $host:${port:-?}"
  return 1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  install) ensure_pkg ;;
  *) echo "usage: $0 start|stop|status|install" >&2; exit 2 ;;
esac
