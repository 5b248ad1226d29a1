#!/usr/bin/env bash
# Quick-start demo: builds pgkeep and walks SCENARIO §1 against a throwaway PostgreSQL 15
# cluster in a temp dir: stanza-create, archiving, full + diff backup, info, break the cluster
# by deleting global/pg_control, restore, start, show the data is back. Cleans up after itself.
# Run as root on Debian 12 (it installs postgresql-15 if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

PGBIN=/usr/lib/postgresql/15/bin
if [ ! -x "$PGBIN/initdb" ]; then
  echo "== installing postgresql-15"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
fi
echo "== building pgkeep (release)"
cargo build --release --quiet

TMP=$(mktemp -d /tmp/pgkeep-demo.XXXXXX)
PORT=$((50000 + RANDOM % 9000))
PGDATA=$TMP/pg
cleanup() {
  if [ -f "$PGDATA/postmaster.pid" ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

mkdir -p "$TMP/bin" "$TMP/repo" "$TMP/socket" "$TMP/log"
install -m 0755 target/release/pgkeep "$TMP/bin/pgkeep"
chown -R postgres:postgres "$TMP"
chmod 0750 "$TMP/repo"
CONF=$TMP/pgkeep.conf
cat > "$CONF" <<CONF
[global]
repo1-path=$TMP/repo
lock-path=$TMP/lock
log-path=$TMP/log
start-fast=y

[demo]
pg1-path=$PGDATA
pg1-port=$PORT
pg1-socket-path=$TMP/socket
CONF
chown postgres:postgres "$CONF"

as_pg() { runuser -u postgres -- "$@"; }
pgkeep() { as_pg "$TMP/bin/pgkeep" --config="$CONF" "$@"; }
psql_demo() { as_pg psql -X -A -t -q -h "$TMP/socket" -p "$PORT" -d postgres -c "$1"; }
step() { printf '\n== %s\n' "$*"; }

step "pgkeep version"
pgkeep version

step "create the demo cluster (port $PORT)"
as_pg "$PGBIN/initdb" -D "$PGDATA" -k -A trust >/dev/null
cat >> "$PGDATA/postgresql.conf" <<PGCONF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$TMP/socket'
log_line_prefix = ''
logging_collector = on
log_filename = 'postgresql.log'
wal_level = replica
max_wal_senders = 3
archive_mode = on
archive_command = '$TMP/bin/pgkeep --config=$CONF --stanza=demo archive-push %p'
PGCONF
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$TMP/log/startup.log" -w start >/dev/null

step "pgkeep --stanza=demo stanza-create"
pgkeep --stanza=demo --log-level-console=info stanza-create

psql_demo "create table demo_data as select g as id, md5(g::text) as payload from generate_series(1, 10000) g"
step "pgkeep --stanza=demo backup (incremental by default: becomes full)"
pgkeep --stanza=demo --log-level-console=info backup

psql_demo "insert into demo_data select g, md5(g::text) from generate_series(10001, 12000) g"
step "pgkeep --stanza=demo --type=diff backup"
pgkeep --stanza=demo --log-level-console=info --type=diff backup
BEFORE=$(psql_demo "select count(*) || ' rows, checksum ' || md5(string_agg(payload, ',' order by id)) from demo_data")
echo "data before: $BEFORE"

step "pgkeep info"
pgkeep info

step "break the cluster: stop it and delete global/pg_control"
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
rm "$PGDATA/global/pg_control"
if as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$TMP/log/broken.log" -w -t 10 start >/dev/null 2>&1; then
  echo "the cluster started without pg_control: unexpected" >&2; exit 1
fi
echo "the cluster no longer starts: $(grep -m1 -o 'could not open file.*pg_control.*' "$TMP/log/broken.log" "$PGDATA/log/postgresql.log" 2>/dev/null | head -1 || true)"

step "empty the data directory and restore"
find "$PGDATA" -mindepth 1 -delete
pgkeep --stanza=demo --log-level-console=info restore

step "start the restored cluster"
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$TMP/log/restored.log" -w -t 120 start >/dev/null
AFTER=$(psql_demo "select count(*) || ' rows, checksum ' || md5(string_agg(payload, ',' order by id)) from demo_data")
echo "data after:  $AFTER"
if [ "$BEFORE" != "$AFTER" ]; then
  echo "DEMO FAILED: data differs after restore" >&2; exit 1
fi
printf '\nDemo succeeded: the restored cluster has the same data.\n'
