#!/usr/bin/env bash
# Runs a command with NATS (JetStream) and PostgreSQL available, and exits with its status.
#
#   scripts/with-stack.sh CMD [ARGS...]
#
# NATS_URL and DATABASE_URL (defaults nats://127.0.0.1:4222 and
# postgres://postgres@127.0.0.1:5432) are used as they are when something answers there: a
# NATS server with JetStream enabled, a PostgreSQL server that runs `select 1` in the URL's
# database. For each that does not answer, a private server is started on a free port of
# 127.0.0.1 with its data under .stack/<pid>/ of the repository, the variable is pointed at it
# (overriding the given URL), and the server is stopped and its data removed when CMD ends,
# also on INT and TERM. Missing servers are installed from Debian's packages (nats-server,
# postgresql). NATS_SERVER_BIN, when set, is the nats-server binary to run: a private server
# of it is started whatever answers at NATS_URL.
#
# PostgreSQL refuses to run as root, so as root the private server runs as the `postgres`
# system user. Messages go to standard error with a "with-stack:" prefix; the last lines a
# run prints are CMD's own.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
run_dir="$root/.stack/$$"
nats_pid=""
pg_data=""
pg_bin=""
pg_user=""
apt_updated=false

say() { echo "with-stack: $*" >&2; }
die() {
  say "$*"
  exit 1
}

if [ "$#" -eq 0 ]; then
  die "usage: scripts/with-stack.sh CMD [ARGS...]"
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  else
    sudo "$@"
  fi
}

# Installs Debian packages, updating the package lists once per run.
install_packages() {
  say "installing $* from Debian's packages"
  if [ "$apt_updated" = false ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    apt_updated=true
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "$@" >&2
}

# Prints "host port" of the first server of a URL such as nats://user:pw@host:4222,nats://b.
host_port() {
  local url=$1 default_port=$2 rest
  rest=${url#*://}
  rest=${rest%%,*}
  rest=${rest%%/*}
  rest=${rest##*@}
  if [[ $rest == *:* ]]; then
    echo "${rest%:*} ${rest##*:}"
  else
    echo "$rest $default_port"
  fi
}

# True if a NATS server with JetStream answers at host $1 port $2: the first line a NATS
# server sends is INFO {...}, which says "jetstream":true when it is enabled.
nats_answers() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    IFS= read -r -t 2 line <&3 || exit 1
    [[ $line == INFO* && $line == *"\"jetstream\":true"* ]]
  ' _ "$1" "$2" 2>/dev/null
}

# True if PostgreSQL at URL $1 runs a query.
postgres_answers() {
  PGCONNECT_TIMEOUT=3 pg_isready -q -d "$1" >/dev/null 2>&1 &&
    PGCONNECT_TIMEOUT=3 psql "$1" -XAtqc 'select 1' >/dev/null 2>&1
}

# True if something listens on 127.0.0.1 port $1.
port_taken() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# Prints a port of 127.0.0.1 nothing listens on, from the range above the well-known servers.
free_port() {
  local port tries=0
  while [ "$tries" -lt 100 ]; do
    port=$((20000 + RANDOM % 40000))
    if ! port_taken "$port"; then
      echo "$port"
      return 0
    fi
    tries=$((tries + 1))
  done
  die "found no free port on 127.0.0.1"
}

# NATS_SERVER_BIN names another server binary (tests run against several versions); Debian
# installs it in /usr/sbin, which is not on every user's PATH.
find_nats_server() {
  if [ -n "${NATS_SERVER_BIN:-}" ]; then
    echo "$NATS_SERVER_BIN"
    return 0
  fi
  if command -v nats-server 2>/dev/null; then
    return 0
  fi
  [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server
}

start_nats() {
  local server port tries
  server=$(find_nats_server) || true
  if [ -z "$server" ]; then
    install_packages nats-server
    server=$(find_nats_server) || die "nats-server is not installed after all"
  fi
  mkdir -p "$run_dir/nats"
  port=$(free_port)
  # In a session of its own, so that ^C on the terminal reaches CMD, not the server.
  setsid "$server" -c "$root/deploy/nats-server.conf" -js -sd "$run_dir/nats" \
    -a 127.0.0.1 -p "$port" >"$run_dir/nats.log" 2>&1 &
  nats_pid=$!

  # Ready when it answers with JetStream on; a server that died (port taken meanwhile, bad
  # config) fails the run with its log.
  tries=0
  until nats_answers 127.0.0.1 "$port"; do
    if ! kill -0 "$nats_pid" 2>/dev/null || [ "$tries" -ge 100 ]; then
      cat "$run_dir/nats.log" >&2
      die "the private NATS server did not start"
    fi
    sleep 0.1
    tries=$((tries + 1))
  done
  NATS_URL="nats://127.0.0.1:$port"
  say "started a private NATS server with JetStream at $NATS_URL"
}

find_pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
    fi
  done | sort -V | tail -n 1
}

# Runs a PostgreSQL program as the user the private server belongs to.
as_pg_user() {
  if [ -n "$pg_user" ]; then
    runuser -u "$pg_user" -- "$@"
  else
    "$@"
  fi
}

start_postgres() {
  local port
  pg_bin=$(find_pg_bin)
  if [ -z "$pg_bin" ]; then
    install_packages postgresql
    pg_bin=$(find_pg_bin)
    [ -n "$pg_bin" ] || die "PostgreSQL is not installed after all"
  fi
  if [ "$(id -u)" -eq 0 ]; then
    pg_user=postgres
    id -u "$pg_user" >/dev/null 2>&1 ||
      useradd --system --no-create-home --shell /usr/sbin/nologin "$pg_user"
  fi

  # The data directory holds the socket too, whose path must stay short (about 100 bytes),
  # and must be reachable by the server's user; otherwise a directory under /tmp stands in.
  pg_data="$run_dir/postgres"
  mkdir -p "$pg_data"
  [ -z "$pg_user" ] || chown "$pg_user" "$pg_data"
  if [ "${#pg_data}" -gt 80 ] || ! as_pg_user test -w "$pg_data"; then
    pg_data=$(mktemp -d /tmp/csmp-stack-postgres.XXXXXX)
    [ -z "$pg_user" ] || chown "$pg_user" "$pg_data"
  fi
  chmod 700 "$pg_data"

  as_pg_user "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust --encoding=UTF8 \
    --locale=C >"$run_dir/initdb.log" 2>&1 || {
    cat "$run_dir/initdb.log" >&2
    die "initdb failed"
  }
  port=$(free_port)
  as_pg_user setsid -w "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_data/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $pg_data -c fsync=off" start >/dev/null || {
    cat "$pg_data/server.log" >&2
    die "the private PostgreSQL server did not start"
  }
  DATABASE_URL="postgres://postgres@127.0.0.1:$port"
  if ! postgres_answers "$DATABASE_URL"; then
    cat "$pg_data/server.log" >&2
    die "the private PostgreSQL server does not answer at $DATABASE_URL"
  fi
  say "started a private PostgreSQL server at $DATABASE_URL"
}

# Stops what this run started and removes its data; keeps the exit status it is called with.
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$nats_pid" ] && kill -0 "$nats_pid" 2>/dev/null; then
    kill -TERM "$nats_pid" 2>/dev/null || true
    wait "$nats_pid" 2>/dev/null || true
  fi
  if [ -n "$pg_data" ] && [ -f "$pg_data/postmaster.pid" ]; then
    as_pg_user "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
      say "failed to stop the private PostgreSQL server in $pg_data"
  fi
  if [ -n "$pg_data" ] && [[ $pg_data == /tmp/csmp-stack-postgres.* ]]; then
    rm -rf "$pg_data"
  fi
  rm -rf "$run_dir"
  rmdir "$root/.stack" 2>/dev/null || true
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. NATS: the given (or default) server if it has JetStream, else a private one; always a
# private one when NATS_SERVER_BIN names the binary to run.
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
read -r nats_host nats_port <<<"$(host_port "$NATS_URL" 4222)"
if [ -n "${NATS_SERVER_BIN:-}" ]; then
  say "starting a private $("$NATS_SERVER_BIN" --version)"
  start_nats
elif nats_answers "$nats_host" "$nats_port"; then
  say "using NATS with JetStream at $NATS_URL"
else
  say "no NATS server with JetStream answers at $NATS_URL"
  start_nats
fi

# 2. PostgreSQL: the client tools probe it, so they come first.
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432}"
if ! command -v psql >/dev/null || ! command -v pg_isready >/dev/null; then
  install_packages postgresql-client
fi
if postgres_answers "$DATABASE_URL"; then
  say "using PostgreSQL at $DATABASE_URL"
else
  say "no PostgreSQL server answers at $DATABASE_URL"
  start_postgres
fi
export NATS_URL DATABASE_URL

# 3. The command, in the background so that INT and TERM reach this script at once; they are
# passed on to it, and the servers stop only after it has ended.
# shellcheck disable=SC2317 # called by the trap
forward() {
  kill -TERM "$child" 2>/dev/null || true
}
if { true <&0; } 2>/dev/null; then
  "$@" <&0 &
else
  "$@" </dev/null &
fi
child=$!
trap forward INT TERM
status=0
while :; do
  wait "$child" && status=0 || status=$?
  if ! kill -0 "$child" 2>/dev/null; then
    break
  fi
done
exit "$status"
