#!/bin/sh
# Filter throughput (MB/s) on PostgreSQL-like data: sha256, size, and compress/decompress of
# each type at its default level. Usage: bench/filters.sh [MiB of data, default 256]
set -eu
cd "$(dirname "$0")/.."
exec cargo run --quiet --release --example filter_bench -- "${1:-256}"
