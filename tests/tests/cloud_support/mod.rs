//! Helpers shared by azure_e2e.rs and gcs_e2e.rs: the emulators' settings (from the KEY=value
//! lines of scripts/azurite.sh and scripts/gcs.sh, as scripts/test.sh exports them), a small
//! installation, runs of the binary with a chosen environment, and the check of a dump's objects.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use mm_tests::tool::{binary, files_under};
use mm_tests::{generate, CollectionSpec, Generated, PartitionSpec, SegmentSpec, Spec};

/// An emulator setting; missing is a failure (never a skip): the script that prints it was not run.
pub fn required(key: &str, script: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("{key} is not set: run `set -a; eval \"$(bash {script} start)\"; set +a` first (scripts/test.sh does)"))
}

pub fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
    format!("{prefix}-{}-{}", std::process::id(), t % 1_000_000_000)
}

/// A float collection with deletions and a tagged partition, and a binary one (under `dir/src`).
pub async fn install(dir: &Path) -> Generated {
    let seg = |rows, deleted: &[i32]| SegmentSpec { rows, deleted: deleted.to_vec(), ..Default::default() };
    let coll = |name: &str, dim, metric, engine_type, segments, partitions| CollectionSpec {
        name: name.into(),
        dim,
        metric,
        engine_type,
        index_params: "{}".into(),
        dropped: false,
        segments,
        partitions,
    };
    let spec = Spec {
        seed: 33,
        collections: vec![
            coll(
                "c",
                8,
                2,
                1,
                vec![seg(300, &[299, 2, 2, 150]), seg(60, &[])],
                vec![PartitionSpec { tag: "east/1".into(), dropped: false, segments: vec![seg(40, &[0])] }],
            ),
            coll("c_bin", 32, 3, 9, vec![seg(50, &[1, 49])], vec![]),
        ],
    };
    generate(&spec, &dir.join("src"), true).await.unwrap()
}

/// Runs the binary in `cwd` without any GOOGLE_* / SERVICE_ACCOUNT variable of the test's own
/// environment, plus `envs`.
pub fn run_env(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(binary());
    c.current_dir(cwd).args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("GOOGLE_") || k == "SERVICE_ACCOUNT") {
            c.env_remove(k);
        }
    }
    c.envs(envs.iter().copied()).output().expect("run milvus-migration")
}

/// A dump config: `meta.sqlite` of `g`, and the yaml bodies of `source:` and `target:`.
pub fn config(dir: &Path, g: &Generated, source: &str, target: &str) -> std::path::PathBuf {
    let yaml = format!(
        "dumper:\n  worker:\n    workMode: milvus1x\nmeta:\n  mode: sqlite\n  sqliteFile: {}\nsource:\n{source}\ntarget:\n{target}\n",
        g.meta_sqlite.display()
    );
    let path = dir.join("migration.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Every file under `dir`, by relative path.
pub fn local_objects(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(dir).into_iter().map(|p| (p.strip_prefix(dir).unwrap().to_str().unwrap().to_string(), std::fs::read(&p).unwrap())).collect()
}

/// Every `files` entry of the manifest: path -> (bytes, crc32c).
fn manifest_files(v: &serde_json::Value, out: &mut BTreeMap<String, (u64, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "files" {
                    for f in x.as_array().unwrap() {
                        let path = f["path"].as_str().unwrap().to_string();
                        out.insert(path, (f["bytes"].as_u64().unwrap(), f["crc32c"].as_str().unwrap().to_string()));
                    }
                } else {
                    manifest_files(x, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| manifest_files(x, out)),
        _ => {}
    }
}

/// A dump's objects (relative key -> bytes, as written to a store or a directory): manifest.json is
/// there, the npy objects are exactly the manifest's files with its sizes and CRC-32C, and the
/// rows (ids and vector bytes, decoded from the npy files) are the generator's live rows.
pub fn check_dump_objects(g: &Generated, objects: &BTreeMap<String, Vec<u8>>) {
    let manifest = objects.get("manifest.json").unwrap_or_else(|| panic!("no manifest.json among {:?}", objects.keys()));
    let manifest: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    let mut listed = BTreeMap::new();
    manifest_files(&manifest, &mut listed);
    let npy: Vec<&String> = objects.keys().filter(|k| k.ends_with(".npy")).collect();
    assert_eq!(npy, listed.keys().collect::<Vec<_>>(), "npy objects vs the manifest's files");
    for (path, (bytes, crc)) in &listed {
        let b = &objects[path];
        assert_eq!(b.len() as u64, *bytes, "{path}: size");
        assert_eq!(&format!("{:08x}", crc32c::crc32c(b)), crc, "{path}: crc32c");
    }
    // The rows: the same objects as a directory, checked like a local dump.
    let tmp = tempfile::tempdir().unwrap();
    for (k, b) in objects {
        let p = tmp.path().join(k);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b).unwrap();
    }
    g.expected.check_dump(tmp.path()).unwrap();
}
