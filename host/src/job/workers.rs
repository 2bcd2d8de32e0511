//! One plan across many processes or machines (`--workers N --worker I`): worker I does the units
//! whose index in the plan satisfies `unit % N == I`, each worker under a lease of its own
//! (`_lease/worker-I-of-N/`), so two processes given the same I never work at once (the second
//! stops, or waits with --wait). Progress is kept in the staging store under `_work/<phase>-<plan
//! hash>/`, written create-only:
//!
//! ```text
//! started.json          the first worker of this plan removed the previous manifest (dump)
//! unit-000017.json      unit 17 is dumped (its segment report, for the manifest)
//! pack-000002.json      pack 2 is dumped (its segments' reports and its files)
//! worker-2-of-3.json    worker 2 imported its share (load)
//! finalize/             a lease: the one worker that writes the manifest, or builds the
//!                       indexes, loads and verifies, once every unit is done
//! finalized.json        that was done
//! ```
//! A worker that dies is restarted (or run again with the same I) and does what its share still
//! lacks: dump files are published atomically and imports are journaled, so redoing an
//! unrecorded unit imports nothing twice. The plan hash names the work: a changed source or
//! other options is another plan, started afresh.

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use serde_json::{json, Value};

use crate::bindings::{blob_store, engine};
use crate::caps::blob_store::Grant;
use crate::exit::Failure;
use crate::lease::{Attempt, Lease};

/// The record of a finalized plan.
pub const FINALIZED: &str = "finalized.json";

/// How `Work::finalize` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finalized {
    /// This worker did it.
    Now,
    /// A worker had done it before.
    Already,
    /// Another live worker is doing it.
    ByAnother,
}

/// Which part of a plan this process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub workers: usize,
    pub worker: usize,
}

impl Share {
    pub fn takes(&self, unit: usize) -> bool {
        unit % self.workers == self.worker
    }

    /// The lease directory of this worker.
    pub fn lease_dir(&self) -> String {
        format!("_lease/worker-{}-of-{}", self.worker, self.workers)
    }

    pub fn name(&self) -> String {
        format!("worker {} of {}", self.worker, self.workers)
    }
}

/// FNV-1a, 64 bits: names a plan's work directory (not a security boundary). Hand-written:
/// eight lines against a crate.
pub fn fnv1a(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in text.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The progress records of one phase of one plan.
pub struct Work {
    target: Grant,
    store: Arc<dyn ObjectStore>,
    dir: String,
    /// Names the store in messages.
    place: String,
}

impl Work {
    pub fn new(target: &Grant, phase: &str, plan_hash: u64) -> Self {
        let (store, place) = (target.store.clone(), target.display.clone());
        Work { target: target.clone(), store, dir: format!("_work/{phase}-{plan_hash:016x}"), place }
    }

    fn path(&self, name: &str) -> Path {
        Path::from(format!("{}/{name}", self.dir))
    }

    /// The record `name`, if it exists.
    pub async fn get(&self, name: &str) -> anyhow::Result<Option<Value>> {
        match self.store.get(&self.path(name)).await {
            Ok(r) => Ok(Some(serde_json::from_slice(&r.bytes().await?).map_err(|e| anyhow::anyhow!("{}/{name}: {e}", self.dir))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(anyhow::anyhow!("reading {}/{name} at {}: {e}", self.dir, self.place)),
        }
    }

    /// Creates record `name` unless it exists; true when this call created it.
    pub async fn create(&self, name: &str, value: &Value) -> anyhow::Result<bool> {
        let body = PutPayload::from(serde_json::to_vec_pretty(value).expect("json"));
        match self.store.put_opts(&self.path(name), body, PutOptions { mode: PutMode::Create, ..Default::default() }).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(anyhow::anyhow!("writing {}/{name} at {}: {e}", self.dir, self.place)),
        }
    }

    /// Runs `job` once for the whole plan: under the finalize lease, unless `finalized.json`
    /// says a worker did it already; records it when it succeeds. `announce` is printed when
    /// this worker is the one.
    pub async fn finalize<F>(&self, ttl: Duration, share: Share, announce: &str, job: F) -> Result<Finalized, Failure>
    where
        F: std::future::Future<Output = Result<(), Failure>>,
    {
        let dir = format!("{}/finalize", self.dir);
        let lease = match Lease::try_acquire(&self.target, &dir, "finalize", ttl).await.map_err(Failure::Run)? {
            Attempt::Taken(lease) => lease,
            Attempt::Held(..) => return Ok(Finalized::ByAnother),
        };
        if self.get(FINALIZED).await.map_err(Failure::Run)?.is_some() {
            lease.release().await;
            return Ok(Finalized::Already);
        }
        println!("{}: {announce}", share.name());
        let r = job.await;
        let recorded = match &r {
            Ok(()) => self.create(FINALIZED, &json!({"by": share.worker, "pid": std::process::id()})).await.map(|_| ()),
            Err(_) => Ok(()),
        };
        lease.release().await;
        r?;
        recorded.map_err(Failure::Run)?;
        Ok(Finalized::Now)
    }

    /// Whether a worker has finalized this plan.
    pub async fn finalized(&self) -> Result<bool, Failure> {
        Ok(self.get(FINALIZED).await.map_err(Failure::Run)?.is_some())
    }

    /// Waits until record `name` exists (another worker finalizing), saying so once.
    pub async fn wait_for(&self, name: &str, what: &str) -> anyhow::Result<()> {
        let mut said = false;
        while self.get(name).await?.is_none() {
            if !said {
                println!("waiting for {what} ({}/{name} at {})", self.dir, self.place);
                said = true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(())
    }
}

fn written_json(w: &blob_store::Written) -> Value {
    json!({"path": w.path, "bytes": w.bytes, "crc32c": w.crc32c})
}

fn written_from(v: &Value) -> Option<blob_store::Written> {
    Some(blob_store::Written { path: v["path"].as_str()?.to_string(), bytes: v["bytes"].as_u64()?, crc32c: v["crc32c"].as_u64()? as u32 })
}

/// A unit's segment report as a record (what the finalizer needs for the manifest).
pub fn report_json(r: &engine::SegmentReport) -> Value {
    json!({
        "rowsIn": r.rows_in,
        "deleted": r.deleted,
        "rowsOut": r.rows_out,
        "bytesIn": r.bytes_in,
        "files": r.files.iter().map(written_json).collect::<Vec<_>>(),
        "droppedRows": r.dropped_rows,
        "ignoredDeletes": r.ignored_deletes,
        "rejects": r.rejects.as_ref().map(written_json),
        "duplicatesDropped": r.duplicates_dropped,
    })
}

/// A pack's report as a record.
pub fn pack_report_json(r: &engine::PackReport) -> Value {
    json!({
        "segments": r.segments.iter().map(report_json).collect::<Vec<_>>(),
        "files": r.files.iter().map(written_json).collect::<Vec<_>>(),
    })
}

pub fn pack_report_from(v: &Value) -> Option<engine::PackReport> {
    Some(engine::PackReport {
        segments: v["segments"].as_array()?.iter().map(report_from).collect::<Option<Vec<_>>>()?,
        files: v["files"].as_array()?.iter().map(written_from).collect::<Option<Vec<_>>>()?,
    })
}

pub fn report_from(v: &Value) -> Option<engine::SegmentReport> {
    let files = v["files"].as_array()?.iter().map(written_from).collect::<Option<Vec<_>>>()?;
    let dropped = v["droppedRows"].as_array()?.iter().map(Value::as_u64).collect::<Option<Vec<_>>>()?;
    Some(engine::SegmentReport {
        rows_in: v["rowsIn"].as_u64()?,
        deleted: v["deleted"].as_u64()?,
        rows_out: v["rowsOut"].as_u64()?,
        bytes_in: v["bytesIn"].as_u64()?,
        files,
        dropped_rows: dropped,
        ignored_deletes: v["ignoredDeletes"].as_u64()?,
        rejects: if v["rejects"].is_null() { None } else { Some(written_from(&v["rejects"])?) },
        duplicates_dropped: v["duplicatesDropped"].as_u64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_unit_once_and_reports_round_trip() {
        for n in 1..5 {
            for unit in 0..20 {
                assert_eq!((0..n).filter(|&i| Share { workers: n, worker: i }.takes(unit)).count(), 1);
            }
        }
        let w = |p: &str| blob_store::Written { path: p.into(), bytes: 7, crc32c: 0xdead_beef };
        let r = engine::SegmentReport {
            rows_in: 10,
            deleted: 2,
            rows_out: 7,
            bytes_in: 99,
            files: vec![w("a/id.npy"), w("a/data.npy")],
            dropped_rows: vec![3],
            ignored_deletes: 1,
            rejects: Some(w("_rejects/a.jsonl")),
            duplicates_dropped: 0,
        };
        let back = report_from(&report_json(&r)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{r:?}"));
        let none = engine::SegmentReport { rejects: None, ..r };
        assert!(report_from(&report_json(&none)).unwrap().rejects.is_none());
    }

    #[tokio::test]
    async fn records_are_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let work = Work::new(&Grant { store, display: "out".into(), atomic_create: true }, "dump", fnv1a("plan"));
        assert!(work.get("started.json").await.unwrap().is_none());
        assert!(work.create("started.json", &json!({"by": 1})).await.unwrap());
        assert!(!work.create("started.json", &json!({"by": 2})).await.unwrap());
        assert_eq!(work.get("started.json").await.unwrap().unwrap()["by"], 1);
    }
}
