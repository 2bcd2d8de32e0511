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
    /// host:port of an S3-compatible server, Azure's account URL or GCS's API base URL; none for
    /// the cloud's own endpoint.
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
    Ok(Grant { store: Arc::new(store), display: dir.display().to_string(), atomic_create: true })
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
        Cloud::Aws | Cloud::Gcp => {
            let env = GoogleCloudStorageBuilder::from_env().with_bucket_name(&r.bucket);
            let (b, key_from) = match endpoint {
                Some(url) => gcs_at_endpoint(env, r, &url)?,
                None => (env, "the environment"),
            };
            Arc::new(b.build().with_context(|| format!("{}: invalid GCS settings (credentials from {key_from})", r.section))?)
        }
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

/// GCS's own API (`useIAM: true`) at `endpoint` instead of https://storage.googleapis.com (a
/// private endpoint, an emulator). object_store takes another base URL only inside a
/// service-account key (`gcs_base_url`), so the key the environment names gets it added:
/// GOOGLE_SERVICE_ACCOUNT_KEY, else the file in GOOGLE_SERVICE_ACCOUNT(_PATH), else a
/// GOOGLE_APPLICATION_CREDENTIALS file of type service_account. Without one,
/// GOOGLE_SKIP_SIGNATURE=true sends unsigned requests (an emulator, a public bucket). Returns
/// the builder and where its key came from (a name, never the key).
fn gcs_at_endpoint(
    env: GoogleCloudStorageBuilder,
    r: &RemoteStore,
    url: &str,
) -> anyhow::Result<(GoogleCloudStorageBuilder, &'static str)> {
    use object_store::gcp::GoogleConfigKey as K;
    let skip = env.get_config_value(&K::SkipSignature).as_deref() == Some("true");
    let read = |path: String, var: &str| {
        std::fs::read_to_string(&path)
            .with_context(|| format!("{}.endpoint: cannot read the service-account file {path} ({var})", r.section))
    };
    let (text, from) = if let Some(k) = env.get_config_value(&K::ServiceAccountKey) {
        (k, "GOOGLE_SERVICE_ACCOUNT_KEY")
    } else if let Some(p) = env.get_config_value(&K::ServiceAccount) {
        (read(p, "GOOGLE_SERVICE_ACCOUNT")?, "GOOGLE_SERVICE_ACCOUNT")
    } else if let Some(text) =
        env.get_config_value(&K::ApplicationCredentials).map(|p| read(p, "GOOGLE_APPLICATION_CREDENTIALS")).transpose()?
    {
        (text, "GOOGLE_APPLICATION_CREDENTIALS")
    } else if skip {
        (r#"{"private_key": "", "private_key_id": "", "client_email": "", "disable_oauth": true}"#.to_string(), "GOOGLE_SKIP_SIGNATURE")
    } else {
        bail!(
            "{}.endpoint {url}: GCS at another endpoint (cloud gcp, useIAM) needs a service-account key in \
             GOOGLE_SERVICE_ACCOUNT_KEY, GOOGLE_SERVICE_ACCOUNT or GOOGLE_APPLICATION_CREDENTIALS, or GOOGLE_SKIP_SIGNATURE=true \
             for unsigned requests (an emulator)",
            r.section
        )
    };
    let key = gcs_key_with_base_url(&text, url).with_context(|| format!("{}.endpoint: the service-account key in {from}", r.section))?;
    Ok((GoogleCloudStorageBuilder::new().with_bucket_name(&r.bucket).with_service_account_key(key).with_skip_signature(skip), from))
}

/// A service-account key (JSON) with `gcs_base_url` set; errors never quote the key.
fn gcs_key_with_base_url(key: &str, url: &str) -> anyhow::Result<String> {
    let mut v: serde_json::Value =
        serde_json::from_str(key).map_err(|e| anyhow::anyhow!("is not JSON (line {}, column {})", e.line(), e.column()))?;
    let obj = v.as_object_mut().context("is not a JSON object")?;
    if let Some(t) = obj.get("type").and_then(|t| t.as_str()).filter(|t| *t != "service_account") {
        bail!("is of type {t:?}, not service_account: another endpoint needs a service-account key");
    }
    obj.insert("gcs_base_url".into(), url.trim_end_matches('/').into());
    Ok(v.to_string())
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
    store.list_with_delimiter(Some(&ObjectPath::from("milvus-migration-probe"))).await.map(|_| ()).map_err(|e| classify(&e))
}

/// The stores wrap most HTTP statuses in a generic error, so its text decides. The status is
/// matched with its reason ("403 Forbidden"): the text also holds the URL, whose port may be 40347.
fn classify(e: &object_store::Error) -> Probe {
    let text = with_causes(e);
    if text.contains("NoSuchBucket") || text.contains("ContainerNotFound") || matches!(e, object_store::Error::NotFound { .. }) {
        Probe::Missing
    } else if matches!(e, object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. })
        || text.contains("403 Forbidden")
        || text.contains("SignatureDoesNotMatch")
        || text.contains("InvalidAccessKeyId")
    {
        Probe::Denied(text)
    } else {
        Probe::Unreachable(text)
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
    Ok(Grant { store: rooted, display: r.display(), atomic_create: false })
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

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::gcp::GoogleConfigKey as K;

    fn gcs(endpoint: &str) -> RemoteStore {
        RemoteStore {
            section: "target.remote",
            cloud: Cloud::Gcp,
            endpoint: Some(endpoint.into()),
            region: "us-east-1".into(),
            bucket: "b".into(),
            access_key: None,
            secret_key: None,
            use_ssl: false,
            use_iam: true,
            check_bucket: false,
            prefix: String::new(),
        }
    }

    #[test]
    fn a_403_in_the_url_is_not_access_denied() {
        let err = |msg: &str| object_store::Error::Generic { store: "MicrosoftAzure", source: msg.to_string().into() };
        let refused = err("Error performing GET http://127.0.0.1:40347/a/b in 3.4031s - tcp connect error: Connection refused");
        assert!(matches!(classify(&refused), Probe::Unreachable(t) if t.contains("Connection refused")));
        let denied = err("Error performing GET http://127.0.0.1:1/a/b - Server returned non-2xx status code: 403 Forbidden: <Error/>");
        assert!(matches!(classify(&denied), Probe::Denied(_)));
    }

    #[test]
    fn gcs_endpoint_goes_into_the_environments_key() {
        let key = r#"{"type": "service_account", "private_key": "", "private_key_id": "k", "client_email": "a@b", "disable_oauth": true}"#;
        let env = GoogleCloudStorageBuilder::new().with_config(K::ServiceAccountKey, key);
        let (b, from) = gcs_at_endpoint(env, &gcs("http://127.0.0.1:4443/"), "http://127.0.0.1:4443/").unwrap();
        assert_eq!(from, "GOOGLE_SERVICE_ACCOUNT_KEY");
        let merged: serde_json::Value = serde_json::from_str(&b.get_config_value(&K::ServiceAccountKey).unwrap()).unwrap();
        assert_eq!((merged["gcs_base_url"].as_str(), merged["client_email"].as_str()), (Some("http://127.0.0.1:4443"), Some("a@b")));
        assert!(b.build().is_ok());
        // Unsigned requests for an emulator, without a key.
        let env = GoogleCloudStorageBuilder::new().with_skip_signature(true);
        let (b, from) = gcs_at_endpoint(env, &gcs("http://127.0.0.1:4443"), "http://127.0.0.1:4443").unwrap();
        assert_eq!((from, b.get_config_value(&K::SkipSignature).as_deref()), ("GOOGLE_SKIP_SIGNATURE", Some("true")));
        assert!(b.build().is_ok());
    }

    #[test]
    fn gcs_endpoint_without_a_usable_key_names_the_setting_and_never_the_key() {
        let e = gcs_at_endpoint(GoogleCloudStorageBuilder::new(), &gcs("http://h:1"), "http://h:1").unwrap_err().to_string();
        assert!(e.starts_with("target.remote.endpoint http://h:1: GCS at another endpoint") && e.contains("GOOGLE_SKIP_SIGNATURE"), "{e}");
        for (key, why) in [
            (r#"{"private_key": "s3cr3t-pem""#, "is not JSON"),
            (r#"{"type": "authorized_user", "refresh_token": "s3cr3t-pem"}"#, "authorized_user"),
        ] {
            let env = GoogleCloudStorageBuilder::new().with_config(K::ServiceAccountKey, key);
            let e = format!("{:#}", gcs_at_endpoint(env, &gcs("http://h:1"), "http://h:1").unwrap_err());
            assert!(e.contains("target.remote.endpoint: the service-account key in GOOGLE_SERVICE_ACCOUNT_KEY") && e.contains(why), "{e}");
            assert!(!e.contains("s3cr3t"), "{e}");
        }
    }
}
