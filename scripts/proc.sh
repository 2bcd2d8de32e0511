# Process helpers shared by the service scripts (mariadb.sh, s3.sh, milvus.sh); each defines
# `say` before sourcing this.

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
