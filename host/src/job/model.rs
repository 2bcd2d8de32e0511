//! The job model: what one run does, typed, whatever described it. migration.yaml (the CLI,
//! through settings.rs) resolves into it, and the phases in job/ run on it; they never see a
//! front end's schema. Connection parameters are typed here too, for the capabilities.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use crate::sandbox::{Limits, UnitPolicy};

// Connection parameters are the capabilities' own types; a job names them.
pub use crate::caps::milvus::MilvusConnection;
use crate::caps::milvus::{ImportPaths, MilvusConn};
pub use crate::stores::{Cloud, RemoteStore, StoreSpec};

#[derive(Clone, PartialEq)]
pub enum MetaSpec {
    /// A meta.json file (`meta.mode: local` or `mock`).
    Json(PathBuf),
    /// The 1.x meta.sqlite.
    Sqlite(PathBuf),
    /// The 1.x MySQL meta: a Go driver DSN or a mysql:// URL (holds the password).
    Mysql(String),
    /// A meta.json key in the source bucket (`meta.mode: remote`).
    Remote(String),
}

impl std::fmt::Debug for MetaSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetaSpec::Json(p) => write!(f, "Json({p:?})"),
            MetaSpec::Sqlite(p) => write!(f, "Sqlite({p:?})"),
            MetaSpec::Mysql(_) => f.write_str("Mysql(<redacted>)"),
            MetaSpec::Remote(k) => write!(f, "Remote({k:?})"),
        }
    }
}

/// `migration.index`: which index the target collections get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexChoice {
    /// The 1.x index, re-created (default).
    Keep,
    AutoIndex,
    None,
}

/// `migration.loadMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// Bulk import: Milvus reads the dump from its own storage.
    Import,
    /// Insert over gRPC in batches of about this many bytes; the dump may be anywhere.
    Insert { batch_bytes: u64 },
}

/// `migration.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// `<vector>.npy` and `<id>.npy` per file group.
    Numpy,
    /// One `rows.parquet` per file group (Milvus 2.3.4 and later).
    Parquet,
}

/// `migration.onExists`: what to do with a target collection that already exists.
/// `migration.badData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadData {
    Fail,
    Skip,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExists {
    Fail,
    Append,
    Skip,
}

/// How created collections look (`migration.shards`, `.consistencyLevel`, `.description`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionOptions {
    pub renames: Vec<(String, String)>,
    pub shards: u32,
    pub consistency: String,
    pub description: String,
    pub on_exists: OnExists,
    /// `migration.cleanup: delete`: remove staged npy files once a collection verified.
    pub delete_staged: bool,
}

#[derive(Debug, Clone)]
/// One run: the command's phases read everything from here.
pub struct Job {
    pub workers: NonZeroUsize,
    pub loader_workers: NonZeroUsize,
    pub read_chunk: u32,
    /// Present when the command needs it (dump, migrate).
    pub meta: Option<MetaSpec>,
    /// Present when the command needs it (load, verify, migrate).
    pub milvus: Option<MilvusConnection>,
    /// A connected client for `milvus` to reuse (the service's, per tenant and connection);
    /// without one, the phases connect themselves.
    pub milvus_client: Option<PooledMilvus>,
    pub index: IndexChoice,
    /// Largest npy payload of one import (`migration.maxGroupMiB`).
    pub max_group_bytes: u64,
    /// `migration.packSegments`: write small segments of a partition into shared file groups.
    pub pack_segments: bool,
    /// `migration.loadMode` (and `insertBatchMiB`): how rows reach Milvus.
    pub load_mode: LoadMode,
    /// `migration.format`: how the dump writes each file group.
    pub format: FileFormat,
    /// `migration.badData`: fail, skip or reject rows 2.x would refuse or that cannot be paired.
    pub bad_data: BadData,
    /// `migration.duplicateIds: keep-last`: only the newest copy of a repeated primary key.
    pub keep_last: bool,
    pub collection: CollectionOptions,
    /// Load collections into memory after the import.
    pub load_after: bool,
    pub source: StoreSpec,
    pub target: StoreSpec,
    pub collections: Vec<String>,
    pub id_field: String,
    pub vector_field: String,
    pub limits: Limits,
    pub log_level: Option<String>,
    /// `migration.leaseSeconds`: a dump's lease whose holder sent no heartbeat for this long is
    /// taken over.
    pub lease_ttl: std::time::Duration,
    /// `--wait`: wait for another run's lease on the dump instead of stopping.
    pub wait_for_lease: bool,
    /// `--workers N --worker I`: this process's share of the plan.
    pub share: Option<crate::job::workers::Share>,
    /// Set by a front end that can stop a run (the service's cancel): each leased phase stops
    /// at once and releases its lease, and later phases do not start.
    pub cancel: Cancel,
    /// The leases this job holds (set while a leased phase runs): the milvus capability checks
    /// them before every call that changes rows.
    pub fence: crate::lease::Fence,
    /// How units run beside other jobs (the service: shared compilation, tenant ceiling, wall
    /// clock, fair slots); the default runs them alone.
    pub units: UnitPolicy,
}

/// A shared connection to the job's Milvus.
#[derive(Clone)]
pub struct PooledMilvus(pub std::sync::Arc<MilvusConn>);

impl std::fmt::Debug for PooledMilvus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PooledMilvus(Milvus {})", self.0.version)
    }
}

impl Job {
    /// The job's Milvus client importing from `paths`: the pooled one, or a new connection.
    pub async fn milvus_conn(&self, paths: ImportPaths) -> anyhow::Result<MilvusConn> {
        match (&self.milvus_client, &self.milvus) {
            (Some(c), _) => Ok(c.0.with_paths(paths)),
            (None, Some(m)) => MilvusConn::connect(m, paths).await,
            (None, None) => anyhow::bail!("no Milvus is configured (target.milvus2x.endpoint)"),
        }
    }
}

/// A stop signal for a running job; the default never fires.
#[derive(Clone, Default)]
pub struct Cancel(Option<tokio::sync::watch::Receiver<bool>>);

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cancel({})", self.is_cancelled())
    }
}

impl Cancel {
    /// A signal and the sender that fires it.
    pub fn new() -> (tokio::sync::watch::Sender<bool>, Cancel) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (tx, Cancel(Some(rx)))
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.as_ref().is_some_and(|r| *r.borrow())
    }

    /// Resolves once the signal fires (never, for the default).
    pub async fn cancelled(&self) {
        match &self.0 {
            Some(r) => {
                let mut r = r.clone();
                let _ = r.wait_for(|c| *c).await;
            }
            None => std::future::pending().await,
        }
    }
}

/// 4 GiB per import: well under the 16 GiB file (2.2/2.3) and group (2.4+) limits, and small
/// enough for 2.2/2.3's 900 s import timeout (measured ~1 GB per 10 s on 2.3.5 here).
pub const DEFAULT_MAX_GROUP_MIB: u64 = 4096;

pub const DEFAULT_LIMITS: Limits = Limits { memory_bytes: 256 << 20, fuel: 200_000_000_000 };

