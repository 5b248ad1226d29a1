#!/usr/bin/env bash
# Two pgkeep binaries side by side on one cluster of many small files: full backup, restore into
# an empty directory and expire, alternating old and new each round (zst, process-max 2, no bundles).
# For checking that a change to per-file work costs nothing measurable. Usage (root):
#   bench/two-binaries.sh OLD_BINARY NEW_BINARY [tables=5000] [rounds=3]
# Results: bench/RESULTS.md.
set -euo pipefail
OLD=$1; NEW=$2; TABLES=${3:-5000}; ROUNDS=${4:-3}
PGBIN=/usr/lib/postgresql/15/bin
TMP=$(mktemp -d /tmp/fdbench.XXXXXX); chmod 755 $TMP
PORT=$((51000 + RANDOM % 5000)); PGDATA=$TMP/pg
cleanup() { [ -f "$PGDATA/postmaster.pid" ] && runuser -u postgres -- $PGBIN/pg_ctl -D $PGDATA -m immediate -w stop >/dev/null 2>&1; rm -rf $TMP; }
trap cleanup EXIT
mkdir -p $TMP/socket $TMP/log $TMP/lock $TMP/bin; cp $OLD $TMP/bin/old; cp $NEW $TMP/bin/new; chown -R postgres:postgres $TMP
runuser -u postgres -- $PGBIN/initdb -D $PGDATA -k -A trust >/dev/null
cat >> $PGDATA/postgresql.conf <<CONF
port=$PORT
unix_socket_directories='$TMP/socket'
listen_addresses=''
archive_mode=on
archive_command='true'
wal_level=replica
max_locks_per_transaction=1024
CONF
runuser -u postgres -- $PGBIN/pg_ctl -D $PGDATA -l $TMP/pg.log -w start >/dev/null
runuser -u postgres -- $PGBIN/psql -h $TMP/socket -p $PORT -d postgres -qAt -c "select 1" >/dev/null
runuser -u postgres -- $PGBIN/psql -h $TMP/socket -p $PORT -d postgres -q -c "do \$\$begin for i in 1..$TABLES loop execute format('create table t%s (id int primary key, v text)', i); execute format('insert into t%s values (1, ''x'')', i); end loop; end\$\$;" >/dev/null
runuser -u postgres -- $PGBIN/psql -h $TMP/socket -p $PORT -d postgres -q -c "vacuum" >/dev/null
echo "files: $(find $PGDATA -type f | wc -l)"
for tool in old new; do
  mkdir -p $TMP/repo-$tool; chown postgres:postgres $TMP/repo-$tool
  cat > $TMP/$tool.conf <<CONF
[global]
repo1-path=$TMP/repo-$tool
log-path=$TMP/log
lock-path=$TMP/lock
start-fast=y
archive-check=n
process-max=2
compress-type=zst
repo1-bundle=n
[demo]
pg1-path=$PGDATA
pg1-port=$PORT
pg1-socket-path=$TMP/socket
CONF
  runuser -u postgres -- $TMP/bin/$tool --config=$TMP/$tool.conf --stanza=demo stanza-create >/dev/null
done
t() { local s=$EPOCHREALTIME; "$@" >/dev/null 2>&1 || { echo "FAILED: $*"; "$@"; }; echo "scale=3; ($EPOCHREALTIME - $s)/1" | bc; }
for round in $(seq $ROUNDS); do
  for tool in old new; do
    run="runuser -u postgres -- $TMP/bin/$tool --config=$TMP/$tool.conf --stanza=demo"
    b=$(t $run --type=full backup)
    rm -rf $TMP/restore; mkdir $TMP/restore; chown postgres:postgres $TMP/restore; chmod 700 $TMP/restore
    r=$(t $run --pg1-path=$TMP/restore restore)
    e=$(t $run --repo1-retention-full=1 expire)
    echo "round $round $tool backup $b restore $r expire $e"
  done
done
