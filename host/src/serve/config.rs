//! serve.yaml, the operator's file: where to listen, where the job store lives, and each
//! tenant's tokens (their SHA-256 only), named grants (stores, meta databases, Milvus) and
//! quotas. Requests name grants; they never carry a URL, an endpoint or a secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct File {
    listen: String,
    data_dir: PathBuf,
    /// Units of work (instances) of all tenants at once; the pooling allocator's size.
    concurrent_units: Option<u32>,
    tenants: Vec<TenantFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TenantFile {
    id: String,
    tokens: Vec<TokenFile>,
    #[serde(default)]
    stores: BTreeMap<String, StoreFile>,
    #[serde(default)]
    milvus: BTreeMap<String, MilvusFile>,
    #[serde(default)]
    mysql: BTreeMap<String, MysqlFile>,
    #[serde(default)]
    quotas: QuotasFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    sha256: String,
}

/// A store: `file:///abs/dir` or `s3://bucket/prefix` with migration.yaml's remote keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StoreFile {
    url: String,
    cloud: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    ak: Option<String>,
    sk: Option<String>,
    /// Environment variables holding the keys, instead of the keys in the file.
    ak_env: Option<String>,
    sk_env: Option<String>,
    #[serde(rename = "useSSL")]
    use_ssl: Option<bool>,
    #[serde(rename = "useIAM")]
    use_iam: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MilvusFile {
    endpoint: String,
    username: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    database: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MysqlFile {
    url: Option<String>,
    url_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct QuotasFile {
    running_jobs: Option<usize>,
    active_jobs: Option<usize>,
    concurrent_units: Option<usize>,
    #[serde(rename = "memoryMiBPerUnit")]
    memory_mib_per_unit: Option<u64>,
    fuel_per_unit: Option<u64>,
    wall_clock_seconds_per_unit: Option<u64>,
    auto_resume: Option<bool>,
}

/// A granted store, as the job model's migration.yaml keys want it.
#[derive(Clone)]
pub enum Store {
    /// A directory on this machine.
    Local(PathBuf),
    /// A bucket and the tenant's prefix in it, with the remote keys of migration.yaml.
    Remote { bucket: String, prefix: String, keys: BTreeMap<String, serde_yaml::Value> },
}

#[derive(Clone)]
pub struct Milvus {
    pub endpoint: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
}

/// What a tenant may use at once and per unit of work.
#[derive(Debug, Clone, Copy)]
pub struct Quotas {
    /// Jobs running at once.
    pub running_jobs: usize,
    /// Jobs queued or running at once.
    pub active_jobs: usize,
    /// Units of work (instances) of all its jobs at once.
    pub concurrent_units: usize,
    pub memory_mib_per_unit: u64,
    pub fuel_per_unit: u64,
    /// A unit still running after this long is stopped.
    pub wall_clock_seconds_per_unit: u64,
    /// Jobs a restart interrupted run again by themselves (the next attempt).
    pub auto_resume: bool,
}

impl Quotas {
    /// What every unit of the tenant's jobs may take at most.
    pub fn ceiling(&self) -> crate::sandbox::Limits {
        crate::sandbox::Limits { memory_bytes: (self.memory_mib_per_unit as usize) << 20, fuel: self.fuel_per_unit }
    }
}

pub struct Tenant {
    pub id: String,
    /// SHA-256 of each token.
    pub token_hashes: Vec<[u8; 32]>,
    pub stores: BTreeMap<String, Store>,
    pub milvus: BTreeMap<String, Milvus>,
    pub mysql: BTreeMap<String, String>,
    pub quotas: Quotas,
}

pub struct ServeConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    pub concurrent_units: u32,
    pub tenants: Vec<Tenant>,
}

fn env_or(value: Option<String>, var: Option<String>, what: &str, problems: &mut Vec<String>) -> Option<String> {
    match (value, var) {
        (Some(v), _) => Some(v),
        (None, Some(var)) => match std::env::var(&var) {
            Ok(v) => Some(v),
            Err(_) => {
                problems.push(format!("{what}: environment variable {var} is not set"));
                None
            }
        },
        (None, None) => None,
    }
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl ServeConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let f: File = serde_yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let mut problems = Vec::new();
        let mut tenants = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for t in f.tenants {
            let at = format!("tenant {:?}", t.id);
            if !seen.insert(t.id.clone()) {
                problems.push(format!("{at} is listed twice"));
            }
            let token_hashes: Vec<[u8; 32]> = t
                .tokens
                .iter()
                .filter_map(|k| parse_hash(&k.sha256.to_ascii_lowercase()).or_else(|| {
                    problems.push(format!("{at}: tokens[].sha256 must be 64 hex digits (the SHA-256 of the token)"));
                    None
                }))
                .collect();
            if token_hashes.is_empty() {
                problems.push(format!("{at} has no token"));
            }
            let mut stores = BTreeMap::new();
            for (name, s) in t.stores {
                let what = format!("{at} store {name:?}");
                if let Some(dir) = s.url.strip_prefix("file://") {
                    if !Path::new(dir).is_absolute() {
                        problems.push(format!("{what}: {} is not file:///absolute/dir", s.url));
                    }
                    stores.insert(name, Store::Local(PathBuf::from(dir)));
                } else if let Some(rest) = s.url.strip_prefix("s3://") {
                    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                    let mut keys = BTreeMap::new();
                    let mut put = |k: &str, v: Option<serde_yaml::Value>| {
                        if let Some(v) = v {
                            keys.insert(k.to_string(), v);
                        }
                    };
                    put("cloud", Some(s.cloud.clone().unwrap_or_else(|| "aws".into()).into()));
                    put("endpoint", s.endpoint.clone().map(Into::into));
                    put("region", s.region.clone().map(Into::into));
                    put("ak", env_or(s.ak.clone(), s.ak_env.clone(), &what, &mut problems).map(Into::into));
                    put("sk", env_or(s.sk.clone(), s.sk_env.clone(), &what, &mut problems).map(Into::into));
                    put("useSSL", s.use_ssl.map(Into::into));
                    put("useIAM", s.use_iam.map(Into::into));
                    put("checkBucket", Some(false.into()));
                    stores.insert(name, Store::Remote { bucket: bucket.into(), prefix: prefix.trim_matches('/').into(), keys });
                } else {
                    problems.push(format!("{what}: url {:?} is neither file:///dir nor s3://bucket/prefix", s.url));
                }
            }
            let mut milvus = BTreeMap::new();
            for (name, m) in t.milvus {
                let password = env_or(m.password, m.password_env, &format!("{at} milvus {name:?}"), &mut problems);
                milvus.insert(name, Milvus { endpoint: m.endpoint, username: m.username, password, database: m.database });
            }
            let mut mysql = BTreeMap::new();
            for (name, m) in t.mysql {
                if let Some(url) = env_or(m.url, m.url_env, &format!("{at} mysql {name:?}"), &mut problems) {
                    mysql.insert(name, url);
                }
            }
            let q = t.quotas;
            let quotas = Quotas {
                running_jobs: q.running_jobs.unwrap_or(2).max(1),
                active_jobs: q.active_jobs.unwrap_or(16).max(1),
                concurrent_units: q.concurrent_units.unwrap_or(2).max(1),
                memory_mib_per_unit: q.memory_mib_per_unit.unwrap_or(256),
                fuel_per_unit: q.fuel_per_unit.unwrap_or(200_000_000_000),
                wall_clock_seconds_per_unit: q.wall_clock_seconds_per_unit.unwrap_or(3600).max(1),
                auto_resume: q.auto_resume.unwrap_or(false),
            };
            if !(16..=4096).contains(&quotas.memory_mib_per_unit) {
                problems.push(format!("{at}: quotas.memoryMiBPerUnit must be 16..4096 (the engine's least; a wasm32 instance's most)"));
            }
            if quotas.fuel_per_unit < 1_000_000 {
                problems.push(format!("{at}: quotas.fuelPerUnit must be at least 1000000"));
            }
            tenants.push(Tenant { id: t.id, token_hashes, stores, milvus, mysql, quotas });
        }
        if !problems.is_empty() {
            anyhow::bail!("{}: {}", path.display(), problems.join("; "));
        }
        let concurrent_units = f.concurrent_units.unwrap_or(16).max(1);
        Ok(ServeConfig { listen: f.listen, data_dir: f.data_dir, concurrent_units, tenants })
    }

    /// The tenant a bearer token belongs to. Every hash is compared, each in constant time, so
    /// the answer's timing says nothing about which bytes matched.
    pub fn tenant_of(&self, token: &str) -> Option<&Tenant> {
        use sha2::{Digest, Sha256};
        let h: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for t in &self.tenants {
            for k in &t.token_hashes {
                // Hand-written: a fixed-length XOR fold has no early exit (no crate needed).
                let diff = k.iter().zip(h.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
                if diff == 0 {
                    found = Some(t);
                }
            }
        }
        found
    }
}
