#!/usr/bin/env bash
# Times a full backup of a pgbench cluster done locally and from a "backup host" over ssh
# (pg1-host), on this machine (PostgreSQL 15, sshd on 127.0.0.2/127.0.0.3 loopback).
# Usage: bench/remote-backup.sh [scale=10] [runs=3]
# Both backups go to the same repository with the same options (zst, process-max 1 and 2);
# only where the data directory is read differs. Nothing is asserted. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-10}
RUNS=${2:-3}
PGBIN=/usr/lib/postgresql/15/bin
[ -x /usr/sbin/sshd ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server >/dev/null
cargo build --release --quiet

TMP=$(mktemp -d /tmp/pgkeep-bench-remote.XXXXXX)
chmod 755 "$TMP"
PORT=$((50000 + RANDOM % 9000))
SSH_PORT=$((PORT + 1))
PGDATA=$TMP/pg
cleanup() {
  [ -f "$PGDATA/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
  [ -f "$TMP/ssh/sshd.pid" ] && kill "$(cat "$TMP/ssh/sshd.pid")"
  rm -rf "$TMP"
}
trap cleanup EXIT
mkdir -p "$TMP/bin" "$TMP/repo" "$TMP/socket" "$TMP/log" "$TMP/ssh" /run/sshd
install -m 0755 target/release/pgkeep "$TMP/bin/pgkeep"

# sshd with its own host key, key login for postgres, a cmd-ssh wrapper with known_hosts.
ssh-keygen -q -t ed25519 -N '' -f "$TMP/ssh/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$TMP/ssh/client_key"
cp "$TMP/ssh/client_key.pub" "$TMP/ssh/authorized_keys"
for host in 127.0.0.2 127.0.0.3; do
  echo "[$host]:$SSH_PORT $(cut -d' ' -f1,2 "$TMP/ssh/host_key.pub")"
done > "$TMP/ssh/known_hosts"
cat > "$TMP/ssh/sshd_config" <<SSHD
Port $SSH_PORT
ListenAddress 127.0.0.2
ListenAddress 127.0.0.3
HostKey $TMP/ssh/host_key
PidFile $TMP/ssh/sshd.pid
UsePAM yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AllowUsers postgres
StrictModes no
AuthorizedKeysFile $TMP/ssh/authorized_keys
SSHD
printf '#!/bin/sh\nexec ssh -i %s -o UserKnownHostsFile=%s "$@"\n' \
  "$TMP/ssh/client_key" "$TMP/ssh/known_hosts" > "$TMP/ssh/ssh"
chmod 755 "$TMP/ssh/ssh"
/usr/sbin/sshd -t -f "$TMP/ssh/sshd_config"
/usr/sbin/sshd -f "$TMP/ssh/sshd_config" -E "$TMP/ssh/sshd.log"

LOCAL=$TMP/local.conf
DBHOST=$TMP/db-host.conf
BACKUPHOST=$TMP/backup-host.conf
common="repo1-path=$TMP/repo
lock-path=$TMP/lock
log-path=$TMP/log
log-level-file=off
start-fast=y
cmd-ssh=$TMP/ssh/ssh"
cluster="pg1-path=$PGDATA
pg1-port=$PORT
pg1-socket-path=$TMP/socket"
printf '[global]\n%s\n[bench]\n%s\n' "$common" "$cluster" > "$LOCAL"
printf '[global]\nlog-path=%s\nlog-level-file=off\n[bench]\n%s\n' "$TMP/log" "$cluster" > "$DBHOST"
printf '[global]\n%s\n[bench]\n%s\npg1-host=127.0.0.3\npg1-host-port=%s\npg1-host-config=%s\n' \
  "$common" "$cluster" "$SSH_PORT" "$DBHOST" > "$BACKUPHOST"
chown -R postgres:postgres "$TMP"
chown root "$TMP/ssh/host_key"
as_pg() { runuser -u postgres -- "$@"; }
pgkeep() { local conf=$1; shift; as_pg "$TMP/bin/pgkeep" --config="$conf" --stanza=bench "$@"; }

as_pg "$PGBIN/initdb" -D "$PGDATA" -k -A trust >/dev/null
cat >> "$PGDATA/postgresql.conf" <<PGCONF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$TMP/socket'
wal_level = replica
archive_mode = on
archive_command = '$TMP/bin/pgkeep --config=$LOCAL --stanza=bench archive-push %p'
PGCONF
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$TMP/log/pg.log" -w start >/dev/null
as_pg "$PGBIN/pgbench" -i -q -s "$SCALE" -h "$TMP/socket" -p "$PORT" postgres >/dev/null 2>&1
pgkeep "$LOCAL" stanza-create
SIZE=$(du -sm "$PGDATA" | cut -f1)
echo "pgbench scale $SCALE: data directory ${SIZE} MiB; $(nproc) cores; median of $RUNS runs"

median() {
  local times=()
  for _ in $(seq "$RUNS"); do
    local start end
    start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N)
    times+=("$(echo "$end - $start" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p"
}
for pm in 1 2; do
  t=$(median pgkeep "$LOCAL" --type=full --process-max="$pm" backup)
  echo "full backup, local             process-max=$pm: ${t}s"
  t=$(median pgkeep "$BACKUPHOST" --type=full --process-max="$pm" backup)
  echo "full backup, over ssh (pg1-host) process-max=$pm: ${t}s"
done
t=$(median pgkeep "$BACKUPHOST" --type=full --compress-type=none --process-max=2 backup)
echo "full backup, over ssh, compress-type=none (network gz level 3) process-max=2: ${t}s"
