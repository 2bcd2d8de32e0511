//! A job request (the service's front end) resolved against the tenant's grants into the same
//! job model migration.yaml becomes: the service builds a document of migration.yaml's shape
//! from named grants and checked sub-paths, and settings.rs checks it as it checks the file.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use super::config::{Store, Tenant};
use crate::job::model::Job;
use crate::settings::Needs;

/// What the job does: the CLI's commands of the same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Migrate,
    Dump,
    Load,
    Verify,
    /// `verify --full`: every key and vector against the dump.
    #[serde(rename = "verify-full")]
    VerifyFull,
    Repair,
    Plan,
    Export,
}

impl Kind {
    /// What the job's phase reads of the document.
    pub fn needs(self) -> Needs {
        match self {
            Kind::Migrate => Needs { meta: true, milvus: true },
            Kind::Dump | Kind::Plan | Kind::Export => Needs { meta: true, milvus: false },
            Kind::Load | Kind::Verify | Kind::VerifyFull | Kind::Repair => Needs { meta: false, milvus: true },
        }
    }

    /// The CLI command it runs, as the run report names it.
    pub fn command(self) -> &'static str {
        match self {
            Kind::Migrate => "migrate",
            Kind::Dump => "dump",
            Kind::Load => "load",
            Kind::Verify => "verify",
            Kind::VerifyFull => "verify",
            Kind::Repair => "repair",
            Kind::Plan => "plan",
            Kind::Export => "export",
        }
    }
}

/// What `verify-full` and `repair` take beyond the job: the CLI's `--max-listed` and
/// `--delete-extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Reconcile {
    /// Ids the report lists per finding (counts are always complete); 100 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_listed: Option<u32>,
    /// `repair` only: also delete keys the dump's partition does not hold.
    #[serde(default)]
    pub delete_extra: bool,
}

impl Reconcile {
    pub fn max_listed(r: Option<&Reconcile>) -> u32 {
        r.and_then(|r| r.max_listed).unwrap_or(crate::job::reconcile::MAX_LISTED)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging: Option<Place>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// The keys of migration.yaml's `migration:` section (not `sandbox`: see `limits`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// `verify-full` and `repair` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<Reconcile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub meta: Meta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables: Option<Place>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum Meta {
    Sqlite(File),
    Json(File),
    /// A granted MySQL meta database, by name.
    Mysql(String),
}

/// A file in a granted store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub store: String,
    pub path: String,
}

/// A directory (prefix) in a granted store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Place {
    pub store: String,
    #[serde(default)]
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub milvus: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(rename = "memoryMiB", default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
}

/// Why a request cannot run, as the API answers it.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// A name the tenant was not granted, or limits above its quota (403).
    Forbidden(String),
    /// A path that breaks the rules, a missing part, or options the checks refuse (422).
    Invalid(String),
}

/// The blob-store path rules: relative, `/`-separated, no empty, `.` or `..` segment.
/// `allow_empty`: a prefix may be the store's root.
fn checked(p: &str, what: &str, allow_empty: bool) -> Result<String, Refusal> {
    let p = p.trim_end_matches('/');
    if p.is_empty() {
        return if allow_empty { Ok(String::new()) } else { Err(Refusal::Invalid(format!("{what} is empty"))) };
    }
    if p.starts_with('/') || p.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(Refusal::Invalid(format!("{what} {p:?}: paths are relative, with no empty, '.' or '..' segment")));
    }
    Ok(p.to_string())
}

fn store<'t>(tenant: &'t Tenant, name: &str, what: &str) -> Result<&'t Store, Refusal> {
    tenant.stores.get(name).ok_or_else(|| Refusal::Forbidden(format!("{what}: store {name:?} is not granted to this tenant")))
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(k.into(), v);
    }
    Value::Mapping(m)
}

/// migration.yaml's `source:` / `target:` section for a place in a granted store; `dir_key` is
/// `tablesDir` or `outputDir`.
fn place_section(tenant: &Tenant, p: &Place, what: &str, dir_key: &str) -> Result<Value, Refusal> {
    let sub = checked(&p.prefix, &format!("{what}.prefix"), true)?;
    Ok(match store(tenant, &p.store, what)? {
        Store::Local(root) => {
            let dir = if sub.is_empty() { root.clone() } else { root.join(&sub) };
            map(vec![("mode", "local".into()), ("local", map(vec![(dir_key, dir.to_string_lossy().into_owned().into())]))])
        }
        Store::Remote { bucket, prefix, keys } => {
            let mut m: Mapping = keys.iter().map(|(k, v)| (Value::from(k.as_str()), v.clone())).collect();
            m.insert("bucket".into(), bucket.as_str().into());
            let full = [prefix.as_str(), sub.as_str()].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join("/");
            m.insert(dir_key.into(), full.into());
            map(vec![("mode", "remote".into()), ("remote", Value::Mapping(m))])
        }
    })
}

impl JobRequest {
    /// The job model of this request for `tenant`.
    pub fn resolve(&self, tenant: &Tenant) -> Result<Job, Refusal> {
        match (&self.reconcile, self.kind) {
            (Some(_), k) if !matches!(k, Kind::VerifyFull | Kind::Repair) => {
                return Err(Refusal::Invalid(format!("reconcile applies to verify-full and repair jobs, not to {}", k.command())));
            }
            (Some(r), Kind::VerifyFull) if r.delete_extra => {
                return Err(Refusal::Invalid("reconcile.deleteExtra applies to repair jobs; verify-full changes nothing".into()));
            }
            _ => {}
        }
        let mut doc = Mapping::new();
        let needs = self.kind.needs();
        if let Some(src) = &self.source {
            let meta = match &src.meta {
                Meta::Mysql(name) => {
                    let url = tenant.mysql.get(name).ok_or_else(|| Refusal::Forbidden(format!("source.meta: mysql {name:?} is not granted to this tenant")))?;
                    map(vec![("mode", "mysql".into()), ("mysqlUrl", url.as_str().into())])
                }
                Meta::Sqlite(f) | Meta::Json(f) => {
                    let path = checked(&f.path, "source.meta.path", false)?;
                    let sqlite = matches!(src.meta, Meta::Sqlite(_));
                    match store(tenant, &f.store, "source.meta")? {
                        Store::Local(root) => {
                            let file = root.join(&path).to_string_lossy().into_owned();
                            if sqlite {
                                map(vec![("mode", "sqlite".into()), ("sqliteFile", file.into())])
                            } else {
                                map(vec![("mode", "local".into()), ("localFile", file.into())])
                            }
                        }
                        Store::Remote { prefix, .. } if !sqlite && src.tables.as_ref().is_some_and(|t| t.store == f.store) => {
                            let key = [prefix.as_str(), path.as_str()].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join("/");
                            map(vec![("mode", "remote".into()), ("remoteMetaFile", key.into())])
                        }
                        Store::Remote { .. } => {
                            return Err(Refusal::Invalid(
                                "source.meta: a meta.sqlite must be in a file:// store, and a meta.json in a bucket must be in the tables' store".into(),
                            ))
                        }
                    }
                }
            };
            doc.insert("meta".into(), meta);
            if let Some(t) = &src.tables {
                doc.insert("source".into(), place_section(tenant, t, "source.tables", "tablesDir")?);
            }
        } else if needs.meta {
            return Err(Refusal::Invalid(format!("a {:?} job needs source.meta and source.tables", self.kind)));
        }
        match &self.staging {
            Some(p) => {
                doc.insert("target".into(), place_section(tenant, p, "staging", "outputDir")?);
            }
            None => return Err(Refusal::Invalid(format!("a {:?} job needs staging (the store and prefix of the dump)", self.kind))),
        }
        if let Some(t) = &self.target {
            let m = tenant.milvus.get(&t.milvus).ok_or_else(|| Refusal::Forbidden(format!("target.milvus {:?} is not granted to this tenant", t.milvus)))?;
            let mut section = vec![("endpoint", Value::from(m.endpoint.as_str()))];
            if let Some(u) = &m.username {
                section.push(("username", u.as_str().into()));
            }
            if let Some(p) = &m.password {
                section.push(("password", p.as_str().into()));
            }
            if let Some(d) = &m.database {
                section.push(("database", d.as_str().into()));
            }
            let target = doc.entry("target".into()).or_insert_with(|| Value::Mapping(Mapping::new()));
            if let Value::Mapping(t) = target {
                t.insert("milvus2x".into(), map(section));
            }
        } else if needs.milvus {
            return Err(Refusal::Invalid(format!("a {:?} job needs target.milvus", self.kind)));
        }

        let mut migration = match &self.options {
            None => Mapping::new(),
            Some(o) => match serde_yaml::to_value(o) {
                Ok(Value::Mapping(m)) => m,
                _ => return Err(Refusal::Invalid("options must be an object of migration.yaml's `migration:` keys".into())),
            },
        };
        // Limits and files on the server's disk are the operator's, never a request's.
        for key in ["sandbox", "leaseSeconds"] {
            if migration.contains_key(key) {
                return Err(Refusal::Invalid(format!("options.{key} is not a request's to set (see limits)")));
            }
        }
        if let Some(Value::Mapping(m)) = migration.get("milvus") {
            if m.contains_key("caCert") {
                return Err(Refusal::Invalid("options.milvus.caCert names a file on the server: not a request's to set".into()));
            }
        }
        let q = tenant.quotas;
        let l = self.limits.unwrap_or(Limits { memory_mib: None, fuel: None });
        let memory = l.memory_mib.unwrap_or(q.memory_mib_per_unit);
        let fuel = l.fuel.unwrap_or(q.fuel_per_unit);
        if memory > q.memory_mib_per_unit || fuel > q.fuel_per_unit {
            return Err(Refusal::Forbidden(format!(
                "limits above the tenant's quota: at most {} MiB and {} fuel per unit",
                q.memory_mib_per_unit, q.fuel_per_unit
            )));
        }
        migration.insert("sandbox".into(), map(vec![("memoryMiB", memory.into()), ("fuel", (fuel as f64).into())]));
        doc.insert("migration".into(), Value::Mapping(migration));
        doc.insert("loader".into(), map(vec![("worker", map(vec![("limit", (q.concurrent_units as u64).into())]))]));
        doc.insert("dumper".into(), map(vec![("worker", map(vec![("limit", (q.concurrent_units as u64).into())]))]));
        let collections = vec![];
        Job::from_document(Value::Mapping(doc), Path::new("job request"), collections, needs).map_err(|e| Refusal::Invalid(e.to_string()))
    }
}

