#!/usr/bin/env bash
# MariaDB on 127.0.0.1:3306 for the tests that read a Milvus 1.x MySQL metadata store.
# Recipe: shared/spec/test-env.md §2, §5.3, §5.7.
#
#   scripts/mariadb.sh ensure   use a MariaDB that answers on 127.0.0.1:3306; else start it (installing it with apt-get
#                               when mariadbd is missing); then provision (idempotent, every time) and check
#   scripts/mariadb.sh status   exit 0 when it answers and the milvus user can log in
#   scripts/mariadb.sh stop     stops MariaDB only if this script started it ($MM_TE_DIR/run/mariadb.pid)
#
# Provisioning (as root over the unix socket, empty password): database `milvus`; user `milvus` @'%', @'localhost' and
# @'127.0.0.1' (a TCP login from 127.0.0.1 shows up as milvus@localhost) with password `milvuspw`; ALL on `milvus`.* and
# on the test databases `mm\_test\_%`.* (so the user can CREATE/DROP DATABASE mm_test_<x>).
# stdout: MYSQL_URL=mysql://milvus:milvuspw@127.0.0.1:3306/milvus (and MYSQL_* parts); progress goes to stderr.
set -euo pipefail
te_dir="${MM_TE_DIR:-$HOME/.cache/milvus-migration/te}"
mkdir -p "$te_dir"
te_dir=$(cd "$te_dir" && pwd)
run_dir="$te_dir/run"
pid_file="$run_dir/mariadb.pid"
err_log="$run_dir/mariadb.err"
host=127.0.0.1
port=3306
user=milvus
password=milvuspw
database=milvus
# A reader whose password has the characters a Go DSN separates on ('?', '/', '@', ':'): the
# DSN parser must split after the database name, as the Go driver does.
q_user=milvus_q
q_password='q?pw/1@x:y'
start_timeout=30

say() { echo "mariadb.sh: $*" >&2; }
source "$(dirname "${BASH_SOURCE[0]}")/proc.sh"
die() { say "ERROR: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

# mariadb-admin ping exits 0 whenever the server answers (even with "Access denied").
tcp_answers() { command -v mariadb-admin >/dev/null && mariadb-admin --protocol=tcp -h"$host" -P"$port" -uroot --connect-timeout=3 ping >/dev/null 2>&1; }
socket_answers() { command -v mariadb-admin >/dev/null && mariadb-admin --protocol=socket -uroot --connect-timeout=3 ping >/dev/null 2>&1; }

user_ok() {
  mariadb-admin --protocol=tcp -h"$host" -P"$port" -u"$user" -p"$password" --connect-timeout=3 ping >/dev/null 2>&1 &&
    mariadb --protocol=tcp -h"$host" -P"$port" -u"$user" -p"$password" --connect-timeout=3 -e "USE $database" >/dev/null 2>&1
}

is_mariadbd() { [ "$(exe_of "$1")" = /usr/sbin/mariadbd ]; }
live_pid() { pid_from_file "$pid_file" is_mariadbd; }

print_env() {
  echo "MYSQL_URL=mysql://$user:$password@$host:$port/$database"
  echo "MYSQL_HOST=$host"
  echo "MYSQL_PORT=$port"
  echo "MYSQL_USER=$user"
  echo "MYSQL_PASSWORD=$password"
  echo "MYSQL_DATABASE=$database"
  echo "MYSQL_Q_USER=$q_user"
  echo "MYSQL_Q_PASSWORD='$q_password'"
}

install_mariadb() {
  say "mariadbd not found; installing mariadb-server and mariadb-client with apt-get"
  local t0=$SECONDS
  apt-cache policy mariadb-server 2>/dev/null | grep -q 'Candidate: [0-9]' || apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client >&2
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || die "apt-get install did not provide /usr/sbin/mariadbd"
  say "installed in $((SECONDS - t0)) s"
}

start_mariadb() {
  local t0=$SECONDS
  if port_open; then
    die "port $port is open but does not answer as MariaDB/MySQL ($(ss -ltnpH "sport = :$port" 2>/dev/null | head -n1 | sed -e 's/.*users:((//' -e 's/))$//'))"
  fi
  [ -x /usr/sbin/mariadbd ] || install_mariadb
  mkdir -p "$run_dir"
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >&2
  install -d -o mysql -g mysql /run/mysqld
  say "starting /usr/sbin/mariadbd (log $err_log)"
  # No systemd here and policy-rc.d refuses service starts (§2): start the daemon directly. --user=mysql is required as root.
  start-stop-daemon --start --oknodo --background --make-pidfile --pidfile "$pid_file" --exec /usr/sbin/mariadbd -- \
    --user=mysql --bind-address="$host" --port="$port" --log-error="$err_log"
  while ! socket_answers; do
    if (( SECONDS - t0 >= start_timeout )); then
      [ -s "$err_log" ] && { say "---- last 40 lines of $err_log ----"; tail -n 40 "$err_log" >&2; }
      die "MariaDB does not answer on its socket after ${start_timeout} s"
    fi
    sleep 0.1
  done
  while ! tcp_answers; do
    (( SECONDS - t0 < start_timeout )) || die "MariaDB answers on its socket but not on $host:$port"
    sleep 0.1
  done
  say "started in $((SECONDS - t0)) s"
}

root_sql() {
  # root has an empty password over the socket on these machines; fall back to TCP (root@127.0.0.1).
  if mariadb --protocol=socket -uroot -e 'SELECT 1' >/dev/null 2>&1; then
    mariadb --protocol=socket -uroot "$@"
  else
    mariadb --protocol=tcp -h"$host" -P"$port" -uroot "$@"
  fi
}

provision() {
  local h sql="CREATE DATABASE IF NOT EXISTS \`$database\`;"
  for h in '%' localhost 127.0.0.1; do
    sql+="
CREATE USER IF NOT EXISTS '$user'@'$h' IDENTIFIED BY '$password';
ALTER USER '$user'@'$h' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON \`$database\`.* TO '$user'@'$h';
GRANT ALL PRIVILEGES ON \`mm\\_test\\_%\`.* TO '$user'@'$h';
CREATE USER IF NOT EXISTS '$q_user'@'$h' IDENTIFIED BY '$q_password';
ALTER USER '$q_user'@'$h' IDENTIFIED BY '$q_password';
GRANT SELECT ON \`mm\\_test\\_%\`.* TO '$q_user'@'$h';"
  done
  sql+="
FLUSH PRIVILEGES;"
  root_sql -e "$sql" || die "provisioning as root failed (root needs an empty password over the socket or from $host)"
}

cmd_ensure() {
  local t0=$SECONDS
  if tcp_answers; then
    say "MariaDB answers on $host:$port"
  elif socket_answers; then
    die "MariaDB answers on its socket but not on $host:$port (skip-networking or another port?)"
  else
    start_mariadb
  fi
  provision
  user_ok || die "the $user user cannot log in to $database on $host:$port after provisioning"
  say "ready in $((SECONDS - t0)) s"
  print_env
}

cmd_status() {
  if ! tcp_answers; then echo "mariadb: not answering on $host:$port"; return 1; fi
  local pid note="not started by this script"
  if pid=$(live_pid); then note="started by this script, pid $pid"; fi
  if user_ok; then echo "mariadb: running ($note), $user can log in"; print_env; return 0; fi
  echo "mariadb: running ($note), but $user cannot log in to $database (run 'scripts/mariadb.sh ensure')"
  return 1
}

cmd_stop() {
  local pid t0=$SECONDS
  if ! pid=$(live_pid); then
    rm -f "$pid_file"
    say "no MariaDB started by this script is running; leaving any other one alone"
    return 0
  fi
  say "stopping pid $pid"
  mariadb-admin --protocol=socket -uroot shutdown >/dev/null 2>&1 || true
  stop_pid "$pid" 30
  rm -f "$pid_file"
  say "stopped in $((SECONDS - t0)) s"
}

case "${1:-}" in
  ensure|start) cmd_ensure ;;
  status) cmd_status ;;
  stop) cmd_stop ;;
  *) echo "usage: $0 ensure|status|stop" >&2; exit 2 ;;
esac
