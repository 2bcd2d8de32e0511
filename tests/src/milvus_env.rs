//! Shared by the end-to-end tests that need the real Milvus 2.x (started by scripts/test.sh;
//! MILVUS_ENDPOINT names it): an exported installation with its migration.yaml, running the
//! binary on it, and pymilvus' independent check of what landed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::expect::Expected;
use crate::tool::{python, repo_root, run, text};
use crate::{generate, Spec};

pub fn endpoint() -> String {
    std::env::var("MILVUS_ENDPOINT").unwrap_or_else(|_| "127.0.0.1:19530".into())
}

/// pymilvus' login for the Milvus scripts/milvus.sh runs: in its secure mode (MILVUS_CA_CERT,
/// MILVUS_USER and MILVUS_PASSWORD set) a user, a password and the CA; otherwise none.
pub fn login_args() -> Vec<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut args = Vec::new();
    if let (Some(u), Some(p)) = (var("MILVUS_USER"), var("MILVUS_PASSWORD")) {
        args.extend(["--user".to_string(), u, "--password".to_string(), p]);
    }
    if let Some(ca) = var("MILVUS_CA_CERT") {
        args.extend(["--ca-cert".to_string(), ca]);
    }
    args
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A name no other test run used (the server outlives the tests).
pub fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
    format!("{prefix}_{}_{}", std::process::id(), t % 1_000_000_000)
}

pub struct Env {
    pub _dir: tempfile::TempDir,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub expected: Expected,
}

/// Generates the installation, exports it and writes migration.yaml (meta.json, local target).
pub async fn setup(spec: &Spec, extra_milvus: &str) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let g = generate(spec, &dir.join("src"), true).await.unwrap();
    let o = run(&dir, &["export", "-s", s(&g.meta_sqlite), "-o", s(&dir.join("migration_data"))]);
    assert!(o.status.success(), "{}", text(&o));
    let config = dir.join("migration.yaml");
    let yaml = format!(
        "dumper:\n  worker:\n    workMode: milvus1x\nloader:\n  worker:\n    limit: 2\nmeta:\n  mode: local\n  localFile: {}\n\
         source:\n  mode: local\n  local:\n    tablesDir: {}\ntarget:\n  mode: local\n  local:\n    outputDir: {}\n\
         \x20 milvus2x:\n    endpoint: {}\n{extra_milvus}",
        s(&dir.join("migration_data/meta.json")),
        s(&g.tables),
        s(&dir.join("out")),
        endpoint()
    );
    std::fs::write(&config, yaml).unwrap();
    Env { _dir: tmp, dir, config, expected: g.expected }
}

pub fn cmd(env: &Env, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    let cfg = format!("--config={}", s(&env.config));
    all.push(&cfg);
    run(&env.dir, &all)
}

/// Starts the binary on the test's config without waiting, output captured; `crash_at` sets the
/// crash hook (`MILVUS_MIGRATION_CRASH_AT`, e.g. `import-polled:1`).
pub fn spawn(env: &Env, args: &[&str], crash_at: Option<&str>) -> std::process::Child {
    let mut c = Command::new(crate::tool::binary());
    c.current_dir(&env.dir).args(args).arg(format!("--config={}", s(&env.config)));
    c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    if let Some(p) = crash_at {
        c.env("MILVUS_MIGRATION_CRASH_AT", p);
    }
    c.spawn().unwrap()
}

/// pymilvus' view: counts per partition and a few vectors by id, deleted ids absent.
pub fn pymilvus_check(env: &Env, collection: &str, partition_names: &[(&str, &str)]) {
    pymilvus_check_with(env, collection, partition_names, serde_json::json!({}));
}

/// The same, with more checks merged into the spec (`index`, `search`).
pub fn pymilvus_check_with(env: &Env, collection: &str, partition_names: &[(&str, &str)], extra: serde_json::Value) {
    let c = env.expected.collections.iter().find(|c| c.name == collection).unwrap();
    let mut partitions = serde_json::Map::new();
    let mut vectors = Vec::new();
    for p in &c.partitions {
        let name = partition_names.iter().find(|(tag, _)| *tag == p.tag).map_or("_default", |(_, n)| n);
        let rows: usize = p.segments.iter().map(|s| s.ids.len()).sum();
        partitions.insert(name.to_string(), rows.into());
        for seg in &p.segments {
            let width = if c.binary { c.dim as usize / 8 } else { c.dim as usize * 4 };
            for i in [0, seg.ids.len() / 2, seg.ids.len().saturating_sub(1)] {
                let Some(id) = seg.ids.get(i) else { continue };
                let bytes = &seg.vectors[i * width..(i + 1) * width];
                let v = if c.binary {
                    serde_json::json!({"id": id, "partition": name, "binary_hex": bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()})
                } else {
                    let f: Vec<f32> = bytes.chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
                    serde_json::json!({"id": id, "partition": name, "float": f})
                };
                vectors.push(v);
            }
        }
    }
    // Ids of deleted rows: the generator gives segment k ids k*1e6 + row.
    let live: std::collections::HashSet<i64> = c.partitions.iter().flat_map(|p| &p.segments).flat_map(|s| s.ids.iter().copied()).collect();
    let absent: Vec<i64> = c
        .partitions
        .iter()
        .flat_map(|p| &p.segments)
        .flat_map(|s| {
            let first = s.ids.first().map(|i| i - i % 1_000_000).unwrap_or(0);
            (0..s.rows_in as i64).map(move |r| first + r)
        })
        .filter(|id| !live.contains(id))
        .collect();
    assert!(!absent.is_empty());
    let mut spec = serde_json::json!({"collection": collection, "partitions": partitions, "vectors": vectors, "absent_ids": absent});
    if let serde_json::Value::Object(more) = extra {
        spec.as_object_mut().unwrap().extend(more);
    }
    let file = env.dir.join(format!("check-{collection}.json"));
    std::fs::write(&file, spec.to_string()).unwrap();
    let o = Command::new(python())
        .arg(repo_root().join("tests/py/milvus_check.py"))
        .args(["--uri", &endpoint(), "--spec", s(&file)])
        .args(login_args())
        .output()
        .unwrap();
    assert!(o.status.success(), "pymilvus check failed:\n{}", text(&o));
}

