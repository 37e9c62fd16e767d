#!/usr/bin/env bash
# A throwaway Redis on 127.0.0.1 for the online-store tests. Installs it from Debian's packages when
# it is missing and starts it (no persistence); a no-op when it already runs.
# With --url, only prints the URL the tests use; --running tells whether it runs; --stop stops it.
set -euo pipefail
PORT=${CAIRN_REDIS_PORT:-63799}
URL="redis://127.0.0.1:${PORT}/0"
if [ "${1:-}" = "--url" ]; then echo "$URL"; exit 0; fi
if [ "${1:-}" = "--running" ]; then redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1; exit $?; fi
if [ "${1:-}" = "--stop" ]; then redis-cli -h 127.0.0.1 -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; exit 0; fi
DATA=${CAIRN_REDIS_DATA:-/tmp/cairn-redis-${PORT}}

if ! command -v redis-server >/dev/null; then
  echo "redis.sh: installing Redis from Debian packages" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

if redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1; then exit 0; fi
mkdir -p "$DATA"
redis-server --port "$PORT" --bind 127.0.0.1 --protected-mode yes --save "" --appendonly no \
  --dir "$DATA" --daemonize yes --logfile "$DATA/redis.log" --pidfile "$DATA/redis.pid"
for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "redis.sh: Redis ready at $URL" >&2
