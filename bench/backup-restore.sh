#!/usr/bin/env bash
# Times pgkeep backup and restore of a pgbench cluster on this machine (PostgreSQL 15).
# Usage: bench/backup-restore.sh [scale=10] [runs=3]
# Prints the median wall time of each step. Nothing here is asserted: speed is measured, not
# tested. Run as root (PostgreSQL and pgkeep run as postgres through runuser).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-10}
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
repo1-retention-full=9999999
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
SIZE=$(du -sm "$PGDATA" | cut -f1)
echo "pgbench scale $SCALE: data directory ${SIZE} MiB; $(nproc) cores; median of $RUNS runs"

# Median wall seconds of running "$@" RUNS times.
median() {
  local times=()
  for _ in $(seq "$RUNS"); do
    local start end
    start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"
}

# Repository bytes of the newest backup, from info.
repo_size() {
  pgkeep info --output=json | python3 -c 'import json,sys; b=json.load(sys.stdin)[0]["backup"][-1]; print(round(b["info"]["repository"]["size"]/1048576, 1))'
}
for compress in none gz lz4 zst; do
  for pm in 1 2; do
    t=$(median pgkeep --type=full --compress-type="$compress" --process-max="$pm" backup)
    echo "full backup  compress=$compress process-max=$pm: ${t}s, repository $(repo_size) MiB"
  done
done
t=$(median pgkeep --type=incr backup)
echo "incr backup (no changes): ${t}s"

as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
RESTORE=$TMP/restore
restore_once() {
  rm -rf "$RESTORE"
  pgkeep --pg1-path="$RESTORE" --process-max="$1" restore
}
for pm in 1 2; do
  t=$(median restore_once "$pm")
  echo "restore (latest: incr on full, zst) process-max=$pm: ${t}s"
done

# archive-push of one 16 MiB segment, the archive_command's unit of work.
SEG=$(ls "$PGDATA/pg_wal" | grep -E '^[0-9A-F]{24}$' | head -1)
push_once() {
  rm -rf "$TMP/repo/archive/bench/15-1/${SEG:0:16}"
  pgkeep archive-push "$PGDATA/pg_wal/$SEG"
}
t=$(median push_once)
echo "archive-push of one segment (zst): ${t}s"
