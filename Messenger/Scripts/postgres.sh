#!/usr/bin/env bash
# A private PostgreSQL cluster for the relay's tests and local runs (Debian's `postgresql`
# package; nothing system-wide is touched): its own data directory, port and socket directory,
# listening on 127.0.0.1 only, trust authentication for the local `postgres` role.
#
#   Messenger/Scripts/postgres.sh start     initdb on first use, then start (idempotent)
#   Messenger/Scripts/postgres.sh stop      fast shutdown
#   Messenger/Scripts/postgres.sh restart   stop (fast) and start again (the fault tests use it)
#   Messenger/Scripts/postgres.sh url       print the URL (export HUSH_TEST_POSTGRES_URL=$(… url))
#   Messenger/Scripts/postgres.sh status
#
# HUSH_PG_DIR (default /tmp/hush-postgres) and HUSH_PG_PORT (default 55432) choose the cluster.
# As root the server runs as the `postgres` user (runuser), as PostgreSQL refuses root.
set -euo pipefail
dir=${HUSH_PG_DIR:-/tmp/hush-postgres}
port=${HUSH_PG_PORT:-55432}
bin=${HUSH_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
  echo "postgres.sh: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
  exit 1
fi
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
url() { echo "postgres://postgres@127.0.0.1:$port/postgres"; }

start() {
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    mkdir -p "$dir/data"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  if as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then return 0; fi
  # Durable commits (fsync, synchronous_commit on: the defaults); enough connections for several
  # relay nodes with their pools; loopback only.
  # The postmaster outlives this script: it must not inherit the caller's file descriptors
  # (a test's pipes would stay open in it, and a reader waiting for their end would hang).
  # A subshell closes every descriptor above 2, then runs pg_ctl with stdin from /dev/null.
  (
    for fd in /proc/$BASHPID/fd/*; do
      n=${fd##*/}
      if [ "$n" -gt 2 ] 2>/dev/null; then eval "exec $n>&-"; fi
    done
    exec </dev/null
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=128MB" start >/dev/null
  )
}
stop() {
  if [ -f "$dir/data/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
  fi
}

case "${1:-}" in
  start) start; url ;;
  stop) stop ;;
  restart) stop; start ;;
  url) url ;;
  status) as_owner "$bin/pg_ctl" -D "$dir/data" status ;;
  *) echo "usage: $0 start|stop|restart|url|status" >&2; exit 2 ;;
esac
