#!/usr/bin/env bash
# Runs the whole test suite on a Debian 12 machine as root: installs what is missing
# (PostgreSQL 15 from Debian's packages; 11, 12, 13, 14, 16, 17, 18 from npm for the version
# tests; a complete 16 from PyPI for the pg_upgrade test; pgBackRest 2.45 for the differential tests), then unit and integration tests against real clusters.
set -euo pipefail
cd "$(dirname "$0")/.."
# openssh-server for the remote tests (tests/integration/common/sshd.rs runs its own sshd on
# loopback).
if [ ! -x /usr/sbin/sshd ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q openssh-server >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -q openssh-server >/dev/null; }
fi
# pgBackRest 2.45, the reference the differential tests (tests/integration/compat/) compare
# pgkeep with.
if [ ! -x /usr/bin/pgbackrest ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q pgbackrest >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -q pgbackrest >/dev/null; }
fi
for major in 15 11 12 13 14 16 17 18 16-full; do
  scripts/install-pg.sh "$major" >/dev/null
done
# The failpoints feature (test builds only) lets tests/integration/faults.rs kill pgkeep at its
# durable steps.
cargo build --quiet --features failpoints
cargo test --quiet --features failpoints -- --test-threads="${PGKEEP_TEST_THREADS:-4}"
