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
. bench/lib.sh
[ -x /usr/sbin/sshd ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server >/dev/null
bench_tools
bench_extra_cleanup() { [ -f "$TMP/ssh/sshd.pid" ] && kill "$(cat "$TMP/ssh/sshd.pid")"; }
bench_setup "$SCALE" keep
chmod 755 "$TMP"
SSH_PORT=$((PORT + 1))
mkdir -p "$TMP/ssh" /run/sshd

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

# The local configuration is lib.sh's keep.conf; the database host's has only the cluster.
LOCAL=$TMP/keep.conf
DBHOST=$TMP/db-host.conf
BACKUPHOST=$TMP/backup-host.conf
cluster="pg1-path=$PGDATA
pg1-port=$PORT
pg1-socket-path=$TMP/socket"
printf '[global]\nlog-path=%s\nlog-level-file=off\n[bench]\n%s\n' "$TMP/log" "$cluster" > "$DBHOST"
sed -e "s|^\[bench\]|cmd-ssh=$TMP/ssh/ssh\n[bench]\npg1-host=127.0.0.3\npg1-host-port=$SSH_PORT\npg1-host-config=$DBHOST|" "$LOCAL" > "$BACKUPHOST"
chown -R postgres:postgres "$TMP"
chown root "$TMP/ssh/host_key"
AT_LOCAL=(runuser -u postgres -- "$TMP/bin/pgkeep" --config="$LOCAL" --stanza=bench)
AT_BACKUP_HOST=(runuser -u postgres -- "$TMP/bin/pgkeep" --config="$BACKUPHOST" --stanza=bench)
"${AT_LOCAL[@]}" stanza-create
echo "pgbench scale $SCALE: $(data_mib) MiB of data; $(nproc) cores; median of $RUNS runs"

for pm in 1 2; do
  read -r t _ < <(measure nothing "${AT_LOCAL[@]}" --type=full --process-max="$pm" backup)
  echo "full backup, local             process-max=$pm: ${t}s"
  read -r t _ < <(measure nothing "${AT_BACKUP_HOST[@]}" --type=full --process-max="$pm" backup)
  echo "full backup, over ssh (pg1-host) process-max=$pm: ${t}s"
done
read -r t _ < <(measure nothing "${AT_BACKUP_HOST[@]}" --type=full --compress-type=none --process-max=2 backup)
echo "full backup, over ssh, compress-type=none (network gz level 3) process-max=2: ${t}s"
