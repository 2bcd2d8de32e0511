//! migration.yaml (the Go tool's keys plus our `migration` section) parsed once into typed
//! settings. Precedence: command-line flags, then the file, then defaults.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::job::model::*;

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

/// `migration.leaseSeconds` when not set.
const DEFAULT_LEASE_SECONDS: u64 = 60;

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
    load_mode: Option<String>,
    format: Option<String>,
    #[serde(rename = "insertBatchMiB")]
    insert_batch_mib: Option<u64>,
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

/// What a command needs from the file.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    pub meta: bool,
    pub milvus: bool,
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
impl Job {
    /// migration.yaml into the job model.
    pub fn load(path: &Path, collections: Vec<String>, needs: Needs) -> Result<Self, SettingsError> {
        Self::from_file(read_file(path)?, path, collections, needs)
    }

    /// A document of migration.yaml's shape, built by another front end (the service builds one
    /// from a job request and the tenant's grants), into the job model: the same checks and
    /// defaults as the file. `origin` names it in messages.
    pub fn from_document(doc: serde_yaml::Value, origin: &Path, collections: Vec<String>, needs: Needs) -> Result<Self, SettingsError> {
        let f: File = serde_yaml::from_value(doc).map_err(|err| SettingsError::Yaml { path: origin.into(), err })?;
        Self::from_file(f, origin, collections, needs)
    }

    fn from_file(mut f: File, path: &Path, collections: Vec<String>, needs: Needs) -> Result<Self, SettingsError> {
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
            "" if !needs.meta => MetaSpec::Json(PathBuf::new()),
            "local" => MetaSpec::Json(need(f.meta.local_file, "meta.localFile (meta.mode local)", &mut problems)),
            "mock" => MetaSpec::Json(need(f.meta.mock_file, "meta.mockFile (meta.mode mock)", &mut problems)),
            "sqlite" => MetaSpec::Sqlite(need(f.meta.sqlite_file, "meta.sqliteFile (meta.mode sqlite)", &mut problems)),
            "mysql" => {
                let url = f.meta.mysql_url.clone().filter(|u| !u.is_empty()).unwrap_or_default();
                if url.is_empty() {
                    problems.push("meta.mysqlUrl is required (meta.mode mysql)".into());
                } else if let Err(e) = crate::caps::meta_db::parse_dsn(&url) {
                    problems.push(format!("meta.mysqlUrl: {e}"));
                }
                MetaSpec::Mysql(url)
            }
            "remote" => {
                if f.source.mode.as_deref() != Some("remote") {
                    problems.push("meta.mode remote reads meta.remoteMetaFile from the source bucket: it needs source.mode remote".into());
                }
                MetaSpec::Remote(f.meta.remote_meta_file.clone().filter(|k| !k.is_empty()).unwrap_or_else(|| {
                    problems.push("meta.remoteMetaFile is required (meta.mode remote)".into());
                    String::new()
                }))
            }
            "" => {
                problems.push("meta.mode is required (local, mock or sqlite)".into());
                MetaSpec::Json(PathBuf::new())
            }
            m => {
                problems.push(format!("meta.mode {m:?} is not one of local, mock, sqlite, mysql, remote"));
                MetaSpec::Json(PathBuf::new())
            }
        };
        let source = match f.source.mode.as_deref().unwrap_or("local") {
            "local" => StoreSpec::Local(need(f.source.local.tables_dir, "source.local.tablesDir", &mut problems)),
            "remote" => StoreSpec::Remote(remote("source.remote", f.source.remote.take(), "tablesDir", &mut problems)),
            m => {
                problems.push(format!("source.mode {m:?} must be local or remote"));
                StoreSpec::Local(PathBuf::new())
            }
        };
        let target = match f.target.mode.as_deref().unwrap_or("") {
            "local" => StoreSpec::Local(need(f.target.local.output_dir, "target.local.outputDir", &mut problems)),
            "remote" => StoreSpec::Remote(remote("target.remote", f.target.remote.take(), "outputDir", &mut problems)),
            "" => {
                problems.push("target.mode is required (local or remote)".into());
                StoreSpec::Local(PathBuf::new())
            }
            m => {
                problems.push(format!("target.mode {m:?} must be local or remote"));
                StoreSpec::Local(PathBuf::new())
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
            Some(MilvusConnection {
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
        let batch_mib = f.migration.insert_batch_mib.unwrap_or(16);
        if !(1..=48).contains(&batch_mib) {
            problems.push(format!("migration.insertBatchMiB {batch_mib} is outside 1..48 (Milvus takes at most 64 MiB per request)"));
        }
        let load_mode = match f.migration.load_mode.as_deref().unwrap_or("import") {
            "import" => LoadMode::Import,
            "insert" => LoadMode::Insert { batch_bytes: batch_mib.clamp(1, 48) << 20 },
            m => {
                problems.push(format!("migration.loadMode {m:?} is not one of import, insert"));
                LoadMode::Import
            }
        };
        let format = match f.migration.format.as_deref().unwrap_or("numpy") {
            "numpy" => FileFormat::Numpy,
            "parquet" => FileFormat::Parquet,
            m => {
                problems.push(format!("migration.format {m:?} is not one of numpy, parquet"));
                FileFormat::Numpy
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
        let target_collections = CollectionOptions {
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
        if let (StoreSpec::Local(src), StoreSpec::Local(out)) = (&source, &target) {
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
        Ok(Job {
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
            load_mode,
            format,
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
            cancel: Default::default(),
            fence: Default::default(),
            units: Default::default(),
            milvus_client: None,
        })
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
