//! The commands' phases, each a short list of steps over the sandbox and the capabilities.

pub mod dump;
pub mod export;
pub mod load;
pub mod migrate;
pub mod model;
pub mod overlap;
pub mod plan;
pub mod reconcile;
pub mod workers;

use std::path::Path;

use anyhow::Context;

use crate::exit::Failure;
use crate::lease::Lease;
use crate::job::model::Job;

/// Runs `phase` holding the lease on the dump (the target store): a second run on the same dump
/// stops before touching anything (or waits, with --wait).
pub async fn leased<F, T>(s: &Job, command: &str, phase: F) -> Result<T, Failure>
where
    F: std::future::Future<Output = Result<T, Failure>>,
{
    let target = crate::stores::grant(&s.target, true).await.map_err(Failure::Run)?;
    // Workers each hold a lease of their own: one live process per worker index.
    let dir = s.share.map_or(crate::lease::DIR.to_string(), |w| w.lease_dir());
    if s.cancel.is_cancelled() {
        return Err(Failure::Run(anyhow::anyhow!("cancelled before {command}")));
    }
    let lease = Lease::acquire(&target, &dir, command, s.lease_ttl, s.wait_for_lease).await.map_err(Failure::Run)?;
    // Cancelled: the phase stops where it stands (what it staged is atomic, the import journal
    // resolves what was in flight on the next run), and the lease is released all the same.
    // Taken over (this run was silent for longer than the ttl): it stops, and the fence has
    // refused every change to Milvus since it could no longer be sure.
    lease.guard(&s.fence);
    let result = tokio::select! {
        r = phase => r,
        _ = s.cancel.cancelled() => Err(Failure::Run(anyhow::anyhow!("cancelled during {command}"))),
        why = lease.lost() => Err(Failure::Run(anyhow::anyhow!("{command} stopped: {why}"))),
    };
    lease.unguard(&s.fence);
    lease.release().await;
    result
}

/// Writes `bytes` to `path` through a temporary file and a rename: never half-written.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}
