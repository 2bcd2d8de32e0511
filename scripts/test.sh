#!/usr/bin/env bash
# Runs every test: guest engine unit tests (natively), host unit tests, and end-to-end tests that
# drive the built binary on generated 1.x installations. Sets up what it needs first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
scripts/python-env.sh
cargo build --release -p milvus-migration -p mm-tests
cargo test --release --workspace "$@"
