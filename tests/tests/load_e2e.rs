//! generate -> export -> dump -> load -> verify against a real Milvus 2.3.5 (started by
//! scripts/test.sh; MILVUS_ENDPOINT names it), with pymilvus as an independent second check.

use mm_tests::milvus_env::{cmd, endpoint, pymilvus_check, pymilvus_check_with, s, setup, unique};
use mm_tests::tool::{python, text};
use std::process::Command;
use mm_tests::{CollectionSpec, PartitionSpec, SegmentSpec, Spec};

/// Float (two segments, unsorted and repeated deletions, a tag 2.x rejects, an empty partition)
/// and binary (JACCARD) collections.
fn spec(float_name: &str, binary_name: &str) -> Spec {
    let seg = |rows, deleted: &[i32]| SegmentSpec { rows, deleted: deleted.to_vec(), ..Default::default() };
    Spec {
        seed: 11,
        collections: vec![
            CollectionSpec {
                name: float_name.into(),
                dim: 16,
                metric: 1,
                engine_type: 1,
                index_params: "{}".into(),
                dropped: false,
                segments: vec![SegmentSpec { indexed: true, ..seg(700, &[650, 3, 99, 3, 0]) }, seg(300, &[299, 10, 10])],
                partitions: vec![
                    PartitionSpec { tag: "2023-Q4 sales".into(), dropped: false, segments: vec![seg(250, &[7, 1])] },
                    PartitionSpec { tag: "empty".into(), dropped: false, segments: vec![] },
                ],
            },
            CollectionSpec {
                name: binary_name.into(),
                dim: 64,
                metric: 4,
                engine_type: 10,
                index_params: r#"{"nlist":16}"#.into(),
                dropped: false,
                segments: vec![seg(400, &[5, 1, 5])],
                partitions: vec![],
            },
        ],
    }
}

#[tokio::test]
async fn dump_load_verify_and_a_second_opinion_from_pymilvus() {
    let (fname, bname) = (unique("books"), unique("prints"));
    let env = setup(&spec(&fname, &bname), "").await;
    let o = cmd(&env, &["dump"]);
    assert!(o.status.success(), "{}", text(&o));
    env.expected.check_dump(&env.dir.join("out")).unwrap();

    let o = cmd(&env, &["load"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("verified: every collection and partition matches the source"), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("partition tag \"2023-Q4 sales\" becomes 2.x partition \"p_2023_Q4_sales\""), "{}", text(&o));
    pymilvus_check(&env, &fname, &[("2023-Q4 sales", "p_2023_Q4_sales"), ("empty", "empty")]);
    pymilvus_check(&env, &bname, &[]);

    // Again: nothing imported twice, same counts, still verified.
    let o = cmd(&env, &["load"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("{fname:<24} imported 0 group(s) (0 rows), 2 already imported")), "{}", text(&o));
    pymilvus_check(&env, &fname, &[("2023-Q4 sales", "p_2023_Q4_sales"), ("empty", "empty")]);

    let o = cmd(&env, &["verify", "--col", &bname]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains(&fname));
}

#[tokio::test]
async fn migrate_runs_every_step_into_a_new_database() {
    let name = unique("mig");
    let spec = Spec { seed: 4, collections: vec![spec(&name, "unused").collections[0].clone()] };
    let db = unique("db");
    let env = setup(&spec, &format!("    database: {db}\n")).await;
    // Straight from meta.sqlite: migrate exports meta.json next to the dump first.
    let yaml = std::fs::read_to_string(&env.config).unwrap().replace(
        &format!("  mode: local\n  localFile: {}", s(&env.dir.join("migration_data/meta.json"))),
        &format!("  mode: sqlite\n  sqliteFile: {}", s(&env.dir.join("src/db/meta.sqlite"))),
    );
    assert!(yaml.contains("mode: sqlite"));
    std::fs::write(&env.config, yaml).unwrap();
    let o = cmd(&env, &["migrate"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("database \"{db}\"")) && out.contains("verified:"), "{}", text(&o));
    assert!(env.dir.join("out/meta.json").is_file());
    env.expected.check_dump(&env.dir.join("out")).unwrap();
}

#[tokio::test]
async fn a_collection_with_another_dimension_stops_the_load_before_any_import() {
    let name = unique("dim");
    let mut first = spec(&name, "unused");
    first.collections.truncate(1);
    let env = setup(&first, "").await;
    assert!(cmd(&env, &["dump"]).status.success());
    assert!(cmd(&env, &["load", "--no-verify"]).status.success());

    // The same collection name, dumped again with dim 8.
    let mut other = first.clone();
    other.collections[0].dim = 8;
    let env2 = setup(&other, "").await;
    assert!(cmd(&env2, &["dump"]).status.success());
    let o = cmd(&env2, &["load"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("existing collection \"{name}\" does not match: field \"data\" has dim 16, the 1.x collection has dim 8")),
        "{}",
        text(&o)
    );
    assert!(err.contains("Nothing was imported"), "{}", text(&o));
    assert!(!env2.dir.join("out/_journal").exists(), "a journal entry means something was submitted");
}

#[tokio::test]
async fn a_milvus_that_is_down_is_named() {
    let env = setup(&spec(&unique("down"), "unused"), "").await;
    assert!(cmd(&env, &["dump"]).status.success());
    let yaml = std::fs::read_to_string(&env.config).unwrap().replace(&endpoint(), "127.0.0.1:1");
    std::fs::write(&env.config, yaml).unwrap();
    let o = cmd(&env, &["load"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot reach Milvus at 127.0.0.1:1 (target.milvus2x.endpoint)"), "{}", text(&o));
}

#[tokio::test]
async fn the_1x_indexes_are_recreated_and_collections_loaded() {
    let (fname, bname) = (unique("hnsw"), unique("ivfbin"));
    let seg = |rows, deleted: &[i32]| SegmentSpec { rows, deleted: deleted.to_vec(), ..Default::default() };
    let spec = Spec {
        seed: 8,
        collections: vec![
            CollectionSpec {
                name: fname.clone(),
                dim: 16,
                metric: 1,
                engine_type: 11,
                index_params: r#"{"M":16,"efConstruction":200}"#.into(),
                dropped: false,
                segments: vec![SegmentSpec { indexed: true, ..seg(600, &[5, 2]) }],
                partitions: vec![],
            },
            CollectionSpec {
                name: bname.clone(),
                dim: 64,
                metric: 4,
                engine_type: 10,
                index_params: r#"{"nlist":16}"#.into(),
                dropped: false,
                segments: vec![seg(300, &[1])],
                partitions: vec![],
            },
        ],
    };
    let env = setup(&spec, "").await;
    assert!(cmd(&env, &["dump"]).status.success());
    let o = cmd(&env, &["load"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(r#"index HNSW L2 {"M":16,"efConstruction":200}, loaded after"#), "{}", text(&o));
    assert!(out.contains(r#"index BIN_IVF_FLAT JACCARD {"nlist":16}, loaded after"#), "{}", text(&o));

    let first = |name: &str| {
        let c = env.expected.collections.iter().find(|c| c.name == name).unwrap();
        let s = &c.partitions[0].segments[0];
        let width = if c.binary { c.dim as usize / 8 } else { c.dim as usize * 4 };
        (s.ids[10], s.vectors[10 * width..11 * width].to_vec())
    };
    let (fid, fvec) = first(&fname);
    let floats: Vec<f32> = fvec.chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    pymilvus_check_with(
        &env,
        &fname,
        &[],
        serde_json::json!({
            "index": {"index_type": "HNSW", "metric_type": "L2", "params": {"M": 16, "efConstruction": 200}},
            "search": [{"id": fid, "float": floats}],
        }),
    );
    let (bid, bvec) = first(&bname);
    let hex: String = bvec.iter().map(|b| format!("{b:02x}")).collect();
    pymilvus_check_with(
        &env,
        &bname,
        &[],
        serde_json::json!({
            "index": {"index_type": "BIN_IVF_FLAT", "metric_type": "JACCARD", "params": {"nlist": 16}},
            "search": [{"id": bid, "binary_hex": hex}],
        }),
    );
}

#[tokio::test]
async fn a_segment_larger_than_the_group_limit_is_split_and_counts_match() {
    let name = unique("split");
    let spec = Spec {
        seed: 3,
        collections: vec![CollectionSpec {
            name: name.clone(),
            dim: 64,
            metric: 1,
            engine_type: 1,
            index_params: "{}".into(),
            dropped: false,
            // 264 bytes a row: 10,000 rows are 2.5 MiB; 1 MiB groups -> 3 imports.
            segments: vec![SegmentSpec { rows: 10_000, deleted: vec![9_999, 0, 4_000, 4_000], ..Default::default() }],
            partitions: vec![],
        }],
    };
    let env = setup(&spec, "").await;
    let mut yaml = std::fs::read_to_string(&env.config).unwrap();
    yaml.push_str("migration:\n  maxGroupMiB: 1\n  cleanup: delete\n");
    std::fs::write(&env.config, yaml).unwrap();
    let o = cmd(&env, &["dump"]);
    assert!(o.status.success(), "{}", text(&o));
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(env.dir.join("out/manifest.json")).unwrap()).unwrap();
    let groups = manifest["collections"][0]["partitions"][0]["segments"][0]["groups"].as_array().unwrap().clone();
    assert_eq!(groups.len(), 3, "{groups:?}");
    assert_eq!(groups.iter().map(|g| g["rows"].as_u64().unwrap()).sum::<u64>(), 9_997);
    let o = cmd(&env, &["load"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("1 partition(s) 3 file group(s) 9997 rows"), "{}", text(&o));
    assert!(out.contains("verified: every collection and partition matches the source"), "{}", text(&o));
    assert!(out.contains("deleted 6 staged file(s)"), "{}", text(&o));
    pymilvus_check(&env, &name, &[]);
    // The staged npy files are gone, the manifest and journal stay: a re-run imports nothing.
    let npy = std::process::Command::new("find").arg(env.dir.join("out")).args(["-name", "*.npy"]).output().unwrap();
    assert!(npy.stdout.is_empty(), "npy files left: {}", String::from_utf8_lossy(&npy.stdout));
    let o = cmd(&env, &["load", "--no-verify"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("imported 0 group(s) (0 rows), 3 already imported"), "{}", text(&o));
}

#[tokio::test]
async fn rename_filter_and_collection_options() {
    let (a, b) = (unique("ren_a"), unique("ren_b"));
    let mut spec = spec(&a, &b);
    spec.collections[0].partitions.clear();
    let env = setup(&spec, "").await;
    let renamed = format!("{a}_v2");
    let mut yaml = std::fs::read_to_string(&env.config).unwrap();
    yaml.push_str(&format!(
        "migration:\n  collections: [{a}]\n  rename:\n    {a}: {renamed}\n  shards: 2\n  consistencyLevel: Strong\n  description: moved by the test\n"
    ));
    std::fs::write(&env.config, yaml).unwrap();
    assert!(cmd(&env, &["dump"]).status.success());
    let o = cmd(&env, &["load"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("{renamed} (1.x {a})")) && out.contains("verified:"), "{}", text(&o));
    assert!(!out.contains(&b), "the filtered-out collection was loaded: {out}");
    pymilvus_check_with(&env, &a, &[], serde_json::json!({"collection": renamed}));
    let script = format!(
        "from pymilvus import connections, utility, Collection\nconnections.connect(host='{h}', port='{p}')\nc = Collection('{renamed}')\n\
         print(utility.has_collection('{b}'), utility.has_collection('{a}'), c.description, c.num_shards)",
        h = endpoint().split(':').next().unwrap(),
        p = endpoint().split(':').nth(1).unwrap()
    );
    let o = Command::new(python()).arg("-c").arg(script).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "False False moved by the test 2");

    // onExists: fail stops before importing; skip leaves it alone.
    let yaml = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, format!("{yaml}  onExists: fail\n")).unwrap();
    let o = cmd(&env, &["load"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("collection \"{renamed}\" already exists (migration.onExists: fail)")), "{}", text(&o));
    std::fs::write(&env.config, format!("{yaml}  onExists: skip\n")).unwrap();
    let o = cmd(&env, &["load", "--no-verify"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("load: 0 collection(s)"), "{}", text(&o));
}
