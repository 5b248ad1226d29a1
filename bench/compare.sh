#!/usr/bin/env bash
# Side by side: pgkeep and pgBackRest (Debian's 2.45) on the same pgbench cluster, same
# repository disk, same compression type and level, same process-max. Measures wall time,
# CPU time (user+sys) and peak RSS with GNU time; each figure is the median of RUNS runs.
# Usage: bench/compare.sh [scale=10] [runs=3]   (root; installs pgbackrest if missing)
# Speed is measured here, never asserted in tests. Results: paste into bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-10}
RUNS=${2:-3}
PGBIN=/usr/lib/postgresql/15/bin
command -v pgbackrest >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbackrest >/dev/null; }
[ -x /usr/bin/time ] || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet

TMP=$(mktemp -d /tmp/pgkeep-compare.XXXXXX)
PORT=$((50000 + RANDOM % 9000))
PGDATA=$TMP/pg
cleanup() {
  [ -f "$PGDATA/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT
mkdir -p "$TMP/bin" "$TMP/keep-repo" "$TMP/brest-repo" "$TMP/socket" "$TMP/log" "$TMP/lock"
install -m 0755 target/release/pgkeep "$TMP/bin/pgkeep"
for tool in keep brest; do
cat > "$TMP/$tool.conf" <<CONF
[global]
repo1-path=$TMP/$tool-repo
lock-path=$TMP/lock/$tool
log-path=$TMP/log
log-level-file=off
log-level-console=warn
start-fast=y
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
# Both tools archive every segment, so each backup can complete.
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
as_pg "$PGBIN/pgbench" -i -q -s "$SCALE" -h "$TMP/socket" -p "$PORT" postgres >/dev/null 2>&1
as_pg "$TMP/bin/pgkeep" --config="$TMP/keep.conf" --stanza=bench stanza-create
as_pg pgbackrest --config="$TMP/brest.conf" --stanza=bench stanza-create >/dev/null
echo "# pgkeep vs pgBackRest $(pgbackrest version | cut -d' ' -f2), pgbench scale $SCALE ($(du -sm --exclude=pg_wal "$PGDATA" | cut -f1) MiB of data), $(nproc) cores, median of $RUNS runs, $(date -u +%F)"
echo "| operation | pgkeep wall s | pgBackRest wall s | ratio | pgkeep cpu s | pgBackRest cpu s | pgkeep RSS MiB | pgBackRest RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"

KEEP=(runuser -u postgres -- "$TMP/bin/pgkeep" --config="$TMP/keep.conf" --stanza=bench)
BREST=(runuser -u postgres -- pgbackrest --config="$TMP/brest.conf" --stanza=bench)
fresh_restore_dir() { rm -rf "$TMP/restore"; mkdir -p "$TMP/restore"; chown postgres "$TMP/restore"; chmod 700 "$TMP/restore"; }
nothing() { :; }

# measure <prepare function> <command...>: runs it RUNS times, prints "wall cpu rss_mib" medians.
measure() {
  local prepare=$1; shift
  local walls=() cpus=() rss=()
  for _ in $(seq "$RUNS"); do
    "$prepare"
    local out e u s m
    /usr/bin/time -o "$TMP/time.out" -f '%e %U %S %M' "$@" >/dev/null 2>&1 || echo "FAILED: $*" >&2
    out=$(tail -1 "$TMP/time.out")
    read -r e u s m <<<"$out"
    walls+=("$e"); cpus+=("$(echo "$u + $s" | bc)"); rss+=("$((m / 1024))")
  done
  local mid=$(( (RUNS + 1) / 2 ))
  echo "$(printf '%s\n' "${walls[@]}" | sort -n | sed -n "${mid}p") $(printf '%s\n' "${cpus[@]}" | sort -n | sed -n "${mid}p") $(printf '%s\n' "${rss[@]}" | sort -n | sed -n "${mid}p")"
}
# row <name> <prepare> <args...>: the same arguments for both tools.
row() {
  local name=$1 prepare=$2; shift 2
  local keep brest kw kc kr bw bc br
  keep=$(measure "$prepare" "${KEEP[@]}" "$@"); brest=$(measure "$prepare" "${BREST[@]}" "$@")
  read -r kw kc kr <<<"$keep"; read -r bw bc br <<<"$brest"
  echo "| $name | $kw | $bw | $(echo "scale=2; $kw / $bw" | bc) | $kc | $bc | $kr | $br |"
}
for compress in lz4 zst; do
  for pm in 1 2; do
    row "full backup $compress process-max=$pm" nothing --type=full --compress-type=$compress --process-max=$pm backup
  done
done
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
for pm in 1 2; do
  row "restore (zst) process-max=$pm" fresh_restore_dir --pg1-path="$TMP/restore" --process-max=$pm restore
done
# Delta restore over an unchanged data directory restored by the same tool.
fresh_restore_dir
"${KEEP[@]}" --pg1-path="$TMP/restore" restore >/dev/null 2>&1
for pm in 1 2; do
  keep=$(measure nothing "${KEEP[@]}" --pg1-path="$TMP/restore" --process-max=$pm --delta restore)
  fresh_restore_dir; "${BREST[@]}" --pg1-path="$TMP/restore" restore >/dev/null 2>&1
  brest=$(measure nothing "${BREST[@]}" --pg1-path="$TMP/restore" --process-max=$pm --delta restore)
  read -r kw kc kr <<<"$keep"; read -r bw bc br <<<"$brest"
  echo "| delta restore, unchanged (zst) process-max=$pm | $kw | $bw | $(echo "scale=2; $kw / $bw" | bc) | $kc | $bc | $kr | $br |"
done
