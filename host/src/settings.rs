//! migration.yaml (the Go tool's keys plus our `migration` section) parsed once into typed
//! settings. Precedence: command-line flags, then the file, then defaults.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::sandbox::Limits;

/// Environment variables read for settings.
pub mod env {
    /// The Milvus password, when `target.milvus2x.password` is not in the file.
    pub const MILVUS_PASSWORD: &str = "MILVUS_MIGRATION_MILVUS_PASSWORD";
    /// Bucket keys, when `ak` / `sk` are not in the file.
    pub const SOURCE_AK: &str = "MILVUS_MIGRATION_SOURCE_AK";
    pub const SOURCE_SK: &str = "MILVUS_MIGRATION_SOURCE_SK";
    pub const TARGET_AK: &str = "MILVUS_MIGRATION_TARGET_AK";
    pub const TARGET_SK: &str = "MILVUS_MIGRATION_TARGET_SK";
}

/// Where the config is looked for when `--config` is not given (the Go tool's order).
pub const DEFAULT_CONFIG_PATHS: [&str; 2] = ["migration.yaml", "configs/migration.yaml"];

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("no --config given and none of {} exists", DEFAULT_CONFIG_PATHS.join(", "))]
    NoConfig,
    #[error("cannot read {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{path}: {err}")]
    Yaml { path: PathBuf, err: serde_yaml::Error },
    #[error("{path}: {}", .problems.join("; "))]
    Invalid { path: PathBuf, problems: Vec<String> },
}

// ---- the file, as written ----
// Every key of the Go tool's file is accepted; keys only the load phase or remote stores read
// are parsed (so typos are caught) but not used by `dump` yet.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct File {
    #[serde(default)]
    dumper: Dumper,
    #[serde(default)]
    loader: Loader,
    #[serde(default)]
    meta: Meta,
    #[serde(default)]
    source: Source,
    #[serde(default)]
    target: Target,
    #[serde(default)]
    log: Log,
    #[serde(default)]
    migration: Ours,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Dumper {
    #[serde(default)]
    worker: DumperWorker,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct DumperWorker {
    work_mode: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    reader: Buffer,
    #[serde(default)]
    writer: Buffer,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Buffer {
    buffer_size: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Loader {
    #[serde(default)]
    worker: LoaderWorker,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct LoaderWorker {
    limit: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Meta {
    mode: Option<String>,
    local_file: Option<PathBuf>,
    mock_file: Option<PathBuf>,
    sqlite_file: Option<PathBuf>,
    mysql_url: Option<String>,
    remote_meta_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Source {
    mode: Option<String>,
    #[serde(default)]
    local: SourceLocal,
    remote: Option<Remote>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SourceLocal {
    tables_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Remote {
    output_dir: Option<String>,
    tables_dir: Option<String>,
    cloud: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    bucket: Option<String>,
    ak: Option<String>,
    sk: Option<String>,
    #[serde(rename = "useIAM")]
    use_iam: Option<bool>,
    #[serde(rename = "useSSL")]
    use_ssl: Option<bool>,
    check_bucket: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Target {
    mode: Option<String>,
    #[serde(default)]
    local: TargetLocal,
    remote: Option<Remote>,
    milvus2x: Option<Milvus2x>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TargetLocal {
    output_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Milvus2x {
    endpoint: Option<String>,
    username: Option<String>,
    password: Option<String>,
    database: Option<String>,
    grpc: Option<Grpc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Grpc {
    max_call_recv_msg_size: Option<u64>,
    max_call_send_msg_size: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Log {
    level: Option<String>,
    console: Option<bool>,
    file: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Ours {
    id_field: Option<String>,
    vector_field: Option<String>,
    #[serde(default)]
    sandbox: SandboxKeys,
    #[serde(default)]
    milvus: OursMilvus,
    index: Option<String>,
    load: Option<bool>,
    #[serde(rename = "maxGroupMiB")]
    max_group_mib: Option<u64>,
    pack_segments: Option<bool>,
    lease_seconds: Option<u64>,
    collections: Option<Vec<String>>,
    rename: Option<std::collections::BTreeMap<String, String>>,
    shards: Option<u32>,
    consistency_level: Option<String>,
    description: Option<String>,
    on_exists: Option<String>,
    cleanup: Option<String>,
    bad_data: Option<String>,
    duplicate_ids: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OursMilvus {
    tls: Option<bool>,
    ca_cert: Option<PathBuf>,
    import_timeout_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SandboxKeys {
    #[serde(rename = "memoryMiB")]
    memory_mib: Option<u64>,
    fuel: Option<f64>,
}

// ---- typed settings ----

#[derive(Clone, PartialEq)]
pub enum MetaSetting {
    /// A meta.json file (`meta.mode: local` or `mock`).
    Json(PathBuf),
    /// The 1.x meta.sqlite.
    Sqlite(PathBuf),
    /// The 1.x MySQL meta: a Go driver DSN or a mysql:// URL (holds the password).
    Mysql(String),
    /// A meta.json key in the source bucket (`meta.mode: remote`).
    Remote(String),
}

impl std::fmt::Debug for MetaSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetaSetting::Json(p) => write!(f, "Json({p:?})"),
            MetaSetting::Sqlite(p) => write!(f, "Sqlite({p:?})"),
            MetaSetting::Mysql(_) => f.write_str("Mysql(<redacted>)"),
            MetaSetting::Remote(k) => write!(f, "Remote({k:?})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StoreSetting {
    Local(PathBuf),
    Remote(RemoteStore),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// AWS S3, MinIO and any S3-compatible server.
    Aws,
    Gcp,
    Azure,
}

/// A bucket (and a key prefix in it), from `source.remote` or `target.remote`.
#[derive(Clone, PartialEq)]
pub struct RemoteStore {
    /// `source.remote` or `target.remote`, for messages.
    pub section: &'static str,
    pub cloud: Cloud,
    /// host:port of an S3-compatible server; none for the cloud's own endpoint.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub use_ssl: bool,
    pub use_iam: bool,
    pub check_bucket: bool,
    /// Key prefix: `tablesDir` of a source, `outputDir` of a target ("" for the bucket root).
    pub prefix: String,
}

impl std::fmt::Debug for RemoteStore {
    // Never print the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStore")
            .field("cloud", &self.cloud)
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RemoteStore {
    /// `s3://bucket/prefix` style, for messages.
    pub fn display(&self) -> String {
        let scheme = match self.cloud {
            Cloud::Aws => "s3",
            Cloud::Gcp => "gs",
            Cloud::Azure => "az",
        };
        format!("{scheme}://{}/{}", self.bucket, self.prefix)
    }
}

/// `source.remote` / `target.remote` into a typed store; `prefix_key` names the prefix key.
fn remote(section: &'static str, r: Option<Remote>, prefix_key: &str, problems: &mut Vec<String>) -> RemoteStore {
    let r = r.unwrap_or_default();
    let cloud = match r.cloud.as_deref().unwrap_or("aws") {
        "aws" | "minio" => Cloud::Aws,
        "gcp" => Cloud::Gcp,
        "azure" => Cloud::Azure,
        c => {
            problems.push(format!("{section}.cloud {c:?} is not one of aws (also MinIO / S3-compatible), gcp, azure"));
            Cloud::Aws
        }
    };
    let bucket = r.bucket.clone().filter(|b| !b.is_empty()).unwrap_or_else(|| {
        problems.push(format!("{section}.bucket is required"));
        String::new()
    });
    let raw_prefix = if prefix_key == "outputDir" { r.output_dir.clone() } else { r.tables_dir.clone() };
    let prefix = raw_prefix.unwrap_or_default();
    if prefix.starts_with('/') {
        problems.push(format!("{section}.{prefix_key} {prefix:?} must not start with / (it is a key prefix in the bucket)"));
    }
    let use_iam = r.use_iam.unwrap_or(false);
    // useIAM: true with ak/sk set is the guide's own template (placeholder keys): the keys are
    // ignored, as the Go tool does.
    let use_ssl = r.use_ssl.unwrap_or(false);
    match r.endpoint.as_deref() {
        Some(e) if use_ssl && e.starts_with("http://") => {
            problems.push(format!("{section}.useSSL is true but {section}.endpoint {e:?} says http://"))
        }
        Some(e) if !use_ssl && e.starts_with("https://") && r.use_ssl.is_some() => {
            problems.push(format!("{section}.useSSL is false but {section}.endpoint {e:?} says https://"))
        }
        _ => {}
    }
    let env_key = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (ak_env, sk_env) = if section == "source.remote" { (env::SOURCE_AK, env::SOURCE_SK) } else { (env::TARGET_AK, env::TARGET_SK) };
    let access_key = r.ak.filter(|k| !k.is_empty()).or_else(|| env_key(ak_env));
    let secret_key = r.sk.filter(|k| !k.is_empty()).or_else(|| env_key(sk_env));
    if !use_iam && (access_key.is_none() || secret_key.is_none()) {
        problems.push(format!("{section}.ak and .sk are required unless useIAM is true (or set {ak_env} / {sk_env})"));
    }
    RemoteStore {
        section,
        cloud,
        endpoint: r.endpoint.filter(|e| !e.is_empty()),
        region: r.region.filter(|x| !x.is_empty()).unwrap_or_else(|| "us-east-1".into()),
        bucket,
        access_key,
        secret_key,
        use_ssl,
        use_iam,
        check_bucket: r.check_bucket.unwrap_or(false),
        prefix: prefix.trim_matches('/').to_string(),
    }
}

/// The target Milvus 2.x (`target.milvus2x` and `migration.milvus`).
#[derive(Clone)]
pub struct MilvusSettings {
    /// `host:port`, as written.
    pub endpoint: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub database: String,
    pub tls: bool,
    pub ca_cert: Option<PathBuf>,
    pub max_recv_bytes: usize,
    pub max_send_bytes: usize,
    pub import_timeout: Duration,
}

impl std::fmt::Debug for MilvusSettings {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MilvusSettings")
            .field("endpoint", &self.endpoint)
            .field("username", &self.username)
            .field("database", &self.database)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
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
pub struct CollectionSettings {
    pub renames: Vec<(String, String)>,
    pub shards: u32,
    pub consistency: String,
    pub description: String,
    pub on_exists: OnExists,
    /// `migration.cleanup: delete`: remove staged npy files once a collection verified.
    pub delete_staged: bool,
}

/// What a command needs from the file.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    pub meta: bool,
    pub milvus: bool,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub workers: NonZeroUsize,
    pub loader_workers: NonZeroUsize,
    pub read_chunk: u32,
    /// Present when the command needs it (dump, migrate).
    pub meta: Option<MetaSetting>,
    /// Present when the command needs it (load, verify, migrate).
    pub milvus: Option<MilvusSettings>,
    pub index: IndexChoice,
    /// Largest npy payload of one import (`migration.maxGroupMiB`).
    pub max_group_bytes: u64,
    /// `migration.packSegments`: write small segments of a partition into shared file groups.
    pub pack_segments: bool,
    /// `migration.badData`: fail, skip or reject rows 2.x would refuse or that cannot be paired.
    pub bad_data: BadData,
    /// `migration.duplicateIds: keep-last`: only the newest copy of a repeated primary key.
    pub keep_last: bool,
    pub collection: CollectionSettings,
    /// Load collections into memory after the import.
    pub load_after: bool,
    pub source: StoreSetting,
    pub target: StoreSetting,
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
}

/// 4 GiB per import: well under the 16 GiB file (2.2/2.3) and group (2.4+) limits, and small
/// enough for 2.2/2.3's 900 s import timeout (measured ~1 GB per 10 s on 2.3.5 here).
pub const DEFAULT_MAX_GROUP_MIB: u64 = 4096;
/// `migration.leaseSeconds` when not set.
const DEFAULT_LEASE_SECONDS: u64 = 60;

pub const DEFAULT_LIMITS: Limits = Limits { memory_bytes: 256 << 20, fuel: 200_000_000_000 };

/// The config file to use: the flag, or the first default location that exists.
pub fn locate(flag: Option<&Path>) -> Result<PathBuf, SettingsError> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    DEFAULT_CONFIG_PATHS.iter().map(PathBuf::from).find(|p| p.is_file()).ok_or(SettingsError::NoConfig)
}

fn read_file(path: &Path) -> Result<File, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|err| SettingsError::Read { path: path.into(), err })?;
    if text.trim().is_empty() {
        return Ok(File::default());
    }
    serde_yaml::from_str(&text).map_err(|err| SettingsError::Yaml { path: path.into(), err })
}

/// Relative paths in the file are taken relative to the current directory, as the Go tool does.
impl Settings {
    pub fn load(path: &Path, collections: Vec<String>, needs: Needs) -> Result<Self, SettingsError> {
        let mut f = read_file(path)?;
        let mut problems = Vec::new();
        let need = |v: Option<PathBuf>, key: &str, problems: &mut Vec<String>| {
            v.filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| {
                problems.push(format!("{key} is required"));
                PathBuf::new()
            })
        };

        if let Some(mode) = f.dumper.worker.work_mode.as_deref().filter(|m| *m != "milvus1x") {
            problems.push(format!("dumper.worker.workMode {mode:?}: only milvus1x is supported"));
        }
        let workers = match f.dumper.worker.limit {
            None => NonZeroUsize::new(2).unwrap(),
            Some(n) => NonZeroUsize::new(n).unwrap_or_else(|| {
                problems.push("dumper.worker.limit must be at least 1".into());
                NonZeroUsize::MIN
            }),
        };
        let kb = f.dumper.worker.reader.buffer_size.unwrap_or(1024);
        if !(4..=16 * 1024).contains(&kb) {
            problems.push(format!("dumper.worker.reader.bufferSize {kb} KB is outside 4..16384"));
        }
        let read_chunk = (kb.clamp(4, 16 * 1024) * 1024) as u32;

        let loader_workers = match f.loader.worker.limit {
            None => NonZeroUsize::new(2).unwrap(),
            Some(n) => NonZeroUsize::new(n).unwrap_or_else(|| {
                problems.push("loader.worker.limit must be at least 1".into());
                NonZeroUsize::MIN
            }),
        };
        let meta = match f.meta.mode.as_deref().unwrap_or("") {
            "" if !needs.meta => MetaSetting::Json(PathBuf::new()),
            "local" => MetaSetting::Json(need(f.meta.local_file, "meta.localFile (meta.mode local)", &mut problems)),
            "mock" => MetaSetting::Json(need(f.meta.mock_file, "meta.mockFile (meta.mode mock)", &mut problems)),
            "sqlite" => MetaSetting::Sqlite(need(f.meta.sqlite_file, "meta.sqliteFile (meta.mode sqlite)", &mut problems)),
            "mysql" => {
                let url = f.meta.mysql_url.clone().filter(|u| !u.is_empty()).unwrap_or_default();
                if url.is_empty() {
                    problems.push("meta.mysqlUrl is required (meta.mode mysql)".into());
                } else if let Err(e) = crate::caps::meta_db::parse_dsn(&url) {
                    problems.push(format!("meta.mysqlUrl: {e}"));
                }
                MetaSetting::Mysql(url)
            }
            "remote" => {
                if f.source.mode.as_deref() != Some("remote") {
                    problems.push("meta.mode remote reads meta.remoteMetaFile from the source bucket: it needs source.mode remote".into());
                }
                MetaSetting::Remote(f.meta.remote_meta_file.clone().filter(|k| !k.is_empty()).unwrap_or_else(|| {
                    problems.push("meta.remoteMetaFile is required (meta.mode remote)".into());
                    String::new()
                }))
            }
            "" => {
                problems.push("meta.mode is required (local, mock or sqlite)".into());
                MetaSetting::Json(PathBuf::new())
            }
            m => {
                problems.push(format!("meta.mode {m:?} is not one of local, mock, sqlite, mysql, remote"));
                MetaSetting::Json(PathBuf::new())
            }
        };
        let source = match f.source.mode.as_deref().unwrap_or("local") {
            "local" => StoreSetting::Local(need(f.source.local.tables_dir, "source.local.tablesDir", &mut problems)),
            "remote" => StoreSetting::Remote(remote("source.remote", f.source.remote.take(), "tablesDir", &mut problems)),
            m => {
                problems.push(format!("source.mode {m:?} must be local or remote"));
                StoreSetting::Local(PathBuf::new())
            }
        };
        let target = match f.target.mode.as_deref().unwrap_or("") {
            "local" => StoreSetting::Local(need(f.target.local.output_dir, "target.local.outputDir", &mut problems)),
            "remote" => StoreSetting::Remote(remote("target.remote", f.target.remote.take(), "outputDir", &mut problems)),
            "" => {
                problems.push("target.mode is required (local or remote)".into());
                StoreSetting::Local(PathBuf::new())
            }
            m => {
                problems.push(format!("target.mode {m:?} must be local or remote"));
                StoreSetting::Local(PathBuf::new())
            }
        };
        let meta = needs.meta.then_some(meta);
        // Parsed when needed, or when configured (plan checks it if it is there).
        let configured = f.target.milvus2x.as_ref().and_then(|m| m.endpoint.as_ref()).is_some_and(|e| !e.trim().is_empty());
        let milvus = if needs.milvus || configured {
            let m = f.target.milvus2x.unwrap_or_default();
            let endpoint = m.endpoint.filter(|e| !e.trim().is_empty()).unwrap_or_else(|| {
                problems.push("target.milvus2x.endpoint is required (host:port of the Milvus 2.x server)".into());
                String::new()
            });
            let grpc = m.grpc.unwrap_or_default();
            let ours = &f.migration.milvus;
            Some(MilvusSettings {
                endpoint,
                username: m.username.filter(|u| !u.is_empty()),
                password: m.password.filter(|p| !p.is_empty()).or_else(|| std::env::var(env::MILVUS_PASSWORD).ok()),
                database: m.database.filter(|d| !d.is_empty()).unwrap_or_else(|| "default".into()),
                tls: ours.tls.unwrap_or(false),
                ca_cert: ours.ca_cert.clone(),
                max_recv_bytes: grpc.max_call_recv_msg_size.unwrap_or(256 << 20) as usize,
                max_send_bytes: grpc.max_call_send_msg_size.unwrap_or(64 << 20) as usize,
                import_timeout: Duration::from_secs(ours.import_timeout_seconds.unwrap_or(3600)),
            })
        } else {
            None
        };
        let index = match f.migration.index.as_deref().unwrap_or("keep") {
            "keep" => IndexChoice::Keep,
            "autoindex" | "AUTOINDEX" => IndexChoice::AutoIndex,
            "none" => IndexChoice::None,
            other => {
                problems.push(format!("migration.index {other:?} is not one of keep, autoindex, none"));
                IndexChoice::Keep
            }
        };
        let consistency = match f.migration.consistency_level.as_deref().unwrap_or("Bounded") {
            c @ ("Strong" | "Session" | "Bounded" | "Eventually") => c.to_string(),
            c => {
                problems.push(format!("migration.consistencyLevel {c:?} is not one of Strong, Session, Bounded, Eventually"));
                String::new()
            }
        };
        let shards = f.migration.shards.unwrap_or(0);
        if shards > 16 {
            problems.push(format!("migration.shards {shards} is more than Milvus allows (16)"));
        }
        let on_exists = match f.migration.on_exists.as_deref().unwrap_or("append") {
            "fail" => OnExists::Fail,
            "append" => OnExists::Append,
            "skip" => OnExists::Skip,
            o => {
                problems.push(format!("migration.onExists {o:?} is not one of fail, append, skip"));
                OnExists::Append
            }
        };
        let bad_data = match f.migration.bad_data.as_deref().unwrap_or("fail") {
            "fail" => BadData::Fail,
            "skip" => BadData::Skip,
            "reject" => BadData::Reject,
            b => {
                problems.push(format!("migration.badData {b:?} is not one of fail, skip, reject"));
                BadData::Fail
            }
        };
        let keep_last = match f.migration.duplicate_ids.as_deref().unwrap_or("keep-all") {
            "keep-all" => false,
            "keep-last" => true,
            d => {
                problems.push(format!("migration.duplicateIds {d:?} is not one of keep-all, keep-last"));
                false
            }
        };
        let delete_staged = match f.migration.cleanup.as_deref().unwrap_or("keep") {
            "keep" => false,
            "delete" => true,
            c => {
                problems.push(format!("migration.cleanup {c:?} is not one of keep, delete"));
                false
            }
        };
        let target_collections = CollectionSettings {
            delete_staged,
            renames: f.migration.rename.clone().unwrap_or_default().into_iter().collect(),
            shards,
            consistency,
            description: f.migration.description.clone().unwrap_or_default(),
            on_exists,
        };
        let mut collections = collections;
        if collections.is_empty() {
            collections = f.migration.collections.clone().unwrap_or_default();
        }
        if let (StoreSetting::Local(src), StoreSetting::Local(out)) = (&source, &target) {
            let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
            if abs(out).starts_with(abs(src)) {
                problems.push(format!(
                    "target.local.outputDir {} is inside source.local.tablesDir {}: the dump would write into the 1.x installation",
                    out.display(),
                    src.display()
                ));
            }
        }
        let (id_field, vector_field) = (
            f.migration.id_field.clone().unwrap_or_else(|| "id".into()),
            f.migration.vector_field.clone().unwrap_or_else(|| "data".into()),
        );
        if id_field == vector_field {
            problems.push(format!("migration.idField and migration.vectorField are both {id_field:?}: the two fields need different names"));
        }
        if let Some(ca) = &f.migration.milvus.ca_cert {
            if !f.migration.milvus.tls.unwrap_or(false) {
                problems.push(format!("migration.milvus.caCert {} is set but migration.milvus.tls is false", ca.display()));
            }
        }
        let mut limits = DEFAULT_LIMITS;
        if let Some(mib) = f.migration.sandbox.memory_mib {
            if !(16..=4096).contains(&mib) {
                problems.push(format!("migration.sandbox.memoryMiB {mib} is outside 16..4096"));
            }
            limits.memory_bytes = (mib.clamp(16, 4096) << 20) as usize;
        }
        if let Some(fuel) = f.migration.sandbox.fuel {
            if !(fuel >= 1e6 && fuel <= 1e15) {
                problems.push(format!("migration.sandbox.fuel {fuel} is outside 1e6..1e15"));
            }
            limits.fuel = fuel.clamp(1e6, 1e15) as u64;
        }
        let lease_seconds = f.migration.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS);
        if !(3..=86_400).contains(&lease_seconds) {
            problems.push(format!("migration.leaseSeconds {lease_seconds} is outside 3..86400"));
        }
        if !problems.is_empty() {
            return Err(SettingsError::Invalid { path: path.into(), problems });
        }
        Ok(Settings {
            lease_ttl: std::time::Duration::from_secs(lease_seconds),
            wait_for_lease: false,
            share: None,
            workers,
            loader_workers,
            milvus,
            index,
            load_after: f.migration.load.unwrap_or(true),
            max_group_bytes: f.migration.max_group_mib.unwrap_or(DEFAULT_MAX_GROUP_MIB) << 20,
            pack_segments: f.migration.pack_segments.unwrap_or(true),
            bad_data,
            keep_last,
            collection: target_collections,
            read_chunk,
            meta,
            source,
            target,
            collections,
            id_field,
            vector_field,
            limits,
            log_level: f.log.level,
        })
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
