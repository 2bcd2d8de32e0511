# Sourced by the scripts: the shared target dir (clones reuse one build) and the wasm target.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/milvus-migration/target}"
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
