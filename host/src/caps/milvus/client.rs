//! The tonic client for the target Milvus: one connection per process, domain-shaped methods,
//! server statuses and transport failures turned into typed errors that name the endpoint.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use prost::Message;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::read_ts::ReadTs;
use crate::bindings::{target as wit, types};
use crate::pb::api::milvus_service_client::MilvusServiceClient;
use crate::pb::{api, common, schema};

/// The target Milvus 2.x (`target.milvus2x` and `migration.milvus`).
#[derive(Clone)]
pub struct MilvusConnection {
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

impl std::fmt::Debug for MilvusConnection {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MilvusConnection")
            .field("endpoint", &self.endpoint)
            .field("username", &self.username)
            .field("database", &self.database)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Between polls of a long-running server task: a twentieth of the time waited so far, within
/// these bounds. A task that ends is seen at most ~5% (or 200 ms, or 1 s) late: a 2 s import is
/// not waited on for 3 s, nor a 20 s one for 22 s. Not faster: Milvus 2.3.5's proxy crashes (nil pointer in GetImportState, milvus#35539)
/// when a GetImportState call is cancelled, e.g. by a client killed mid-call, so the time spent
/// inside that call is kept small.
const POLL_FIRST: Duration = Duration::from_millis(200);
const POLL_MAX: Duration = Duration::from_secs(1);
const DEFAULT_PARTITION: &str = "_default";

/// Adds credentials and the database to every call.
#[derive(Clone)]
pub struct CallMeta {
    auth: Option<MetadataValue<Ascii>>,
    db: MetadataValue<Ascii>,
}

impl tonic::service::Interceptor for CallMeta {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(a) = &self.auth {
            req.metadata_mut().insert("authorization", a.clone());
        }
        req.metadata_mut().insert("dbname", self.db.clone());
        Ok(req)
    }
}

type Client = MilvusServiceClient<InterceptedService<Channel, CallMeta>>;

/// How the server finds a dumped file.
#[derive(Debug, Clone)]
pub enum ImportPaths {
    /// A local target read by a local-storage Milvus on this machine: absolute paths.
    Local(PathBuf),
    /// A target in Milvus' own bucket: object keys under this prefix.
    Bucket { prefix: String },
}

/// A connected client. Cloning shares the connection (tonic's channel), so the service keeps
/// one per tenant and granted connection and gives each job a copy with its own import paths.
#[derive(Clone)]
pub struct MilvusConn {
    pub(super) client: Client,
    pub(super) endpoint: String,
    pub(super) db: String,
    pub version: String,
    import_timeout: Duration,
    paths: ImportPaths,
    /// target.milvus2x.username, to say which setting an authentication failure is about.
    user: Option<String>,
    /// migration.milvus.tls, to suggest it when a plain connection is torn down.
    tls: bool,
    /// What counts and queries must see, per collection (`read_ts.rs`).
    read_ts: Arc<ReadTs>,
}

fn header(v: &str, what: &str) -> anyhow::Result<MetadataValue<Ascii>> {
    v.parse().map_err(|_| anyhow::anyhow!("{what} is not valid in a gRPC header"))
}

/// Why the connection failed, naming the setting to look at: a certificate the client does not
/// trust is about migration.milvus.caCert, anything else about the endpoint.
fn connect_error(s: &MilvusConnection, chain: &str) -> anyhow::Error {
    let tls_trust = ["UnknownIssuer", "invalid peer certificate", "certificate verify failed", "NotValidForName", "BadSignature"];
    if !tls_trust.iter().any(|t| chain.contains(t)) {
        return anyhow::anyhow!("cannot reach Milvus at {} (target.milvus2x.endpoint): {chain}", s.endpoint);
    }
    match &s.ca_cert {
        Some(ca) => anyhow::anyhow!(
            "TLS to Milvus at {}: the server's certificate is not signed by the CA in migration.milvus.caCert {} ({chain})",
            s.endpoint,
            ca.display()
        ),
        None => anyhow::anyhow!(
            "TLS to Milvus at {}: the server's certificate is not trusted by this system's roots; set migration.milvus.caCert \
             to the CA that signed it ({chain})",
            s.endpoint
        ),
    }
}

/// Growing pauses between polls of a long-running server task, up to a time limit.
struct Backoff {
    started: Instant,
    limit: Duration,
    what: String,
}

impl Backoff {
    fn new(limit: Duration, what: String) -> Self {
        Backoff { started: Instant::now(), limit, what }
    }

    /// The pause before the next poll, `elapsed` into the wait.
    fn pause(elapsed: Duration) -> Duration {
        (elapsed / 20).clamp(POLL_FIRST, POLL_MAX)
    }

    /// Sleeps before the next poll, or fails once the limit has passed.
    async fn wait(&mut self) -> Result<(), types::Error> {
        if self.started.elapsed() > self.limit {
            return Err(types::Error::Unavailable(format!(
                "{}: not done after {} s (migration.milvus.importTimeoutSeconds); a re-run waits on it again",
                self.what,
                self.limit.as_secs()
            )));
        }
        tokio::time::sleep(Self::pause(self.started.elapsed())).await;
        Ok(())
    }
}

impl MilvusConn {
    pub async fn connect(s: &MilvusConnection, paths: ImportPaths) -> anyhow::Result<Self> {
        let url = if s.endpoint.contains("://") {
            s.endpoint.clone()
        } else {
            format!("{}://{}", if s.tls { "https" } else { "http" }, s.endpoint)
        };
        let mut ep = Endpoint::from_shared(url.clone())
            .map_err(|e| anyhow::anyhow!("target.milvus2x.endpoint {:?} is not a valid address: {e}", s.endpoint))?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .tcp_nodelay(true);
        let tls = s.tls || url.starts_with("https://");
        if tls {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = &s.ca_cert {
                let pem = std::fs::read(ca).map_err(|e| anyhow::anyhow!("migration.milvus.caCert {}: {e}", ca.display()))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            ep = ep.tls_config(tls)?;
        }
        let channel = ep.connect().await.map_err(|e| connect_error(s, &error_chain(&e)))?;
        let auth = match &s.username {
            Some(user) => {
                let token = format!("{user}:{}", s.password.as_deref().unwrap_or(""));
                Some(header(&base64::engine::general_purpose::STANDARD.encode(token), "the username")?)
            }
            None => None,
        };
        let meta = |db: &str| -> anyhow::Result<CallMeta> { Ok(CallMeta { auth: auth.clone(), db: header(db, "target.milvus2x.database")? }) };
        let client = |m: CallMeta| {
            MilvusServiceClient::with_interceptor(channel.clone(), m)
                .max_decoding_message_size(s.max_recv_bytes.max(4 << 20))
                .max_encoding_message_size(s.max_send_bytes.max(4 << 20))
        };
        let mut conn = MilvusConn {
            client: client(meta("default")?),
            endpoint: s.endpoint.clone(),
            db: "default".into(),
            version: String::new(),
            import_timeout: s.import_timeout,
            paths,
            user: s.username.clone(),
            tls,
            read_ts: Default::default(),
        };
        conn.version = conn.server_version().await.map_err(|e| {
            // A TLS-only server tears a plain HTTP/2 call down (tonic: Cancelled or Unknown).
            let torn = matches!(&e, types::Error::Remote(r) if r.code == tonic::Code::Cancelled as i32 || r.code == tonic::Code::Unknown as i32);
            let hint = if torn && !conn.tls { "; if this Milvus serves TLS (common.security.tlsMode), set migration.milvus.tls: true" } else { "" };
            anyhow::anyhow!("{}{hint}", crate::caps::describe(&e))
        })?;
        if s.database != "default" {
            conn.ensure_database(&s.database).await.map_err(|e| anyhow::anyhow!("{}", crate::caps::describe(&e)))?;
        }
        conn.client = client(meta(&s.database)?);
        conn.db = s.database.clone();
        Ok(conn)
    }

    /// The same connection, importing from `paths`.
    pub fn with_paths(&self, paths: ImportPaths) -> MilvusConn {
        MilvusConn { paths, ..self.clone() }
    }

    /// A transport or gRPC failure, naming the endpoint; authentication failures say so.
    pub(super) fn grpc_error(&self, call: &str, e: tonic::Status) -> types::Error {
        let msg = format!("Milvus at {} ({call}): {}", self.endpoint, e.message());
        match e.code() {
            tonic::Code::Unauthenticated => types::Error::AccessDenied(match &self.user {
                None => format!("{msg}: this Milvus requires a login; set target.milvus2x.username and target.milvus2x.password"),
                Some(u) => format!("{msg}: Milvus refused user {u:?}; check target.milvus2x.password (and target.milvus2x.username)"),
            }),
            tonic::Code::PermissionDenied => types::Error::AccessDenied(format!(
                "{msg}: user {:?} lacks a privilege this step needs; grant it, or set another target.milvus2x.username",
                self.user.as_deref().unwrap_or("")
            )),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => types::Error::Unavailable(msg),
            tonic::Code::Unimplemented => types::Error::Unsupported(msg),
            c => types::Error::Remote(types::RemoteError { code: c as i32, reason: msg }),
        }
    }

    /// A status is a success only when both the legacy `error_code` and `code` are 0.
    pub(super) fn check(&self, call: &str, status: Option<common::Status>) -> Result<(), types::Error> {
        let s = status.unwrap_or_default();
        if s.error_code == 0 && s.code == 0 {
            return Ok(());
        }
        let code = if s.code != 0 { s.code } else { s.error_code };
        Err(types::Error::Remote(types::RemoteError { code, reason: format!("Milvus at {} ({call}): {}", self.endpoint, s.reason) }))
    }

    pub async fn server_version(&self) -> Result<String, types::Error> {
        match self.client.clone().get_version(api::GetVersionRequest {}).await {
            Ok(r) => {
                let r = r.into_inner();
                self.check("GetVersion", r.status)?;
                Ok(r.version)
            }
            Err(e) if e.code() == tonic::Code::Unimplemented => Ok("unknown (GetVersion not implemented)".into()),
            Err(e) => Err(self.grpc_error("GetVersion", e)),
        }
    }

    async fn ensure_database(&self, db: &str) -> Result<(), types::Error> {
        let r = self.client.clone().list_databases(api::ListDatabasesRequest::default()).await;
        let r = match r {
            Ok(r) => r.into_inner(),
            Err(e) if e.code() == tonic::Code::Unimplemented => {
                return Err(types::Error::Unsupported(format!(
                    "Milvus at {} has no databases (before 2.2.9); remove target.milvus2x.database or set it to default",
                    self.endpoint
                )))
            }
            Err(e) => return Err(self.grpc_error("ListDatabases", e)),
        };
        self.check("ListDatabases", r.status)?;
        if !r.db_names.iter().any(|d| d == db) {
            let req = api::CreateDatabaseRequest { db_name: db.into(), ..Default::default() };
            let s = self.client.clone().create_database(req).await.map_err(|e| self.grpc_error("CreateDatabase", e))?;
            self.check("CreateDatabase", Some(s.into_inner()))?;
            tracing::info!("created database {db:?}");
        }
        Ok(())
    }

    pub async fn describe_collection(&self, name: &str) -> Result<Option<wit::CollectionInfo>, types::Error> {
        let req = api::HasCollectionRequest { db_name: self.db.clone(), collection_name: name.into(), ..Default::default() };
        let r = self.client.clone().has_collection(req).await.map_err(|e| self.grpc_error("HasCollection", e))?.into_inner();
        self.check("HasCollection", r.status)?;
        if !r.value {
            return Ok(None);
        }
        let req = api::DescribeCollectionRequest { db_name: self.db.clone(), collection_name: name.into(), ..Default::default() };
        let r = self.client.clone().describe_collection(req).await.map_err(|e| self.grpc_error("DescribeCollection", e))?.into_inner();
        self.check("DescribeCollection", r.status)?;
        let id = r.collection_id;
        let fields = r
            .schema
            .unwrap_or_default()
            .fields
            .into_iter()
            .map(|f| wit::FieldInfo {
                field_type: match schema::DataType::try_from(f.data_type) {
                    Ok(schema::DataType::Int64) => wit::FieldType::Int64,
                    Ok(schema::DataType::FloatVector) => wit::FieldType::FloatVector,
                    Ok(schema::DataType::BinaryVector) => wit::FieldType::BinaryVector,
                    _ => wit::FieldType::Other(f.data_type),
                },
                dim: f.type_params.iter().find(|kv| kv.key == "dim").and_then(|kv| kv.value.parse().ok()),
                name: f.name,
                is_primary: f.is_primary_key,
                auto_id: f.auto_id,
            })
            .collect();
        let req = api::ShowPartitionsRequest { db_name: self.db.clone(), collection_name: name.into(), ..Default::default() };
        let r = self.client.clone().show_partitions(req).await.map_err(|e| self.grpc_error("ShowPartitions", e))?.into_inner();
        self.check("ShowPartitions", r.status)?;
        Ok(Some(wit::CollectionInfo { id, fields, partitions: r.partition_names }))
    }

    pub async fn create_collection(&self, c: &wit::NewCollection) -> Result<(), types::Error> {
        let kv = |k: &str, v: String| common::KeyValuePair { key: k.into(), value: v };
        let schema = schema::CollectionSchema {
            name: c.name.clone(),
            description: c.description.clone(),
            auto_id: false,
            enable_dynamic_field: false,
            fields: vec![
                schema::FieldSchema {
                    field_id: 100,
                    name: c.id_field.clone(),
                    is_primary_key: true,
                    description: "the 1.x id".into(),
                    data_type: schema::DataType::Int64 as i32,
                    auto_id: false,
                    ..Default::default()
                },
                schema::FieldSchema {
                    field_id: 101,
                    name: c.vector_field.clone(),
                    description: "the 1.x vector".into(),
                    data_type: if c.binary { schema::DataType::BinaryVector } else { schema::DataType::FloatVector } as i32,
                    type_params: vec![kv("dim", c.dim.to_string())],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let req = api::CreateCollectionRequest {
            db_name: self.db.clone(),
            collection_name: c.name.clone(),
            schema: schema.encode_to_vec(),
            shards_num: c.shards as i32,
            consistency_level: match c.consistency.as_str() {
                "Strong" => common::ConsistencyLevel::Strong,
                "Session" => common::ConsistencyLevel::Session,
                "Eventually" => common::ConsistencyLevel::Eventually,
                _ => common::ConsistencyLevel::Bounded,
            } as i32,
            ..Default::default()
        };
        let s = self.client.clone().create_collection(req).await.map_err(|e| self.grpc_error("CreateCollection", e))?;
        self.check("CreateCollection", Some(s.into_inner()))
    }

    pub async fn create_partition(&self, collection: &str, partition: &str) -> Result<(), types::Error> {
        let req = api::CreatePartitionRequest {
            db_name: self.db.clone(),
            collection_name: collection.into(),
            partition_name: partition.into(),
            ..Default::default()
        };
        let s = self.client.clone().create_partition(req).await.map_err(|e| self.grpc_error("CreatePartition", e))?;
        self.check("CreatePartition", Some(s.into_inner()))
    }

    async fn index_descriptions(&self, collection: &str, field: &str) -> Result<Vec<api::IndexDescription>, types::Error> {
        let req = api::DescribeIndexRequest {
            db_name: self.db.clone(),
            collection_name: collection.into(),
            field_name: field.into(),
            ..Default::default()
        };
        let r = self.client.clone().describe_index(req).await.map_err(|e| self.grpc_error("DescribeIndex", e))?.into_inner();
        let s = r.status.clone().unwrap_or_default();
        // No index is not an error for us: 2.3+ says code 700, 2.2 error_code IndexNotExist (25).
        if s.code == 700 || s.error_code == 25 || s.reason.contains("index not found") || s.reason.contains("index not exist") {
            return Ok(vec![]);
        }
        self.check("DescribeIndex", r.status)?;
        Ok(r.index_descriptions)
    }

    pub async fn describe_indexes(&self, collection: &str) -> Result<Vec<wit::IndexInfo>, types::Error> {
        let get = |d: &api::IndexDescription, k: &str| d.params.iter().find(|kv| kv.key == k).map(|kv| kv.value.clone()).unwrap_or_default();
        Ok(self
            .index_descriptions(collection, "")
            .await?
            .iter()
            .map(|d| wit::IndexInfo {
                field: d.field_name.clone(),
                index_type: get(d, "index_type"),
                metric: get(d, "metric_type"),
                params: Some(get(d, "params")).filter(|p| !p.is_empty()).unwrap_or_else(|| "{}".into()),
            })
            .collect())
    }

    pub async fn create_index(&self, collection: &str, index: &wit::IndexInfo) -> Result<(), types::Error> {
        let kv = |k: &str, v: &str| common::KeyValuePair { key: k.into(), value: v.into() };
        let req = api::CreateIndexRequest {
            db_name: self.db.clone(),
            collection_name: collection.into(),
            field_name: index.field.clone(),
            extra_params: vec![kv("index_type", &index.index_type), kv("metric_type", &index.metric), kv("params", &index.params)],
            ..Default::default()
        };
        let s = self.client.clone().create_index(req).await.map_err(|e| self.grpc_error("CreateIndex", e))?;
        self.check("CreateIndex", Some(s.into_inner()))?;
        let what = format!("index on {collection}.{}", index.field);
        let mut backoff = Backoff::new(self.import_timeout, what.clone());
        loop {
            let ds = self.index_descriptions(collection, &index.field).await?;
            crate::crash::point("index-polled");
            if let Some(d) = ds.first() {
                match common::IndexState::try_from(d.state) {
                    Ok(common::IndexState::Failed) => {
                        let reason = format!("{what} failed: {}", d.index_state_fail_reason);
                        return Err(types::Error::Remote(types::RemoteError { code: 0, reason }));
                    }
                    Ok(common::IndexState::Finished) if d.indexed_rows >= d.total_rows && d.pending_index_rows == 0 => return Ok(()),
                    _ => {}
                }
            }
            backoff.wait().await?;
        }
    }

    pub async fn load(&self, collection: &str) -> Result<(), types::Error> {
        let req = api::LoadCollectionRequest { db_name: self.db.clone(), collection_name: collection.into(), ..Default::default() };
        let s = self.client.clone().load_collection(req).await.map_err(|e| self.grpc_error("LoadCollection", e))?;
        self.check("LoadCollection", Some(s.into_inner()))?;
        let mut backoff = Backoff::new(self.import_timeout, format!("loading {collection}"));
        loop {
            let req = api::GetLoadingProgressRequest { collection_name: collection.into(), db_name: self.db.clone(), ..Default::default() };
            let r = self.client.clone().get_loading_progress(req).await.map_err(|e| self.grpc_error("GetLoadingProgress", e))?.into_inner();
            self.check("GetLoadingProgress", r.status)?;
            if r.progress >= 100 {
                return Ok(());
            }
            backoff.wait().await?;
        }
    }

    /// What the server reads for a file of the target store.
    fn server_path(&self, file: &str) -> String {
        match &self.paths {
            ImportPaths::Local(root) => root.join(file).to_string_lossy().into_owned(),
            ImportPaths::Bucket { prefix } if prefix.is_empty() => file.to_string(),
            ImportPaths::Bucket { prefix } => format!("{prefix}/{file}"),
        }
    }

    pub async fn import_files(&self, collection: &str, partition: &str, files: &[String]) -> Result<i64, types::Error> {
        let req = api::ImportRequest {
            collection_name: collection.into(),
            // Empty means the default partition on every version.
            partition_name: if partition == DEFAULT_PARTITION { String::new() } else { partition.into() },
            files: files.iter().map(|f| self.server_path(f)).collect(),
            db_name: self.db.clone(),
            ..Default::default()
        };
        // A status in the reply is the server's answer: nothing was imported. A transport error
        // may have lost the reply of an import the server took: in doubt (unavailable).
        let r = self.client.clone().import(req).await.map_err(|e| in_doubt(self.grpc_error("Import", e)))?.into_inner();
        self.check("Import", r.status)?;
        crate::crash::point("import-submitted");
        r.tasks.first().copied().ok_or_else(|| types::Error::Other(format!("Milvus at {}: Import returned no task id", self.endpoint)))
    }

    /// A server path back as a target-store path (the inverse of `server_path`); paths the
    /// target does not hold stay as they are, so they never match a group.
    fn store_path(&self, server: &str) -> String {
        let rest = match &self.paths {
            ImportPaths::Local(root) => std::path::Path::new(server).strip_prefix(root).ok().and_then(|p| p.to_str()).map(str::to_string),
            ImportPaths::Bucket { prefix } if prefix.is_empty() => Some(server.to_string()),
            ImportPaths::Bucket { prefix } => server.strip_prefix(prefix.as_str()).and_then(|r| r.strip_prefix('/')).map(str::to_string),
        };
        rest.unwrap_or_else(|| server.to_string())
    }

    /// The server paths in a comma-joined `files` info. A path may itself hold a comma (an
    /// output directory, a partition tag), so the list is cut only at a comma that ends an
    /// `.npy` file name and starts a path under the import root.
    fn split_files(&self, joined: &str) -> Vec<String> {
        let root = match &self.paths {
            ImportPaths::Local(root) => format!("{}/", root.to_string_lossy()),
            ImportPaths::Bucket { prefix } if prefix.is_empty() => String::new(),
            ImportPaths::Bucket { prefix } => format!("{prefix}/"),
        };
        split_file_list(joined, &root)
    }

    pub async fn list_imports(&self, collection: &str) -> Result<Vec<wit::ImportTask>, types::Error> {
        let req = api::ListImportTasksRequest { collection_name: collection.into(), limit: 0, db_name: self.db.clone() };
        let r = self.client.clone().list_import_tasks(req).await.map_err(|e| self.grpc_error("ListImportTasks", e))?.into_inner();
        self.check("ListImportTasks", r.status)?;
        Ok(r.tasks
            .into_iter()
            .map(|t| {
                // 2.2/2.3 list a task's files, comma-joined, under `files`; 2.4+ do not.
                let files = t.infos.iter().find(|kv| kv.key == "files").map(|kv| self.split_files(&kv.value).iter().map(|f| self.store_path(f)).collect());
                let state = match common::ImportState::try_from(t.state) {
                    Ok(common::ImportState::ImportCompleted) => wit::ImportState::Completed,
                    Ok(common::ImportState::ImportFailed | common::ImportState::ImportFailedAndCleaned) => wit::ImportState::Failed,
                    Ok(common::ImportState::ImportPending) => wit::ImportState::Pending,
                    _ => wit::ImportState::Running,
                };
                // 2.4+ report id 0 for every task: no id to wait on, so no files to match either.
                let files = if t.id == 0 { None } else { files };
                wit::ImportTask { id: t.id, state, files }
            })
            .collect())
    }

    pub async fn await_import(&self, task: i64) -> Result<wit::ImportOutcome, types::Error> {
        let mut backoff = Backoff::new(self.import_timeout, format!("import task {task}"));
        loop {
            let r = self
                .client
                .clone()
                .get_import_state(api::GetImportStateRequest { task })
                .await
                .map_err(|e| self.grpc_error("GetImportState", e))?
                .into_inner();
            self.check("GetImportState", r.status)?;
            crate::crash::point("import-polled");
            let reason = r.infos.iter().find(|kv| kv.key == "failed_reason").map(|kv| kv.value.clone()).unwrap_or_default();
            match common::ImportState::try_from(r.state) {
                Ok(common::ImportState::ImportCompleted) => {
                    return Ok(wit::ImportOutcome { completed: true, rows: r.row_count.max(0) as u64, reason })
                }
                Ok(common::ImportState::ImportFailed | common::ImportState::ImportFailedAndCleaned) => {
                    return Ok(wit::ImportOutcome { completed: false, rows: 0, reason })
                }
                _ => {}
            }
            backoff.wait().await?;
        }
    }

    pub async fn flush(&self, collection: &str) -> Result<(), types::Error> {
        let req = api::FlushRequest { db_name: self.db.clone(), collection_names: vec![collection.into()], ..Default::default() };
        let r = self.client.clone().flush(req).await.map_err(|e| self.grpc_error("Flush", e))?.into_inner();
        self.check("Flush", r.status)?;
        let segments = r.coll_seg_i_ds.get(collection).map(|a| a.data.clone()).unwrap_or_default();
        let flush_ts = r.coll_flush_ts.get(collection).copied().unwrap_or(0);
        let mut backoff = Backoff::new(self.import_timeout, format!("flushing {collection}"));
        loop {
            let req = api::GetFlushStateRequest {
                segment_i_ds: segments.clone(),
                flush_ts,
                db_name: self.db.clone(),
                collection_name: collection.into(),
            };
            let r = self.client.clone().get_flush_state(req).await.map_err(|e| self.grpc_error("GetFlushState", e))?.into_inner();
            self.check("GetFlushState", r.status)?;
            if r.flushed {
                self.read_ts.flushed(self.ts_key(collection), flush_ts);
                return Ok(());
            }
            backoff.wait().await?;
        }
    }

    fn ts_key(&self, collection: &str) -> String {
        format!("{}/{collection}", self.db)
    }

    /// This process wrote to `collection` at `ts` (reads after its flush must see it).
    pub(super) fn wrote(&self, collection: &str, ts: u64) {
        self.read_ts.wrote(&self.ts_key(collection), ts);
    }

    pub(super) async fn query(&self, collection: &str, expr: String, fields: Vec<String>, partition: Option<&str>) -> Result<Vec<schema::FieldData>, types::Error> {
        self.query_limited(collection, expr, fields, partition, None).await
    }

    /// A query returning at most `limit` entities (`None`: the server's default).
    pub(super) async fn query_limited(
        &self,
        collection: &str,
        expr: String,
        fields: Vec<String>,
        partition: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<schema::FieldData>, types::Error> {
        let query_params = limit.map(|l| vec![common::KeyValuePair { key: "limit".into(), value: l.to_string() }]).unwrap_or_default();
        let (consistency_level, guarantee_timestamp) = match self.read_ts.get(&self.ts_key(collection)) {
            Some(ts) => (common::ConsistencyLevel::Customized, ts),
            None => (common::ConsistencyLevel::Strong, 0),
        };
        let req = api::QueryRequest {
            query_params,
            db_name: self.db.clone(),
            collection_name: collection.into(),
            expr,
            output_fields: fields,
            partition_names: partition.map(|p| vec![p.to_string()]).unwrap_or_default(),
            consistency_level: consistency_level as i32,
            guarantee_timestamp,
            use_default_consistency: false,
            ..Default::default()
        };
        let r = self.client.clone().query(req).await.map_err(|e| self.grpc_error("Query", e))?.into_inner();
        self.check("Query", r.status)?;
        Ok(r.fields_data)
    }

    /// The `row_count` statistics of a collection or one partition: every stored entity, also a
    /// primary key imported twice (deletes not subtracted).
    pub async fn stored_rows(&self, collection: &str, partition: Option<&str>) -> Result<u64, types::Error> {
        let stats = match partition {
            None => {
                let req = api::GetCollectionStatisticsRequest { db_name: self.db.clone(), collection_name: collection.into(), ..Default::default() };
                let r = self.client.clone().get_collection_statistics(req).await.map_err(|e| self.grpc_error("GetCollectionStatistics", e))?.into_inner();
                self.check("GetCollectionStatistics", r.status)?;
                r.stats
            }
            Some(p) => {
                let req = api::GetPartitionStatisticsRequest {
                    db_name: self.db.clone(),
                    collection_name: collection.into(),
                    partition_name: p.into(),
                    ..Default::default()
                };
                let r = self.client.clone().get_partition_statistics(req).await.map_err(|e| self.grpc_error("GetPartitionStatistics", e))?.into_inner();
                self.check("GetPartitionStatistics", r.status)?;
                r.stats
            }
        };
        stats.iter().find(|kv| kv.key == "row_count").and_then(|kv| kv.value.parse().ok()).ok_or_else(|| {
            types::Error::Remote(types::RemoteError { code: 0, reason: format!("Milvus at {}: no row_count in the statistics of {collection}", self.endpoint) })
        })
    }

    pub async fn count_rows(&self, collection: &str, partition: Option<&str>) -> Result<u64, types::Error> {
        self.count_where(collection, String::new(), partition).await
    }

    /// count(*) of the entities matching `expr` (every stored copy of a repeated key).
    pub(super) async fn count_where(&self, collection: &str, expr: String, partition: Option<&str>) -> Result<u64, types::Error> {
        let fields = self.query(collection, expr, vec!["count(*)".into()], partition).await?;
        let n = fields.iter().find_map(|f| match &f.field {
            Some(schema::field_data::Field::Scalars(s)) => match &s.data {
                Some(schema::scalar_field::Data::LongData(l)) => l.data.first().copied(),
                _ => None,
            },
            _ => None,
        });
        n.map(|n| n.max(0) as u64).ok_or_else(|| types::Error::Other(format!("Milvus at {}: count(*) returned no number", self.endpoint)))
    }

    pub async fn get_entities(&self, collection: &str, id_field: &str, vector_field: &str, ids: &[i64]) -> Result<Vec<wit::Entity>, types::Error> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let fields = self.query(collection, ids_expr(id_field, ids), vec![id_field.into(), vector_field.into()], None).await?;
        self.entities(fields, id_field, vector_field)
    }

    /// The entities of a query's columns: keys and vectors' bytes.
    pub(super) fn entities(&self, fields: Vec<schema::FieldData>, id_field: &str, vector_field: &str) -> Result<Vec<wit::Entity>, types::Error> {
        let bad = |why: &str| types::Error::Other(format!("Milvus at {}: query result {why}", self.endpoint));
        let mut got_ids = None;
        let mut vectors: Option<(usize, Vec<u8>)> = None;
        for f in fields {
            match f.field {
                Some(schema::field_data::Field::Scalars(s)) if f.field_name == id_field => {
                    if let Some(schema::scalar_field::Data::LongData(l)) = s.data {
                        got_ids = Some(l.data);
                    }
                }
                Some(schema::field_data::Field::Vectors(v)) if f.field_name == vector_field => {
                    vectors = match v.data {
                        Some(schema::vector_field::Data::FloatVector(a)) => {
                            Some((v.dim as usize * 4, a.data.iter().flat_map(|x| x.to_le_bytes()).collect()))
                        }
                        Some(schema::vector_field::Data::BinaryVector(b)) => Some((v.dim as usize / 8, b)),
                        _ => None,
                    }
                }
                _ => {}
            }
        }
        let Some(got_ids) = got_ids else {
            return if vectors.is_none() { Ok(vec![]) } else { Err(bad("has vectors but no ids")) };
        };
        let (width, bytes) = vectors.ok_or_else(|| bad("has ids but no vectors"))?;
        if width == 0 || bytes.len() != width * got_ids.len() {
            return Err(bad("vectors do not match the ids"));
        }
        Ok(got_ids.into_iter().zip(bytes.chunks(width)).map(|(id, v)| wit::Entity { id, vector: v.to_vec() }).collect())
    }
}

/// `<id_field> in [a, b, ...]`.
pub(super) fn ids_expr(id_field: &str, ids: &[i64]) -> String {
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    format!("{id_field} in [{list}]")
}

/// An error of a call whose reply may have been lost, as `unavailable` (the call may have taken
/// effect); errors the server sent stay as they are.
fn in_doubt(e: types::Error) -> types::Error {
    match e {
        types::Error::Remote(r) if [tonic::Code::Unknown, tonic::Code::Internal, tonic::Code::Cancelled, tonic::Code::Aborted, tonic::Code::DataLoss]
            .iter()
            .any(|c| *c as i32 == r.code) =>
        {
            types::Error::Unavailable(r.reason)
        }
        e => e,
    }
}

/// `joined` cut at each comma that ends a `.npy` name and is followed by `root` (see
/// `split_files`).
fn split_file_list(joined: &str, root: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in joined.match_indices(',') {
        let (before, after) = (&joined[start..i], &joined[i + 1..]);
        if before.trim_end().ends_with(".npy") && after.trim_start().starts_with(root) {
            out.push(before.trim().to_string());
            start = i + 1;
        }
    }
    out.push(joined[start..].trim().to_string());
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        // tonic's transport error repeats its source's text: say each thing once.
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{split_file_list, Backoff};
    use std::time::Duration;

    #[test]
    fn polls_are_quick_at_first_and_at_most_a_second_apart() {
        let ms = |m| Duration::from_millis(m);
        assert_eq!(Backoff::pause(ms(0)), ms(200));
        assert_eq!(Backoff::pause(ms(10_000)), ms(500));
        assert_eq!(Backoff::pause(ms(3_600_000)), ms(1_000));
    }

    #[test]
    fn file_lists_split_only_between_files() {
        let root = "/data/out,v2/";
        let joined = "/data/out,v2/c/a,b/s/id.npy,/data/out,v2/c/a,b/s/data.npy";
        assert_eq!(split_file_list(joined, root), ["/data/out,v2/c/a,b/s/id.npy", "/data/out,v2/c/a,b/s/data.npy"]);
        assert_eq!(split_file_list("c/x/id.npy, c/x/data.npy", ""), ["c/x/id.npy", "c/x/data.npy"]);
        assert_eq!(split_file_list("p/c/x.npy,y/id.npy", "p/"), ["p/c/x.npy,y/id.npy"]);
    }
}
