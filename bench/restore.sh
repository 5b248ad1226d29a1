#!/usr/bin/env bash
# Times pgkeep restore and delta restore of a pgbench cluster on this machine (PostgreSQL 15).
# Usage: bench/restore.sh [scale=50] [runs=3]
# One full backup (zst), then, at process-max 1 and 2: a restore into an empty directory, a
# delta restore over an identical directory (every file read and checksummed), and a delta
# restore with --force (size and time compared only). Prints the median wall time of each.
# Nothing is asserted: speed is measured, not tested. Run as root (PostgreSQL and pgkeep run
# as postgres through runuser).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-50}
RUNS=${2:-3}
PGBIN=/usr/lib/postgresql/15/bin
cargo build --release --quiet

TMP=$(mktemp -d /tmp/pgkeep-bench.XXXXXX)
PORT=$((50000 + RANDOM % 9000))
PGDATA=$TMP/pg
cleanup() {
  [ -f "$PGDATA/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT
mkdir -p "$TMP/bin" "$TMP/repo" "$TMP/socket" "$TMP/log"
install -m 0755 target/release/pgkeep "$TMP/bin/pgkeep"
CONF=$TMP/pgkeep.conf
cat > "$CONF" <<CONF
[global]
repo1-path=$TMP/repo
lock-path=$TMP/lock
log-path=$TMP/log
log-level-file=off
start-fast=y
[bench]
pg1-path=$PGDATA
pg1-port=$PORT
pg1-socket-path=$TMP/socket
CONF
chown -R postgres:postgres "$TMP"
as_pg() { runuser -u postgres -- "$@"; }
pgkeep() { as_pg "$TMP/bin/pgkeep" --config="$CONF" --stanza=bench "$@"; }

as_pg "$PGBIN/initdb" -D "$PGDATA" -k -A trust >/dev/null
cat >> "$PGDATA/postgresql.conf" <<PGCONF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$TMP/socket'
wal_level = replica
archive_mode = on
archive_command = '$TMP/bin/pgkeep --config=$CONF --stanza=bench archive-push %p'
PGCONF
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$TMP/log/pg.log" -w start >/dev/null
as_pg "$PGBIN/pgbench" -i -q -s "$SCALE" -h "$TMP/socket" -p "$PORT" postgres >/dev/null 2>&1
pgkeep stanza-create
pgkeep --type=full --process-max=2 backup
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
SIZE=$(du -sm "$PGDATA" | cut -f1)
echo "pgbench scale $SCALE: data directory ${SIZE} MiB; $(nproc) cores; median of $RUNS runs"

# Median wall seconds of running "$@" RUNS times, each after an untimed "$PREPARE".
PREPARE=:
median() {
  local times=()
  for _ in $(seq "$RUNS"); do
    "$PREPARE"
    local start end
    start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"
}

RESTORE=$TMP/restore
# The previous restore's removal is flushed first, so it does not slow the next one's fsyncs.
remove_restore() {
  rm -rf "$RESTORE"
  sync
}
restore() {
  pgkeep --pg1-path="$RESTORE" --process-max="$1" "${@:2}" restore
}
PREPARE=remove_restore
for pm in 1 2; do
  t=$(median restore "$pm")
  echo "restore into an empty directory  process-max=$pm: ${t}s"
done
echo "restored: $(du -sm "$RESTORE" | cut -f1) MiB (pg_wal is not part of a backup)"
# Delta restores read the files just written: the page cache is warm.
PREPARE=:
for pm in 1 2; do
  t=$(median restore "$pm" --delta)
  echo "delta restore, nothing changed   process-max=$pm: ${t}s"
done
for pm in 1 2; do
  t=$(median restore "$pm" --delta --force)
  echo "delta --force, nothing changed   process-max=$pm: ${t}s"
done
