# Sourced by the scripts (from the repository root).
# One target dir per checkout: host/build.rs embeds the guest and records absolute paths to watch,
# so two checkouts sharing a target dir could embed each other's guest. Set CARGO_TARGET_DIR to
# override.
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="$HOME/.cache/milvus-migration/target-$(pwd | cksum | cut -d' ' -f1)"
fi
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
# The one build of the scripts that run tests or benchmarks: `--workspace --all-targets` resolves features
# as `cargo test --workspace` does, so the binary, the test binaries and every test phase share one set of
# artifacts (a `-p` selection unifies fewer features and makes the next test run rebuild wasmtime and its kin).
mm_build() {
  cargo build --release --workspace --all-targets "$@"
}
