#!/usr/bin/env bash
# Regenerates tests/fixtures/pg/<major>/ from a real initdb of every supported major version.
#
# For each major 10..18: installs the binaries (scripts/install-pg.sh), runs `initdb -k` as
# postgres into a temporary directory, and copies global/pg_control (8192 bytes), PG_VERSION and
# the first 8192 bytes of the first WAL segment. Run as root from the repository root.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
majors="${*:-10 11 12 13 14 15 16 17 18}"

for major in $majors; do
    bin="$("$root/scripts/install-pg.sh" "$major")"
    work="$(mktemp -d)"
    chown postgres: "$work"
    runuser -u postgres -- "$bin/initdb" -k -A trust -U postgres -D "$work/data" >/dev/null
    out="$root/tests/fixtures/pg/$major"
    mkdir -p "$out"
    cp "$work/data/global/pg_control" "$out/pg_control"
    cp "$work/data/PG_VERSION" "$out/PG_VERSION"
    waldir="$work/data/pg_wal"
    [[ -d "$waldir" ]] || waldir="$work/data/pg_xlog"
    first="$(ls "$waldir" | grep -E '^[0-9A-F]{24}$' | sort | head -n 1)"
    head -c 8192 "$waldir/$first" > "$out/wal-first-page"
    echo "$first" > "$out/wal-first-name"
    chmod 644 "$out"/*
    rm -rf "$work"
    echo "fixtures for $major: $out ($first)"
done
