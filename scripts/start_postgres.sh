#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the search tests and benchmarks, and print its storage URL.
# Debian's server (apt-get install postgresql), a fresh cluster in DIR, listening on 127.0.0.1:PORT and
# on a socket in DIR, trusting local connections: for a test machine only, never for a shared one.
# Usage: scripts/start_postgres.sh [DIR] [PORT]   (stop it with: pg_ctl -D DIR stop)
set -euo pipefail
DIR=${1:-/tmp/netcanvas-postgres}
PORT=${2:-55432}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$BIN" ] || { echo "no PostgreSQL server: apt-get install postgresql" >&2; exit 1; }
# The server refuses to run as root; Debian's package makes a postgres user for it.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir -p "$DIR"
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
if [ ! -f "$DIR/PG_VERSION" ]; then
  as_owner "$BIN/initdb" -D "$DIR" -A trust -U netcanvas >/dev/null
fi
if ! as_owner "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
  as_owner "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
fi
as_owner "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U netcanvas -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'netcanvas'" | grep -q 1 ||
  as_owner "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U netcanvas netcanvas
echo "postgresql://netcanvas@127.0.0.1:$PORT/netcanvas"
