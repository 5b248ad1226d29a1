#!/usr/bin/env bash
# Runs the whole test suite on a Debian 12 machine as root: installs what is missing
# (PostgreSQL 15 from Debian's packages), then unit and integration tests against real clusters.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
fi
cargo build --quiet
cargo test --quiet -- --test-threads="${PGKEEP_TEST_THREADS:-4}"
