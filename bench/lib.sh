# Shared set-up for the benchmark scripts: sourced, not run.
#
# bench_setup <scale> [both|keep] creates a throwaway PostgreSQL 15 cluster (data checksums
# on) in $TMP with a pgbench database of the given scale, and config files for pgkeep
# ($TMP/keep.conf) and pgBackRest ($TMP/brest.conf) sharing one repository disk, stanza
# `bench`. With `both` (the default) both tools archive every segment, so backups of either can
# complete; with `keep` only pgkeep does. Everything runs as postgres; the cluster is stopped,
# bench_extra_cleanup called (when a script defines it) and $TMP removed on exit.
#
# measure <prepare function> <command...> runs the command RUNS times (calling prepare before
# each) under GNU time and prints the medians "wall_s cpu_s rss_mib".

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
RUNS=${RUNS:-3}

bench_tools() {
  command -v pgbackrest >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbackrest >/dev/null; }
  [ -x /usr/bin/time ] || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
  command -v bc >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bc >/dev/null; }
  [ -x "$PGBIN/postgres" ] || scripts/install-pg.sh 15 >/dev/null
  cargo build --release --quiet
}

as_pg() { runuser -u postgres -- "$@"; }

bench_cleanup() {
  for data in "$TMP"/pg "$TMP"/restore; do
    [ -f "$data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1
  done
  if declare -F bench_extra_cleanup >/dev/null; then bench_extra_cleanup; fi
  rm -rf "$TMP"
}

# write_conf <tool> [extra global lines]
write_conf() {
  local tool=$1 extra=${2:-}
  cat > "$TMP/$tool.conf" <<CONF
[global]
repo1-path=$TMP/$tool-repo
lock-path=$TMP/lock/$tool
log-path=$TMP/log
log-level-file=off
log-level-console=warn
start-fast=y
repo1-retention-full=2
$extra
[bench]
pg1-path=$PGDATA
pg1-port=$PORT
pg1-socket-path=$TMP/socket
CONF
  chown postgres:postgres "$TMP/$tool.conf"
}

bench_setup() {
  local scale=$1
  TMP=$(mktemp -d /var/tmp/pgkeep-bench.XXXXXX)
  PORT=$((50000 + RANDOM % 9000))
  PGDATA=$TMP/pg
  trap bench_cleanup EXIT
  mkdir -p "$TMP/bin" "$TMP/keep-repo" "$TMP/brest-repo" "$TMP/socket" "$TMP/log" "$TMP/lock"
  install -m 0755 target/release/pgkeep "$TMP/bin/pgkeep"
  write_conf keep
  write_conf brest
  chown -R postgres:postgres "$TMP"
  local archive="$TMP/bin/pgkeep --config=$TMP/keep.conf --stanza=bench archive-push %p"
  if [ "${2:-both}" = both ]; then
    archive="$archive && pgbackrest --config=$TMP/brest.conf --stanza=bench archive-push %p"
  fi
  as_pg "$PGBIN/initdb" -D "$PGDATA" -k -A trust -U postgres >/dev/null
  cat >> "$PGDATA/postgresql.conf" <<PGCONF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$TMP/socket'
wal_level = replica
archive_mode = on
archive_command = '$archive'
max_wal_size = 4GB
max_wal_senders = 4
shared_buffers = 256MB
PGCONF
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$TMP/log/pg.log" -w start >/dev/null
  as_pg "$PGBIN/pgbench" -i -q -s "$scale" -h "$TMP/socket" -p "$PORT" postgres >/dev/null 2>&1
  as_pg psql -q -h "$TMP/socket" -p "$PORT" -c checkpoint postgres
  KEEP=(runuser -u postgres -- "$TMP/bin/pgkeep" --config="$TMP/keep.conf" --stanza=bench)
  BREST=(runuser -u postgres -- pgbackrest --config="$TMP/brest.conf" --stanza=bench)
}

data_mib() { du -sm --exclude=pg_wal "$PGDATA" | cut -f1; }

nothing() { :; }

median() { sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"; }

measure() {
  local prepare=$1; shift
  local walls=() cpus=() rss=()
  for _ in $(seq "$RUNS"); do
    "$prepare"
    local e u s m
    /usr/bin/time -o "$TMP/time.out" -f '%e %U %S %M' "$@" >"$TMP/cmd.out" 2>&1 || { echo "FAILED: $*" >&2; tail -5 "$TMP/cmd.out" >&2; }
    read -r e u s m < <(tail -1 "$TMP/time.out")
    walls+=("$e"); cpus+=("$(echo "$u + $s" | bc)"); rss+=("$((m / 1024))")
  done
  echo "$(printf '%s\n' "${walls[@]}" | median) $(printf '%s\n' "${cpus[@]}" | median) $(printf '%s\n' "${rss[@]}" | median)"
}

ratio() { echo "scale=2; $1 / $2" | bc | sed 's/^\./0./'; }
