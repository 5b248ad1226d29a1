#!/usr/bin/env bash
# Side by side on one pgbench cluster (data checksums on): pgkeep, pgBackRest (Debian's 2.45),
# pg_basebackup and a raw copy of the data directory. Same repository disk, same compression
# type and level (each tool's default level for the type), same process-max, start-fast for
# both tools; both archive every WAL segment. Wall time, CPU time (user+sys) and peak RSS with
# GNU time; each figure is the median of RUNS runs.
#
# Usage: bench/compare.sh [scale=100] [runs=3]   (as root; installs pgbackrest, time, bc)
# Sections: full backups (none, lz4, zst, gz x process-max 1, 2), references (pg_basebackup
# plain and -Ft client-lz4, raw copy), incremental and differential backups after
# `pgbench -T 30` (time and repository growth), restore into an empty directory, delta restore
# of an unchanged and of a lightly changed cluster. archive-push/get: bench/archive.sh; many
# small files: bench/small-files.sh. Speed is measured here, never asserted in tests.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${1:-100}
RUNS=${2:-3}
. bench/lib.sh
bench_tools
bench_setup "$SCALE"
"${KEEP[@]}" stanza-create >/dev/null
"${BREST[@]}" stanza-create >/dev/null

echo "# pgkeep $("$TMP/bin/pgkeep" version | cut -d' ' -f2) vs pgBackRest $(pgbackrest version | cut -d' ' -f2), pgbench scale $SCALE ($(data_mib) MiB of data), $(nproc) cores, median of $RUNS runs, $(date -u +%F)"
echo
echo "| operation | pgkeep wall s | pgBackRest wall s | ratio | pgkeep cpu s | pgBackRest cpu s | pgkeep RSS MiB | pgBackRest RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"

# pair <name> <keep "wall cpu rss"> <brest "wall cpu rss">
pair() {
  local kw kc kr bw bc br
  read -r kw kc kr <<<"$2"; read -r bw bc br <<<"$3"
  echo "| $1 | $kw | $bw | $(ratio "$kw" "$bw") | $kc | $bc | $kr | $br |"
}
# row <name> <prepare> <args...>: the same arguments for both tools.
row() {
  local name=$1 prepare=$2; shift 2
  pair "$name" "$(measure "$prepare" "${KEEP[@]}" "$@")" "$(measure "$prepare" "${BREST[@]}" "$@")"
}

# One untimed backup by each tool first: the first reads of a freshly loaded cluster (page
# cache, hint bits set by the first pass) would otherwise all fall on the first row.
"${KEEP[@]}" --type=full --compress-type=none backup >/dev/null
"${BREST[@]}" --type=full --compress-type=none backup >/dev/null

declare -A KEEP_FULL
for compress in none lz4 zst gz; do
  for pm in 1 2; do
    keep=$(measure nothing "${KEEP[@]}" --type=full --compress-type=$compress --process-max=$pm backup)
    brest=$(measure nothing "${BREST[@]}" --type=full --compress-type=$compress --process-max=$pm backup)
    KEEP_FULL[$compress-$pm]=$keep
    pair "full backup $compress process-max=$pm" "$keep" "$brest"
  done
done

# References: what the same copy costs without a backup tool's bookkeeping.
echo
echo "| reference | wall s | cpu s | RSS MiB | pgkeep at equal output | ratio pgkeep/reference |"
echo "|---|---:|---:|---:|---|---:|"
fresh_ref() { rm -rf "$TMP/ref"; mkdir -p "$TMP/ref"; chown postgres "$TMP/ref"; }
reference() {
  local name=$1 keep_key=$2; shift 2
  local ref rw rc rr kw
  ref=$(measure fresh_ref "$@")
  read -r rw rc rr <<<"$ref"; read -r kw _ <<<"${KEEP_FULL[$keep_key]}"
  echo "| $name | $rw | $rc | $rr | full backup ${keep_key/-/ process-max=} ($kw s) | $(ratio "$kw" "$rw") |"
}
reference "pg_basebackup -Fp (plain, fsynced)" none-2 \
  runuser -u postgres -- "$PGBIN/pg_basebackup" -h "$TMP/socket" -p "$PORT" -U postgres -c fast -X none -D "$TMP/ref/pb"
reference "pg_basebackup -Ft --compress=client-lz4" lz4-2 \
  runuser -u postgres -- "$PGBIN/pg_basebackup" -h "$TMP/socket" -p "$PORT" -U postgres -c fast -X none -Ft --compress=client-lz4 -D "$TMP/ref/pb"
reference "raw copy (cp -a + sync)" none-1 sh -c "cp -a '$PGDATA' '$TMP/ref/raw' && sync -f '$TMP/ref'"

# Incremental and differential backups of the same changes: pgbench -T 30, then each tool in
# turn. Repository growth = bytes added under backup/ by that backup.
echo
echo "| after pgbench -T 30 | pgkeep wall s | pgBackRest wall s | ratio | pgkeep repo growth MiB | pgBackRest repo growth MiB | ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|"
backup_bytes() { du -sb "$TMP/$1-repo/backup" | cut -f1; }
once() {
  /usr/bin/time -o "$TMP/time.out" -f '%e' "$@" >"$TMP/cmd.out" 2>&1 || { echo "FAILED: $*" >&2; tail -5 "$TMP/cmd.out" >&2; }
  tail -1 "$TMP/time.out"
}
for type in incr diff; do
  kt=(); bt=(); kg=(); bg=()
  for _ in $(seq "$RUNS"); do
    as_pg "$PGBIN/pgbench" -n -T 30 -c 2 -h "$TMP/socket" -p "$PORT" postgres >/dev/null 2>&1
    before=$(backup_bytes keep); kt+=("$(once "${KEEP[@]}" --type=$type --compress-type=zst --process-max=2 backup)"); kg+=("$(( ($(backup_bytes keep) - before) / 1048576 ))")
    before=$(backup_bytes brest); bt+=("$(once "${BREST[@]}" --type=$type --compress-type=zst --process-max=2 backup)"); bg+=("$(( ($(backup_bytes brest) - before) / 1048576 ))")
  done
  kw=$(printf '%s\n' "${kt[@]}" | median); bw=$(printf '%s\n' "${bt[@]}" | median)
  kgm=$(printf '%s\n' "${kg[@]}" | median); bgm=$(printf '%s\n' "${bg[@]}" | median)
  echo "| $type backup (zst, process-max=2) | $kw | $bw | $(ratio "$kw" "$bw") | $kgm | $bgm | $(ratio "$kgm" "$bgm") |"
done

as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
echo
echo "| restore of the latest backup | pgkeep wall s | pgBackRest wall s | ratio | pgkeep cpu s | pgBackRest cpu s | pgkeep RSS MiB | pgBackRest RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
# Each restore goes into a new directory; the earlier ones are removed only after the last run.
# Removing a thousand files just before creating a thousand more costs each create up to a
# millisecond on ext4 without a journal (new inodes skip the ones freed in the last minute),
# and fsync-heavy tools pay it more than others: that is the benchmark's doing, not a restore's.
# The page cache is dropped before each run, so both tools read their repository from disk.
fresh_restore_dir() {
  if [ -d "$TMP/restore" ]; then mv "$TMP/restore" "$TMP/restored.$(date +%s%N)"; fi
  sync; echo 1 > /proc/sys/vm/drop_caches
  mkdir -p "$TMP/restore"; chown postgres "$TMP/restore"; chmod 700 "$TMP/restore"
}
for pm in 1 2; do
  row "restore into an empty dir, process-max=$pm" fresh_restore_dir --pg1-path="$TMP/restore" --process-max=$pm restore
done
rm -rf "$TMP"/restored.*
# Lightly changed: 8 KiB overwritten at 40 places in the largest relation files, and one
# file removed; the same damage, from the same seed, before every run of either tool.
damage() {
  local i=0
  while read -r file; do
    i=$((i + 1))
    dd if=/dev/urandom of="$file" bs=8192 count=1 seek=$(( (i * 7919) % ($(stat -c %s "$file") / 8192) )) conv=notrunc status=none
  done < <(find "$TMP/restore/base" -type f -size +1M | sort | head -40)
  rm -f "$(find "$TMP/restore/base" -type f -name '*_fsm' | sort | head -1)"
}
for tool in keep brest; do
  fresh_restore_dir
  if [ $tool = keep ]; then cmd=("${KEEP[@]}"); else cmd=("${BREST[@]}"); fi
  "${cmd[@]}" --pg1-path="$TMP/restore" restore >/dev/null
  for pm in 1 2; do
    declare "R_${tool}_unchanged_$pm=$(measure nothing "${cmd[@]}" --pg1-path="$TMP/restore" --process-max=$pm --delta restore)"
    declare "R_${tool}_changed_$pm=$(measure damage "${cmd[@]}" --pg1-path="$TMP/restore" --process-max=$pm --delta restore)"
  done
done
for what in unchanged changed; do
  for pm in 1 2; do
    k="R_keep_${what}_$pm"; b="R_brest_${what}_$pm"
    pair "delta restore, $what cluster, process-max=$pm" "${!k}" "${!b}"
  done
done
