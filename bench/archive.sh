#!/usr/bin/env bash
# archive-push and archive-get, one segment per call as PostgreSQL makes them: pgkeep vs
# pgBackRest (Debian's 2.45) on the same 100 real 16 MiB segments (a pgbench run), same
# repository disk, same compression type and level. Prints segments per second and ratios.
#   sync push: gz (level 6), lz4 (1), zst (3); the two tools' calls alternate segment by
#     segment, so a busy machine slows both alike
#   async push (archive-async, process-max=2): zst, with PostgreSQL's loop simulated
#     (call archive-push for each segment in order, then rename its .ready to .done)
#   get: sync (alternating) and async (archive-get-queue-max 128MiB, process-max=2), zst
# The pushes read from a copy of the data directory (its pg_control and pg_wal): pgBackRest's
# async mode wants pg_wal inside pg1-path.
# Usage: bench/archive.sh [segments=100]   (root; installs pgbackrest if missing)
# SYNC_ONLY=1 stops after the sync pushes. KEEP_BIN=<path> measures another pgkeep binary.
# ARCHIVE_BENCH_CACHE=<dir> keeps the generated cluster and segments there for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-100}
PGBIN=/usr/lib/postgresql/15/bin
CACHE=${ARCHIVE_BENCH_CACHE:-}
command -v pgbackrest >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbackrest >/dev/null; }
if [ -z "${KEEP_BIN:-}" ]; then cargo build --release --quiet; KEEP_BIN=target/release/pgkeep; fi

TMP=$(mktemp -d /tmp/pgkeep-archive.XXXXXX)
PORT=$((50000 + RANDOM % 9000))
PGDATA=$TMP/pg
FAKE=$TMP/fake
cleanup() {
  [ -f "$PGDATA/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1
  if [ -n "$CACHE" ] && [ ! -d "$CACHE/segments" ] && [ -d "$TMP/segments" ]; then
    mkdir -p "$CACHE"; mv "$PGDATA" "$TMP/segments" "$CACHE/"
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
mkdir -p "$TMP/bin" "$TMP/socket" "$TMP/log" "$TMP/spool"
install -m 0755 "$KEEP_BIN" "$TMP/bin/pgkeep"
as_pg() { runuser -u postgres -- "$@"; }
PSQL=(as_pg "$PGBIN/psql" -X -q -h "$TMP/socket" -p "$PORT" -d postgres)

if [ -n "$CACHE" ] && [ -d "$CACHE/segments" ]; then
  cp -a "$CACHE/pg" "$PGDATA"; cp -a "$CACHE/segments" "$TMP/segments"
  sed -i "s/^port = .*/port = $PORT/; s#^unix_socket_directories = .*#unix_socket_directories = '$TMP/socket'#; s#^archive_command = .*#archive_command = '/bin/true'#" "$PGDATA/postgresql.conf"
  chown -R postgres:postgres "$TMP"
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$TMP/log/pg.log" -w start >/dev/null
else
  mkdir -p "$TMP/segments"; chown -R postgres:postgres "$TMP"
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
  as_pg "$PGBIN/pgbench" -i -q -s 5 -h "$TMP/socket" -p "$PORT" postgres >/dev/null 2>&1
  while [ "$(ls "$TMP/segments" | grep -c '^[0-9A-F]\{24\}$')" -lt "$COUNT" ]; do
    as_pg "$PGBIN/pgbench" -n -c 4 -j 2 -T 5 -h "$TMP/socket" -p "$PORT" postgres >/dev/null 2>&1
    "${PSQL[@]}" -c 'select pg_switch_wal()' >/dev/null
    sleep 1
  done
fi
# The first COUNT segments, in a copy of the data directory's pg_control and pg_wal.
SEGS=$(ls "$TMP/segments" | grep '^[0-9A-F]\{24\}$' | sort | head -n "$COUNT")
mkdir -p "$FAKE/global"; cp "$PGDATA/global/pg_control" "$FAKE/global/"; chown -R postgres:postgres "$FAKE"
reset_wal() {
  rm -rf "$FAKE/pg_wal"; mkdir -p "$FAKE/pg_wal/archive_status"
  for s in $SEGS; do ln "$TMP/segments/$s" "$FAKE/pg_wal/$s"; touch "$FAKE/pg_wal/archive_status/$s.ready"; done
  rm -rf "$TMP/spool"; mkdir -p "$TMP/spool"; chown -R postgres:postgres "$FAKE" "$TMP/spool"
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
pg1-path=$FAKE
pg1-port=$PORT
pg1-socket-path=$TMP/socket
CONF
  chown postgres "$TMP/$1.conf"
  rm -rf "$TMP/$1-repo"; mkdir -p "$TMP/$1-repo"; chown postgres "$TMP/$1-repo"
}
# The tools run as postgres without a runuser per call: PostgreSQL runs archive_command as
# itself, and runuser's own 5-7 ms per call would be counted for both tools alike.
keep() { "$TMP/bin/pgkeep" --config="$TMP/keep.conf" --stanza=bench "$@"; }
brest() { pgbackrest --config="$TMP/brest.conf" --stanza=bench "$@"; }
create() { as_pg "$TMP/bin/pgkeep" --config="$TMP/keep.conf" --stanza=bench --pg1-path="$PGDATA" stanza-create >/dev/null; as_pg pgbackrest --config="$TMP/brest.conf" --stanza=bench --pg1-path="$PGDATA" stanza-create >/dev/null; }
# Microseconds from bash itself: a $(date) per call forks and execs a process (about 1 ms),
# which the interval of every timed call would include.
now() { echo "${EPOCHREALTIME/./}"; }
row() { echo "| $1 | $2 | $3 | $(echo "scale=2; $2 / $3" | bc) |"; }
# A run counts only when every call succeeded: a failing call is fast.
FAILS=$TMP/fails
fail() { echo "$1" >> "$FAILS"; }
check_fails() { if [ -s "$FAILS" ]; then echo "FAILED calls: $(sort "$FAILS" | uniq -c | tr '\n' ' ')"; fi; rm -f "$FAILS"; }
archived() { find "$TMP/$1-repo/archive" -name '0000000100000000*-*' -type f | wc -l; }
rate() { echo "scale=1; $COUNT * 1000000 / $1" | bc; }

# Sync, alternating: time each tool's call for each segment. PostgreSQL renames .ready to .done.
# sync_pair <push|get> [options...]
sync_body() {
  local what=$1; shift
  local tk=0 tb=0 s t
  for s in $SEGS; do
    if [ "$what" = push ]; then
      t=${EPOCHREALTIME/./}; keep "$@" archive-push "$FAKE/pg_wal/$s" >/dev/null || fail keep; tk=$((tk + ${EPOCHREALTIME/./} - t))
      t=${EPOCHREALTIME/./}; brest "$@" archive-push "$FAKE/pg_wal/$s" >/dev/null || fail brest; tb=$((tb + ${EPOCHREALTIME/./} - t))
      mv "$FAKE/pg_wal/archive_status/$s.ready" "$FAKE/pg_wal/archive_status/$s.done"
    else
      t=${EPOCHREALTIME/./}; (cd "$FAKE" && keep "$@" archive-get "$s" pg_wal/RECOVERYXLOG >/dev/null) || fail keep; tk=$((tk + ${EPOCHREALTIME/./} - t))
      t=${EPOCHREALTIME/./}; (cd "$FAKE" && brest "$@" archive-get "$s" pg_wal/RECOVERYXLOG >/dev/null) || fail brest; tb=$((tb + ${EPOCHREALTIME/./} - t))
    fi
  done
  echo "$(rate $tk) $(rate $tb)"
}
# One tool, one loop (async modes cannot alternate: each has its own background process).
# loop <tool> <push|get> [options...]
loop_body() {
  local tool=$1 what=$2; shift 2
  local t s
  t=$(now)
  for s in $SEGS; do
    if [ "$what" = push ]; then
      "$tool" "$@" archive-push "$FAKE/pg_wal/$s" >/dev/null || fail "$tool"
      mv "$FAKE/pg_wal/archive_status/$s.ready" "$FAKE/pg_wal/archive_status/$s.done"
    else
      (cd "$FAKE" && "$tool" "$@" archive-get "$s" pg_wal/RECOVERYXLOG >/dev/null) || fail "$tool"
    fi
  done
  rate $(($(now) - t))
}

# Runs a function of this script as postgres, one process for the whole loop.
as_pg_fn() {
  as_pg env TMP="$TMP" FAKE="$FAKE" SEGS="$SEGS" COUNT="$COUNT" FAILS="$FAILS" \
    bash -c "$(declare -f keep brest now rate fail sync_body loop_body); $*"
}
sync_pair() { reset_wal; as_pg_fn sync_body "$@"; }
loop() { reset_wal; as_pg_fn loop_body "$@"; }

echo "# archive-push/get: pgkeep vs pgBackRest $(pgbackrest version | cut -d' ' -f2), $COUNT segments of 16 MiB from pgbench, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), $(date -u +%F)"
echo "| operation | pgkeep seg/s | pgBackRest seg/s | ratio |"
echo "|---|---:|---:|---:|"
for spec in gz:6 lz4:1 zst:3; do
  type=${spec%:*}; level=${spec#*:}
  conf keep "$type" "$level"; conf brest "$type" "$level"; create
  read -r k b <<<"$(sync_pair push)"
  row "archive-push $type level $level" "$k" "$b"
  check_fails; echo "archived: pgkeep $(archived keep), pgBackRest $(archived brest)" >&2
done
[ -n "${SYNC_ONLY:-}" ] && exit 0
read -r k b <<<"$(sync_pair get)"
row "archive-get zst" "$k" "$b"; check_fails
k=$(loop keep get --archive-async --process-max=2); b=$(loop brest get --archive-async --process-max=2)
row "archive-get zst async process-max=2" "$k" "$b"; check_fails
conf keep zst 3; conf brest zst 3; create
k=$(loop keep push --archive-async --process-max=2); b=$(loop brest push --archive-async --process-max=2)
row "archive-push zst async process-max=2" "$k" "$b"; check_fails
echo "archived: pgkeep $(archived keep), pgBackRest $(archived brest)" >&2
