//! The byte stores of a run, built once from settings: a local directory, or a bucket (S3 and
//! S3-compatible servers, GCS, Azure) behind a key prefix. Bucket existence is checked up front,
//! and a missing bucket is created only when `checkBucket` asks for it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;

use crate::caps::blob_store::Grant;

#[derive(Debug, Clone, PartialEq)]
pub enum StoreSpec {
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

/// A local directory as a rooted store (created when `create` and missing).
pub fn local_grant(dir: &std::path::Path, create: bool, what: &str) -> anyhow::Result<Grant> {
    if create {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {what} {}", dir.display()))?;
    } else if !dir.is_dir() {
        bail!("{what} {} does not exist or is not a directory", dir.display());
    }
    let store = LocalFileSystem::new_with_prefix(dir).with_context(|| format!("cannot open {what} {}", dir.display()))?;
    Ok(Grant { store: Arc::new(store), display: dir.display().to_string() })
}

fn endpoint_url(r: &RemoteStore) -> Option<String> {
    r.endpoint.as_ref().map(|e| {
        if e.contains("://") {
            e.clone()
        } else {
            format!("{}://{e}", if r.use_ssl { "https" } else { "http" })
        }
    })
}

/// The bucket itself, without the prefix.
pub fn bucket_store(r: &RemoteStore) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let endpoint = endpoint_url(r);
    let keys = (!r.use_iam).then(|| (r.access_key.clone().unwrap_or_default(), r.secret_key.clone().unwrap_or_default()));
    // GCS with HMAC keys speaks the S3 API at storage.googleapis.com.
    let s3_api = r.cloud == Cloud::Aws || (r.cloud == Cloud::Gcp && keys.is_some());
    let store: Arc<dyn ObjectStore> = match r.cloud {
        _ if s3_api => {
            let mut b = if r.use_iam { AmazonS3Builder::from_env() } else { AmazonS3Builder::new() }
                .with_bucket_name(&r.bucket)
                .with_region(&r.region);
            let endpoint = endpoint.or_else(|| (r.cloud == Cloud::Gcp).then(|| "https://storage.googleapis.com".to_string()));
            if let Some(e) = endpoint {
                b = b.with_endpoint(e).with_allow_http(!r.use_ssl).with_virtual_hosted_style_request(false);
            }
            if let Some((ak, sk)) = keys {
                b = b.with_access_key_id(ak).with_secret_access_key(sk);
            }
            Arc::new(b.build().with_context(|| format!("{}: invalid S3 settings", r.section))?)
        }
        Cloud::Aws | Cloud::Gcp => Arc::new(
            GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(&r.bucket)
                .build()
                .with_context(|| format!("{}: invalid GCS settings", r.section))?,
        ),
        Cloud::Azure => {
            let mut b = if r.use_iam { MicrosoftAzureBuilder::from_env() } else { MicrosoftAzureBuilder::new() }.with_container_name(&r.bucket);
            if let Some((ak, sk)) = keys {
                b = b.with_account(ak).with_access_key(sk);
            }
            if let Some(e) = endpoint {
                b = b.with_endpoint(e).with_allow_http(!r.use_ssl);
            }
            Arc::new(b.build().with_context(|| format!("{}: invalid Azure settings", r.section))?)
        }
    };
    Ok(store)
}

/// Why a probe of the bucket failed, in the user's terms.
enum Probe {
    Missing,
    Denied(String),
    Unreachable(String),
}

/// An error with its causes (object_store's own text stops at "error sending request"; the
/// cause, such as "Connection refused", is further down the chain).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text = format!("{text}: {c_text}");
        }
        cause = c.source();
    }
    text
}

async fn probe(store: &dyn ObjectStore) -> Result<(), Probe> {
    match store.list_with_delimiter(Some(&ObjectPath::from("milvus-migration-probe"))).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let text = with_causes(&e);
            if text.contains("NoSuchBucket") || text.contains("ContainerNotFound") || matches!(e, object_store::Error::NotFound { .. }) {
                Err(Probe::Missing)
            } else if matches!(e, object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. })
                || text.contains("403")
                || text.contains("SignatureDoesNotMatch")
                || text.contains("InvalidAccessKeyId")
            {
                Err(Probe::Denied(text))
            } else {
                Err(Probe::Unreachable(text))
            }
        }
    }
}

/// Creates an S3 bucket (object_store has no bucket API; rusty-s3 signs the request).
async fn create_s3_bucket(r: &RemoteStore) -> anyhow::Result<()> {
    let url = endpoint_url(r).unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", r.region));
    let bucket = rusty_s3::Bucket::new(url.parse()?, rusty_s3::UrlStyle::Path, r.bucket.clone(), r.region.clone())
        .with_context(|| format!("{}.bucket {:?}", r.section, r.bucket))?;
    let creds = rusty_s3::Credentials::new(r.access_key.clone().unwrap_or_default(), r.secret_key.clone().unwrap_or_default());
    use rusty_s3::S3Action;
    let signed = bucket.create_bucket(&creds).sign(Duration::from_secs(120));
    let resp = reqwest::Client::new().put(signed).send().await.with_context(|| format!("creating bucket {}", r.bucket))?;
    let status = resp.status();
    if status.is_success() || status.as_u16() == 409 {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    bail!("creating bucket {:?} ({}.checkBucket) failed: HTTP {status}: {}", r.bucket, r.section, body.chars().take(300).collect::<String>())
}

/// What `plan` says about a bucket, without creating anything.
pub async fn probe_remote(r: &RemoteStore) -> Result<String, String> {
    let store = bucket_store(r).map_err(|e| format!("{e:#}"))?;
    match probe(store.as_ref()).await {
        Ok(()) => Ok(format!("{} reachable", r.display())),
        Err(Probe::Missing) if r.check_bucket && r.cloud == Cloud::Aws && r.section != "source.remote" => Ok(format!("bucket {:?} missing; it will be created (checkBucket)", r.bucket)),
        Err(Probe::Missing) => Err(format!("bucket {:?} ({}.bucket) does not exist", r.bucket, r.section)),
        Err(Probe::Denied(e)) => Err(format!("{}: access denied, check {}.ak / .sk: {e}", r.display(), r.section)),
        Err(Probe::Unreachable(e)) => Err(format!("{}: cannot reach the store: {e}", r.display())),
    }
}

/// Checks the bucket exists (creating it when `checkBucket`), then roots a store at the prefix.
pub async fn remote_grant(r: &RemoteStore) -> anyhow::Result<Grant> {
    let store = bucket_store(r)?;
    let where_ = format!("bucket {:?} ({}.bucket) at {}", r.bucket, r.section, r.endpoint.as_deref().unwrap_or("the cloud endpoint"));
    let source = r.section == "source.remote";
    match probe(store.as_ref()).await {
        Ok(()) => {}
        // An empty source bucket would not help: the 1.x files are read from it.
        Err(Probe::Missing) if source => {
            bail!("{where_} does not exist: it should hold the 1.x tables (check source.remote.bucket and .endpoint)")
        }
        Err(Probe::Missing) if r.check_bucket => {
            if r.cloud != Cloud::Aws {
                bail!("{where_} does not exist, and creating buckets is only supported for S3 (checkBucket); create it first");
            }
            create_s3_bucket(r).await?;
            tracing::info!("created {where_}");
        }
        Err(Probe::Missing) => bail!("{where_} does not exist; create it, or set {}.checkBucket: true to create it", r.section),
        Err(Probe::Denied(e)) => bail!("{where_}: access denied, check {}.ak / .sk (or useIAM): {e}", r.section),
        Err(Probe::Unreachable(e)) => bail!("{where_}: cannot reach the store ({}.endpoint): {e}", r.section),
    }
    let rooted: Arc<dyn ObjectStore> =
        if r.prefix.is_empty() { store } else { Arc::new(PrefixStore::new(store, ObjectPath::from(r.prefix.as_str()))) };
    Ok(Grant { store: rooted, display: r.display() })
}

/// The store a setting names; `target` stores are created when local and missing.
pub async fn grant(setting: &StoreSpec, target: bool) -> anyhow::Result<Grant> {
    match setting {
        StoreSpec::Local(dir) => {
            local_grant(dir, target, if target { "target.local.outputDir" } else { "source.local.tablesDir" })
        }
        StoreSpec::Remote(r) => remote_grant(r).await,
    }
}

/// A whole object from the bucket, as text (meta.json in the source bucket).
pub async fn read_text(r: &RemoteStore, key: &str, what: &str) -> anyhow::Result<String> {
    let store = bucket_store(r)?;
    let path = ObjectPath::parse(key).with_context(|| format!("{what} {key:?} is not a valid object key"))?;
    let bytes = match store.get(&path).await {
        Ok(g) => g.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => bail!("{what} {key:?}: no such object in {}", r.display()),
        Err(e) => bail!("{what} {key:?} in bucket {:?}: {e}", r.bucket),
    };
    String::from_utf8(bytes.to_vec()).with_context(|| format!("{what} {key:?} is not UTF-8 text"))
}
