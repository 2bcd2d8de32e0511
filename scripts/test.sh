#!/usr/bin/env bash
# Runs every test: guest engine unit tests (natively), host unit tests, and end-to-end tests that
# drive the built binary on generated 1.x installations and a real Milvus 2.3.5 (started here and
# left running for the next run; `scripts/milvus.sh stop` stops it). Sets up what it needs first;
# if Milvus cannot start, this fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
scripts/python-env.sh
eval "$(bash scripts/milvus.sh start | grep -E '^MILVUS_[A-Z_]+=' | sed 's/^/export /')"
cargo build --release -p milvus-migration -p mm-tests
cargo test --release --workspace "$@"
