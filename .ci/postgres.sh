#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the tests and print its SQLAlchemy URL on stdout.
#
#   export GOVERNANCE_TEST_POSTGRES_URL="$(.ci/postgres.sh)"
#
# Everything but the URL goes to stderr. Idempotent: a second call reuses the running server. Installs
# Debian's `postgresql` when it is missing (needs root, as in CI). The server is our own cluster in
# $GOVERNANCE_PG_DATA (default /tmp/governance-ci-postgres), owned by the `postgres` user (PostgreSQL
# refuses to run as root), listening on 127.0.0.1:$GOVERNANCE_PG_PORT (default 55432) only, so it never
# meets a system cluster. The URL is also written to $GOVERNANCE_PG_DATA/url. Stop it with
# `.ci/postgres.sh stop`.
set -euo pipefail

PORT="${GOVERNANCE_PG_PORT:-55432}"
DATA="${GOVERNANCE_PG_DATA:-/tmp/governance-ci-postgres}"
DB=governance_test
ROLE=governance
PASSWORD=governance
URL="postgresql+psycopg2://${ROLE}:${PASSWORD}@127.0.0.1:${PORT}/${DB}"

log() { echo "postgres.sh: $*" >&2; }

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

BIN="$(find_bin)"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "PostgreSQL is not installed and this is not root: apt-get install postgresql first"; exit 1
  fi
  log "installing Debian's postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql >&2
  BIN="$(find_bin)"
fi

# Run a command as the server's owner: `postgres` when we are root, ourselves otherwise.
if [ "$(id -u)" -eq 0 ]; then
  OWNER=postgres
  as_owner() { runuser -u postgres -- "$@"; }
else
  OWNER="$(id -un)"
  as_owner() { "$@"; }
fi

if [ "${1:-}" = "stop" ]; then
  as_owner "$BIN/pg_ctl" -D "$DATA" -m fast stop >&2 || true
  exit 0
fi

if [ ! -s "$DATA/PG_VERSION" ]; then
  log "initialising a cluster in $DATA"
  mkdir -p "$DATA"
  chown "$OWNER" "$DATA"
  chmod 700 "$DATA"
  pwfile="$(mktemp)"
  echo "$PASSWORD" > "$pwfile"
  chown "$OWNER" "$pwfile"
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 >&2 || \
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$pwfile" --encoding=UTF8 --locale=C >&2
  rm -f "$pwfile"
fi

if ! as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  log "starting PostgreSQL on 127.0.0.1:$PORT"
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >&2
fi

psql_admin() { as_owner "$BIN/psql" -h "$DATA" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != "1" ]; then
  psql_admin -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" >&2
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
  psql_admin -c "CREATE DATABASE $DB OWNER $ROLE" >&2
fi

echo "$URL" > "$DATA/url" 2>/dev/null || true
log "ready: $URL"
echo "$URL"
