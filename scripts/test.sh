#!/usr/bin/env bash
# Runs every test: guest engine unit tests (natively), host unit tests, and end-to-end tests that
# drive the built binary on generated 1.x installations, a real MariaDB, a real S3 server (s3s-fs),
# Azure and GCS emulators (Azurite, fake-gcs-server), milvus-lite 3.2.2 and a real Milvus 2.3.5.
# Sets up what it needs first (and leaves the services running for the next run; `scripts/milvus.sh
# stop`, `scripts/s3.sh stop`, `scripts/azurite.sh stop`, `scripts/gcs.sh stop` stop them). A
# service that cannot start fails the run.
#   Phase 1: Milvus on local storage (local targets are imported by absolute path).
#   Phase 2: Milvus on S3 storage (remote targets are imported by bucket key): tests named remote_*.
#   Phase 3: Milvus with a login required and TLS on its gRPC port: tests named secure_*.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
scripts/python-env.sh
# The Node host (tests/node-host): jco, the Milvus Node SDK and Node 24, pinned by package-lock.json.
(cd tests/node-host && npm ci --no-audit --no-fund --loglevel=error)
# Runs a setup script and exports its KEY=value lines; a failing script fails the run.
with_env() {
  local out
  out=$("$@") || { echo "test.sh: '$*' failed" >&2; exit 1; }
  eval "$(printf '%s\n' "$out" | grep -E '^[A-Z0-9_]+=' | sed 's/^/export /')"
}
with_env bash scripts/mariadb.sh ensure
with_env bash scripts/s3.sh start
# Emulators for the other clouds (tests/tests/azure_e2e.rs, gcs_e2e.rs): Azurite 3.35.0 (npm) and fake-gcs-server
# 1.54.0 (in a PyPI wheel), each on a free port of 127.0.0.1.
with_env bash scripts/azurite.sh start
with_env bash scripts/gcs.sh start
# One feature set for every build below (scripts/env.sh); the phases' `--workspace` keeps to it.
mm_build

with_env env MM_MILVUS_STORAGE=local bash scripts/milvus.sh start
# The second real server for loadMode: insert (tests/tests/lite_e2e.rs): milvus-lite 3.2.2 on a free port.
with_env bash scripts/milvus-lite.sh start
cargo test --release --workspace "$@" -- --skip remote_ --skip secure_

with_env env MM_MILVUS_STORAGE=minio bash scripts/milvus.sh start
cargo test --release --workspace --test remote_e2e "$@"

with_env env MM_MILVUS_STORAGE=secure bash scripts/milvus.sh start
cargo test --release --workspace --test secure_e2e "$@"
