# Process helpers shared by the service scripts (mariadb.sh, s3.sh, milvus.sh, milvus-lite.sh,
# azurite.sh, gcs.sh); each defines `say` (and `die`) before sourcing this.

# Succeeds when the process is gone or a zombie.
gone_or_zombie() {
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
  [[ -z "$stat" || "$stat" == Z* ]]
}

# pid_from_file FILE CHECK: the pid in FILE if it names a live (not zombie) process and
# `CHECK PID` accepts it (the process is really ours: a pid file can outlive its process).
pid_from_file() {
  [ -s "$1" ] || return 1
  local pid
  pid=$(cat "$1")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  ! gone_or_zombie "$pid" || return 1
  "$2" "$pid" || return 1
  echo "$pid"
}

# start_detached NAME CMD...: starts CMD in a session of its own (stdin closed, stdout and stderr into
# $log_file, the previous log kept as *.prev.log), its pid in $pid_file; prints the pid. Call it with
# the start lock on fd 9: the server does not inherit it. Use `pid=$(start_detached …) || exit 1`.
start_detached() {
  local name=$1 i; shift
  if [ -s "$log_file" ]; then mv -f "$log_file" "${log_file%.log}.prev.log"; fi
  rm -f "$pid_file"
  setsid -f bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pid_file" "$@" </dev/null >"$log_file" 2>&1 9>&-
  for i in $(seq 50); do [ -s "$pid_file" ] && break; sleep 0.1; done
  [ -s "$pid_file" ] || die "no pid file $pid_file after starting $name"
  cat "$pid_file"
}

# exe_of PID: the path of the process's executable.
exe_of() { readlink "/proc/$1/exe" 2>/dev/null; }

# stop_pid PID TIMEOUT_SECONDS: SIGTERM (unless already asked to stop), wait, then SIGKILL.
stop_pid() {
  local pid=$1 timeout=$2 t0=$SECONDS
  kill -TERM "$pid" 2>/dev/null || true
  while ! gone_or_zombie "$pid" && (( SECONDS - t0 < timeout )); do sleep 0.1; done
  if ! gone_or_zombie "$pid"; then
    say "still running after ${timeout} s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do gone_or_zombie "$pid" && break; sleep 0.1; done
  fi
}

# stop_service NAME: stops the process the sourcing script's `live_pid` names (stop_pid with
# $stop_timeout) and removes $pid_file; a pid file naming no live process is removed too.
stop_service() {
  local name=$1 pid t0=$SECONDS
  if ! pid=$(live_pid); then
    if [ -e "$pid_file" ]; then say "pid file names no live $name; removing it"; fi
    rm -f "$pid_file"
    say "not running"
    return 0
  fi
  say "stopping pid $pid (SIGTERM)"
  stop_pid "$pid" "$stop_timeout"
  rm -f "$pid_file"
  say "stopped in $((SECONDS - t0)) s"
}

# pick_free_port VAR AVOID PORT_FILE: a port on 127.0.0.1 for a service. The one in $VAR if set
# (it must be free), else the last one used (in PORT_FILE) while it is free, else one the kernel
# picks; never AVOID (the service's well-known port, which a developer's own copy may hold).
pick_free_port() {
  local var=$1 avoid=$2 file=$3 p
  free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
  if [ -n "${!var:-}" ]; then
    p=${!var}
    [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" != "$avoid" ] || die "$var must be a port number other than $avoid, not '$p'"
    free "$p" || die "$var $p is in use"
    echo "$p"; return 0
  fi
  if [ -s "$file" ]; then
    p=$(cat "$file")
    if [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" != "$avoid" ] && free "$p"; then echo "$p"; return 0; fi
  fi
  python3 - "$avoid" <<'PY'
import socket, sys
avoid = int(sys.argv[1])
for _ in range(20):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    if port != avoid:
        print(port)
        sys.exit(0)
sys.exit("no free port")
PY
}
