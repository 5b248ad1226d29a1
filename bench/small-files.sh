#!/usr/bin/env bash
# Many small files: pgkeep with and without repo1-bundle, and pgBackRest (Debian's 2.45) with
# its defaults and with --repo1-bundle, on a cluster of N small tables (one row each, vacuumed,
# so each has its main, fsm and vm forks). Measures wall time of a full backup and of a restore
# into an empty directory (zst, process-max 2, one run each), and counts the repository files
# of each backup set. Usage: bench/small-files.sh [tables=20000]   (root; installs pgbackrest
# if missing). Speed is measured here, never asserted in tests. Results: bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
TABLES=${1:-20000}
PM=2
PGBIN=/usr/lib/postgresql/15/bin
command -v pgbackrest >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbackrest >/dev/null; }
[ -x /usr/bin/time ] || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet

TMP=$(mktemp -d /tmp/pgkeep-small.XXXXXX)
PORT=$((50000 + RANDOM % 9000))
PGDATA=$TMP/pg
cleanup() {
  [ -f "$PGDATA/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT
mkdir -p "$TMP/bin" "$TMP/keep-repo" "$TMP/brest-repo" "$TMP/socket" "$TMP/log" "$TMP/lock"
install -m 0755 "${CARGO_TARGET_DIR:-target}/release/pgkeep" "$TMP/bin/pgkeep"
for tool in keep brest; do
cat > "$TMP/$tool.conf" <<CONF
[global]
repo1-path=$TMP/$tool-repo
lock-path=$TMP/lock/$tool
log-path=$TMP/log
log-level-file=off
log-level-console=warn
start-fast=y
compress-type=zst
process-max=$PM
repo1-retention-full=9999999
[bench]
pg1-path=$PGDATA
pg1-port=$PORT
pg1-socket-path=$TMP/socket
CONF
done
chown -R postgres:postgres "$TMP"
as_pg() { runuser -u postgres -- "$@"; }

as_pg "$PGBIN/initdb" -D "$PGDATA" -k -A trust >/dev/null
cat >> "$PGDATA/postgresql.conf" <<PGCONF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$TMP/socket'
wal_level = replica
archive_mode = on
archive_command = '$TMP/bin/pgkeep --config=$TMP/keep.conf --stanza=bench archive-push %p && pgbackrest --config=$TMP/brest.conf --stanza=bench archive-push %p'
max_wal_size = 4GB
PGCONF
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$TMP/log/pg.log" -w start >/dev/null
PSQL=(runuser -u postgres -- "$PGBIN/psql" -X -q -h "$TMP/socket" -p "$PORT" -d postgres -v ON_ERROR_STOP=1)
# Committed every 500 tables, so the locks of one transaction stay within the lock table.
"${PSQL[@]}" -c "do \$\$ begin for i in 1..$TABLES loop
  execute format('create table t%s (id int, v text)', i);
  execute format('insert into t%s values (%s, md5(%s::text))', i, i, i);
  if i % 500 = 0 then commit; end if; end loop; end \$\$"
"${PSQL[@]}" -c "vacuum" -c "checkpoint"
as_pg "$TMP/bin/pgkeep" --config="$TMP/keep.conf" --stanza=bench stanza-create
as_pg pgbackrest --config="$TMP/brest.conf" --stanza=bench stanza-create >/dev/null
# Creating the tables wrote ~1 GiB of WAL: let both tools finish archiving it before measuring,
# or the first backups would compete with archive-push for the disk and CPU.
"${PSQL[@]}" -c "select pg_switch_wal()" >/dev/null
while ls "$PGDATA"/pg_wal/archive_status/*.ready >/dev/null 2>&1; do sleep 1; done

FILES=$(find "$PGDATA" -type f -not -path "*/pg_wal/*" | wc -l)
echo "# many small files: $TABLES tables, $FILES files in the data directory ($(du -sm --exclude=pg_wal "$PGDATA" | cut -f1) MiB), zst, process-max $PM, $(nproc) cores, one run each, $(date -u +%F)"
echo "| tool | full backup s | repository files in the set | restore s |"
echo "|---|---:|---:|---:|"

KEEP=(runuser -u postgres -- "$TMP/bin/pgkeep" --config="$TMP/keep.conf" --stanza=bench)
BREST=(runuser -u postgres -- pgbackrest --config="$TMP/brest.conf" --stanza=bench)
fresh_restore_dir() { rm -rf "$TMP/restore"; mkdir -p "$TMP/restore"; chown postgres "$TMP/restore"; chmod 700 "$TMP/restore"; }
# wall <command...>: wall-clock seconds of one run.
wall() {
  /usr/bin/time -o "$TMP/time.out" -f '%e' "$@" >/dev/null 2>"$TMP/err.out" || { echo "FAILED: $*" >&2; cat "$TMP/err.out" >&2; }
  tail -1 "$TMP/time.out"
}
# case <name> <repo> <tool array name> <backup options...>
case_row() {
  local name=$1 repo=$2 tool=$3; shift 3
  local -n cmd=$tool
  local backup_s restore_s label count
  backup_s=$(wall "${cmd[@]}" --type=full "$@" backup)
  label=$(readlink "$repo/backup/bench/latest")
  count=$(find "$repo/backup/bench/$label" -type f | wc -l)
  fresh_restore_dir
  restore_s=$(wall "${cmd[@]}" --pg1-path="$TMP/restore" --set="$label" restore)
  echo "| $name | $backup_s | $count | $restore_s |"
}
case_row "pgkeep repo1-bundle=y (default)" "$TMP/keep-repo" KEEP --repo1-bundle=y
case_row "pgkeep repo1-bundle=n" "$TMP/keep-repo" KEEP --repo1-bundle=n
case_row "pgBackRest 2.45 defaults" "$TMP/brest-repo" BREST
case_row "pgBackRest 2.45 --repo1-bundle" "$TMP/brest-repo" BREST --repo1-bundle
