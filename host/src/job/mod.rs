//! The commands' phases, each a short list of steps over the sandbox and the capabilities.

pub mod dump;
pub mod export;
pub mod load;
pub mod plan;

use std::path::Path;

use anyhow::Context;


/// Writes `bytes` to `path` through a temporary file and a rename: never half-written.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}
