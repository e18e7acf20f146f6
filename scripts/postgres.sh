#!/usr/bin/env bash
# A throwaway PostgreSQL for the test suite, on 127.0.0.1, without Docker.
#
#   eval "$(scripts/postgres.sh start)"   # prints: export GOGRID_TEST_PG_URL=postgres://…
#   npx vitest run test/coordinator
#   scripts/postgres.sh stop              # stops it and deletes the cluster
#
# `start` installs the Debian `postgresql` package when no server binary is found
# (CI runs this as root on a fresh machine), initdbs a cluster under /tmp, starts it
# and creates the role and database `gogrid`. It is idempotent: with the cluster
# already running it only prints the URL. Only the export line goes to stdout, so
# `eval` sees nothing else; progress and errors go to stderr.
#
# Environment: GOGRID_PG_PORT (default 54329), GOGRID_PG_DIR (default /tmp/gogrid-pg-$PORT).
set -euo pipefail

PORT="${GOGRID_PG_PORT:-54329}"
ROOT="${GOGRID_PG_DIR:-/tmp/gogrid-pg-$PORT}"
DATA="$ROOT/data"
SOCK="$ROOT/run"
LOG="$ROOT/postgres.log"
ROLE=gogrid
PASSWORD=gogrid
URL="postgres://$ROLE:$PASSWORD@127.0.0.1:$PORT/$ROLE"

say() { echo "postgres.sh: $*" >&2; }

# Debian keeps the server binaries out of PATH (/usr/lib/postgresql/<major>/bin);
# other systems put them on PATH. Prefer PATH, then the newest Debian major.
find_bindir() {
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return 0
  fi
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -n "$dir" && -x "$dir/pg_ctl" ]]; then
    echo "$dir"
    return 0
  fi
  return 1
}

install_postgres() {
  if [[ "$(id -u)" != 0 ]]; then
    say "no PostgreSQL server binaries found and not root; install the 'postgresql' package"
    exit 1
  fi
  say "installing postgresql with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends postgresql >&2
}

# initdb and postgres refuse to run as root, so as root everything runs as the
# `postgres` user the Debian package creates.
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() {
  [[ -f "$DATA/PG_VERSION" ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

psql_admin() {
  as_owner "$BIN/psql" -h "$SOCK" -p "$PORT" -d postgres -v ON_ERROR_STOP=1 -q -X "$@" >&2
}

start() {
  BIN="$(find_bindir || { install_postgres >&2; find_bindir; })" || {
    say "PostgreSQL server binaries still not found after installing"
    exit 1
  }
  if running; then
    echo "export GOGRID_TEST_PG_URL=$URL"
    return 0
  fi
  mkdir -p "$ROOT"
  if [[ "$(id -u)" == 0 ]]; then
    chown postgres: "$ROOT"
  fi
  as_owner mkdir -p "$SOCK"
  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    say "initdb $DATA ($("$BIN/postgres" --version))"
    local pwfile
    pwfile="$(as_owner mktemp "$ROOT/pw.XXXXXX")"
    echo "$PASSWORD" | as_owner tee "$pwfile" >/dev/null
    # Local socket: trust (only this script uses it, as the cluster owner).
    # TCP: a password, as a real deployment would use.
    as_owner "$BIN/initdb" -D "$DATA" -U postgres --pwfile="$pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >&2
    rm -f "$pwfile"
  fi
  # fsync off: the cluster is thrown away, and it makes the tests' commits cheap.
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$SOCK -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >&2 || { say "start failed; log follows"; cat "$LOG" >&2; exit 1; }
  psql_admin <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD';
  END IF;
END \$\$;
SELECT 'CREATE DATABASE $ROLE OWNER $ROLE' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$ROLE')
\gexec
SQL
  say "running on 127.0.0.1:$PORT (data $DATA, log $LOG)"
  echo "export GOGRID_TEST_PG_URL=$URL"
}

stop() {
  BIN="$(find_bindir || true)"
  if [[ -n "$BIN" ]] && running; then
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2
  fi
  rm -rf "$ROOT"
  say "stopped; removed $ROOT"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) echo "export GOGRID_TEST_PG_URL=$URL" ;;
  *)
    echo "usage: $0 start|stop|url" >&2
    exit 2
    ;;
esac
