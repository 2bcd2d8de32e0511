//! `migration.format: parquet` against the real Milvus 2.3.5: the dump writes one rows.parquet
//! per file group; pyarrow reads every file back and finds exactly the generator's live rows
//! (ids and vector bytes, float and binary, deletions dropped); Milvus imports them and
//! `verify` passes; pymilvus finds every live id exactly once. A dump killed after its first
//! published file resumes, and `cleanup: delete` removes the staged Parquet files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use mm_tests::milvus_env::{cmd, pymilvus_check_with, setup, spawn, unique};
use mm_tests::tool::{python, repo_root, text};
use mm_tests::{CollectionSpec, PartitionSpec, SegmentSpec, Spec};

fn spec(float: &str, binary: &str) -> Spec {
    let seg = |rows, deleted: &[i32]| SegmentSpec { rows, deleted: deleted.to_vec(), ..Default::default() };
    Spec {
        seed: 77,
        collections: vec![
            CollectionSpec {
                name: float.into(),
                dim: 16,
                metric: 1,
                engine_type: 1,
                index_params: "{}".into(),
                dropped: false,
                segments: vec![seg(700, &[0, 699, 350]), seg(420, &[])],
                partitions: vec![PartitionSpec { tag: "p".into(), dropped: false, segments: vec![seg(250, &[3])] }],
            },
            CollectionSpec {
                name: binary.into(),
                dim: 64,
                metric: 4,
                engine_type: 10,
                index_params: r#"{"nlist":16}"#.into(),
                dropped: false,
                segments: vec![seg(300, &[5, 1])],
                partitions: vec![],
            },
        ],
    }
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

#[tokio::test]
async fn a_parquet_dump_reads_back_in_pyarrow_and_imports_into_milvus_exactly() {
    let (float, binary) = (unique("pq_float"), unique("pq_bin"));
    let env = setup(&spec(&float, &binary), "migration:\n  format: parquet\n  packSegments: false\n").await;
    // Killed (SIGKILL) right after its first published file, then run again: it resumes.
    let o = spawn(&env, &["dump"], Some("file-published:1")).wait_with_output().unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    let o = cmd(&env, &["dump"]);
    assert!(o.status.success(), "{}", text(&o));

    let out = env.dir.join("out");
    let (mut parquet, mut npy) = (vec![], vec![]);
    files(&out, "parquet", &mut parquet);
    files(&out, "npy", &mut npy);
    assert!(npy.is_empty(), "a Parquet dump writes no npy: {npy:?}");
    let o = Command::new(python()).arg(repo_root().join("tests/py/parquet_rows.py")).args(&parquet).output().unwrap();
    assert!(o.status.success(), "pyarrow:\n{}", text(&o));
    let read: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(read.len(), parquet.len());

    // Every live row of the generator, once, in the file of its collection and partition.
    for c in &env.expected.collections {
        let item = if c.binary { "uint8" } else { "float" };
        for p in &c.partitions {
            let mut want: BTreeMap<i64, String> = BTreeMap::new();
            let width = if c.binary { c.dim as usize / 8 } else { c.dim as usize * 4 };
            for s in &p.segments {
                for (k, id) in s.ids.iter().enumerate() {
                    let hex: String = s.vectors[k * width..(k + 1) * width].iter().map(|b| format!("{b:02x}")).collect();
                    assert!(want.insert(*id, hex).is_none(), "the spec repeats id {id}");
                }
            }
            let part_dir = format!("/{}/{}/", c.name, p.dir_name());
            let mut got: BTreeMap<i64, String> = BTreeMap::new();
            for f in read.iter().filter(|f| {
                let path = f["path"].as_str().unwrap();
                path.contains(&part_dir)
            }) {
                assert_eq!(f["schema"]["id"], serde_json::json!({"type": "int64", "nullable": false}), "{f:#}");
                assert_eq!(f["schema"]["data"]["type"], format!("list<item: {item} not null>"), "{}", f["schema"]);
                for r in f["rows"].as_array().unwrap() {
                    let id = r[0].as_i64().unwrap();
                    assert!(got.insert(id, r[1].as_str().unwrap().to_string()).is_none(), "id {id} written twice");
                }
            }
            assert_eq!(got.len(), want.len(), "{} partition {:?}: rows", c.name, p.tag);
            assert!(got == want, "{} partition {:?}: the Parquet rows differ from the generator's", c.name, p.tag);
        }
    }

    // Verified, then the staged files go (migration.cleanup: delete); the manifest stays.
    let yaml = std::fs::read_to_string(&env.config).unwrap() + "  cleanup: delete\n";
    std::fs::write(&env.config, yaml).unwrap();
    let o = cmd(&env, &["load"]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("verified"), "{}", text(&o));
    assert!(stdout.contains(&format!("deleted {} staged file(s)", parquet.iter().filter(|p| p.to_string_lossy().contains(&format!("/{float}/"))).count())), "{}", text(&o));
    let mut left = vec![];
    files(&out, "parquet", &mut left);
    assert!(left.is_empty(), "{left:?}");
    assert!(out.join("manifest.json").exists());
    for c in &env.expected.collections {
        let ids: Vec<i64> = c.partitions.iter().flat_map(|p| &p.segments).flat_map(|s| s.ids.clone()).collect();
        pymilvus_check_with(&env, &c.name, &[("p", "p")], serde_json::json!({"exact_ids": ids}));
    }
}
