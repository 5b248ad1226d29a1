#!/usr/bin/env bash
# archive-push and archive-get, one segment per call as PostgreSQL makes them: pgkeep vs
# pgBackRest (Debian's 2.45) on the same 100 real 16 MiB segments (a pgbench run), same
# repository disk, same compression type and level. Prints segments per second and ratios.
#   sync push: gz (level 6), lz4 (1), zst (3)
#   async push (archive-async, process-max=2): zst, with PostgreSQL's loop simulated
#     (call archive-push for each segment in order, then rename its .ready to .done)
#   get: sync and async (archive-get-queue-max 128MiB, process-max=2), zst
# Usage: bench/archive.sh [segments=100]   (root; installs pgbackrest if missing)
# SYNC_ONLY=1 stops after the sync pushes.
# KEEP_BIN=<path> measures another pgkeep binary (e.g. an older build) instead of this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-100}
PGBIN=/usr/lib/postgresql/15/bin
command -v pgbackrest >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbackrest >/dev/null; }
if [ -z "${KEEP_BIN:-}" ]; then cargo build --release --quiet; KEEP_BIN=target/release/pgkeep; fi

TMP=$(mktemp -d /tmp/pgkeep-archive.XXXXXX)
PORT=$((50000 + RANDOM % 9000))
PGDATA=$TMP/pg
cleanup() {
  [ -f "$PGDATA/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT
mkdir -p "$TMP/bin" "$TMP/socket" "$TMP/log" "$TMP/segments" "$TMP/spool"
install -m 0755 "$KEEP_BIN" "$TMP/bin/pgkeep"
chown -R postgres:postgres "$TMP"
as_pg() { runuser -u postgres -- "$@"; }

as_pg "$PGBIN/initdb" -D "$PGDATA" -k -A trust >/dev/null
cat >> "$PGDATA/postgresql.conf" <<PGCONF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$TMP/socket'
wal_level = replica
archive_mode = on
archive_command = 'cp %p $TMP/segments/%f'
max_wal_size = 4GB
PGCONF
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$TMP/log/pg.log" -w start >/dev/null
PSQL=(as_pg "$PGBIN/psql" -X -q -h "$TMP/socket" -p "$PORT" -d postgres)
as_pg "$PGBIN/pgbench" -i -q -s 5 -h "$TMP/socket" -p "$PORT" postgres >/dev/null 2>&1
while [ "$(ls "$TMP/segments" | grep -c '^[0-9A-F]\{24\}$')" -lt "$COUNT" ]; do
  as_pg "$PGBIN/pgbench" -n -T 5 -h "$TMP/socket" -p "$PORT" postgres >/dev/null 2>&1
  "${PSQL[@]}" -c 'select pg_switch_wal()' >/dev/null
  sleep 1
done
# The first COUNT segments, as a pg_wal directory with PostgreSQL's archive_status.
SEGS=$(ls "$TMP/segments" | grep '^[0-9A-F]\{24\}$' | sort | head -n "$COUNT")
reset_wal() {
  rm -rf "$TMP/wal"; mkdir -p "$TMP/wal/archive_status"
  for s in $SEGS; do ln "$TMP/segments/$s" "$TMP/wal/$s"; touch "$TMP/wal/archive_status/$s.ready"; done
  rm -rf "$TMP/spool"; mkdir -p "$TMP/spool"; chown -R postgres:postgres "$TMP/wal" "$TMP/spool"
}

# conf <tool> <compress-type> <level>
conf() {
  cat > "$TMP/$1.conf" <<CONF
[global]
repo1-path=$TMP/$1-repo
lock-path=$TMP/lock-$1
log-path=$TMP/log
log-level-file=off
log-level-console=warn
spool-path=$TMP/spool
compress-type=$2
compress-level=$3
[bench]
pg1-path=$PGDATA
pg1-port=$PORT
pg1-socket-path=$TMP/socket
CONF
  chown postgres "$TMP/$1.conf"
  rm -rf "$TMP/$1-repo"; mkdir -p "$TMP/$1-repo"; chown postgres "$TMP/$1-repo"
}
keep() { as_pg "$TMP/bin/pgkeep" --config="$TMP/keep.conf" --stanza=bench "$@"; }
brest() { as_pg pgbackrest --config="$TMP/brest.conf" --stanza=bench "$@"; }
now() { date +%s.%N; }
rate() { echo "scale=1; $COUNT / ($2 - $1)" | bc; }

# push_loop <tool> [options...]: PostgreSQL's archiver, one call per segment, in order.
push_loop() {
  local tool=$1; shift
  for s in $SEGS; do
    "$tool" "$@" archive-push "$TMP/wal/$s" >/dev/null
    mv "$TMP/wal/archive_status/$s.ready" "$TMP/wal/archive_status/$s.done"
  done
}
# get_loop <tool> [options...]: recovery, one call per segment, in order, from the data dir.
get_loop() {
  local tool=$1; shift
  mkdir -p "$TMP/restore"; chown postgres "$TMP/restore"
  for s in $SEGS; do
    (cd "$PGDATA" && "$tool" "$@" archive-get "$s" "$TMP/restore/RECOVERYXLOG" >/dev/null)
  done
}
# measure <tool> <loop> [options...]: prints segments per second.
measure() {
  local tool=$1 loop=$2; shift 2
  reset_wal
  local start end
  start=$(now); "$loop" "$tool" "$@"; end=$(now)
  rate "$start" "$end"
}

echo "# archive-push/get: pgkeep vs pgBackRest $(pgbackrest version | cut -d' ' -f2), $COUNT segments of 16 MiB from pgbench, $(nproc) cores, $(date -u +%F)"
echo "| operation | pgkeep seg/s | pgBackRest seg/s | ratio |"
echo "|---|---:|---:|---:|"
row() { echo "| $1 | $2 | $3 | $(echo "scale=2; $2 / $3" | bc) |"; }
for spec in gz:6 lz4:1 zst:3; do
  type=${spec%:*}; level=${spec#*:}
  conf keep "$type" "$level"; conf brest "$type" "$level"
  keep stanza-create >/dev/null; brest stanza-create >/dev/null
  k=$(measure keep push_loop); b=$(measure brest push_loop)
  row "archive-push $type level $level" "$k" "$b"
done
[ -n "${SYNC_ONLY:-}" ] && exit 0
conf keep zst 3; conf brest zst 3
keep stanza-create >/dev/null; brest stanza-create >/dev/null
k=$(measure keep push_loop --archive-async --process-max=2)
b=$(measure brest push_loop --archive-async --process-max=2)
row "archive-push zst async process-max=2" "$k" "$b"
k=$(measure keep get_loop); b=$(measure brest get_loop)
row "archive-get zst" "$k" "$b"
k=$(measure keep get_loop --archive-async --process-max=2)
b=$(measure brest get_loop --archive-async --process-max=2)
row "archive-get zst async process-max=2" "$k" "$b"
