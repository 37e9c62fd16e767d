#!/usr/bin/env bash
# A throwaway PostgreSQL on 127.0.0.1 for the test suite. Installs it from Debian's packages when
# it is missing, initializes a private cluster and starts it; a no-op when it already runs.
# With --url, only prints the SQLAlchemy URL the tests use; with --running, exits 0 when it runs;
# with --stop, stops the cluster it started (in $DATA).
set -euo pipefail
PORT=${CAIRN_PG_PORT:-54329}
URL="postgresql+psycopg://postgres@127.0.0.1:${PORT}/postgres"
if [ "${1:-}" = "--url" ]; then echo "$URL"; exit 0; fi
DATA=${CAIRN_PG_DATA:-/tmp/cairn-pg-${PORT}}

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
BIN=$(find_bin)
if [ "${1:-}" != "--running" ] && [ "${1:-}" != "--stop" ] && { [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; }; then
  echo "pg.sh: installing PostgreSQL from Debian packages" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  BIN=$(find_bin)
fi

# PostgreSQL refuses to run as root: run it as the postgres user then.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

if [ "${1:-}" = "--running" ]; then
  [ -n "$BIN" ] && "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; exit $?
fi
if [ "${1:-}" = "--stop" ]; then
  if [ -n "$BIN" ] && [ -f "$DATA/postmaster.pid" ]; then
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null && echo "pg.sh: stopped the PostgreSQL in $DATA" >&2
  else
    echo "pg.sh: no PostgreSQL of ours runs in $DATA" >&2
  fi
  exit 0
fi
if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then exit 0; fi
if [ ! -f "$DATA/PG_VERSION" ]; then
  rm -rf "$DATA"; mkdir -p "$DATA"
  [ "$(id -u)" -eq 0 ] && chown postgres "$DATA"
  as_pg "$BIN/initdb" -D "$DATA" -U postgres -A trust --no-sync >/dev/null
fi
as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start \
  -o "-p $PORT -c listen_addresses=127.0.0.1 -k $DATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null
echo "pg.sh: PostgreSQL ready at $URL" >&2
