//! The commands' phases, each a short list of steps over the sandbox and the capabilities.

pub mod dump;
pub mod export;
pub mod load;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use object_store::local::LocalFileSystem;

use crate::caps::blob_store::Grant;

/// A local directory as a rooted store (created when `create` and missing).
pub fn local_grant(dir: &Path, create: bool, what: &str) -> anyhow::Result<Grant> {
    if create {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {what} {}", dir.display()))?;
    } else if !dir.is_dir() {
        anyhow::bail!("{what} {} does not exist or is not a directory", dir.display());
    }
    let store = LocalFileSystem::new_with_prefix(dir).with_context(|| format!("cannot open {what} {}", dir.display()))?;
    Ok(Grant { store: Arc::new(store), display: dir.display().to_string() })
}

/// Writes `bytes` to `path` through a temporary file and a rename: never half-written.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}
