//! `verify --full` and `repair` on the real Milvus 2.3.5: a migrated collection damaged through
//! pymilvus (10 rows inserted twice, 10 deleted, 5 foreign ids inserted, 3 vectors overwritten)
//! is reconciled key by key: `verify --full` exits 1 and its JSON report lists exactly those ids
//! (the test picked them, the tool did not); `repair` without --delete-extra fixes all but the
//! foreign ids and still fails; `repair --delete-extra` ends clean, and pymilvus then finds
//! every live id once with the source's vectors and nothing else. The same from a Parquet dump
//! (`migration.format: parquet`) loaded with inserts through a kill: its rows are read back from
//! rows.parquet for the insert, the reconciliation and the repair.

use mm_tests::interrupt::{attempt, finish, spawn, Attempt};
use mm_tests::milvus_env::{pymilvus_check_with, setup, Env};
use mm_tests::{CollectionSpec, PartitionSpec, SegmentSpec, Spec};

/// `first` rows in the first segment of _default.
fn spec(first: u64) -> Spec {
    let seg = |rows, deleted: &[i32]| SegmentSpec { rows, deleted: deleted.to_vec(), ..Default::default() };
    Spec {
        seed: 29,
        collections: vec![CollectionSpec {
            name: "fix".into(),
            dim: 16,
            metric: 1,
            engine_type: 1,
            index_params: "{}".into(),
            dropped: false,
            segments: vec![seg(first, &[3, 70]), seg(1500, &[])],
            partitions: vec![PartitionSpec { tag: "p".into(), dropped: false, segments: vec![seg(2000, &[9])] }],
        }],
    }
}

/// Damages `collection` through pymilvus: `twice` inserted again with their own vectors and
/// `overwrite` upserted with other vectors (in _default), `delete` deleted (in p), `foreign`
/// inserted (in _default).
fn damage(collection: &str, twice: &[i64], delete: &[i64], foreign: &[i64], overwrite: &[i64]) {
    let script = r#"
import json, sys
from pymilvus import Collection, connections
host, port = sys.argv[1].rsplit(":", 1)
connections.connect(host=host, port=port)
c = Collection(sys.argv[2])
twice, delete, foreign, overwrite = (json.loads(a) for a in sys.argv[3:7])
if not c.indexes:
    c.create_index("data", {"index_type": "FLAT", "metric_type": "L2", "params": {}})
c.load()
rows = c.query(expr=f"id in {twice}", output_fields=["id", "data"], consistency_level="Strong")
assert len(rows) == len(twice), rows
c.insert([[r["id"] for r in rows], [[float(x) for x in r["data"]] for r in rows]], partition_name="_default")
c.delete(expr=f"id in {delete}", partition_name="p")
c.insert([foreign, [[0.25] * 16 for _ in foreign]], partition_name="_default")
c.upsert([overwrite, [[-7.5] * 16 for _ in overwrite]], partition_name="_default")
c.flush()
print("damaged")
"#;
    let j = |v: &[i64]| serde_json::to_string(v).unwrap();
    let o = std::process::Command::new(mm_tests::tool::python())
        .args(["-c", script, &mm_tests::milvus_env::endpoint(), collection, &j(twice), &j(delete), &j(foreign), &j(overwrite)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

/// Runs `cmd` (with args) writing the JSON run report; returns (exit code, stdout, report).
fn run(env: &Env, a: &Attempt, args: &[&str]) -> (i32, String, serde_json::Value) {
    let report = env.dir.join(format!("report-{}.json", mm_tests::milvus_env::unique("r")));
    let o = std::process::Command::new(mm_tests::tool::binary())
        .current_dir(&env.dir)
        .args(args)
        .arg(format!("--config={}", a.config.display()))
        .arg(format!("--report={}", report.display()))
        .output()
        .unwrap();
    let out = format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let json = serde_json::from_slice(&std::fs::read(&report).unwrap_or_else(|e| panic!("no report ({e}):\n{out}"))).unwrap();
    (o.status.code().unwrap_or(-1), out, json)
}

/// (missing, duplicated, extra, differing) ids listed for the partition with this 1.x tag.
fn findings(report: &serde_json::Value, tag: &str) -> [Vec<i64>; 4] {
    let p = report["collections"][0]["partitions"].as_array().unwrap().iter().find(|p| p["tag"] == tag).unwrap();
    let r = &p["reconciled"];
    let ids = |k: &str| -> Vec<i64> {
        let f = &r[k];
        let v: Vec<i64> = f["first"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
        assert_eq!(f["count"].as_u64().unwrap(), v.len() as u64, "{k}: count and list agree below --max-listed");
        v
    };
    [ids("missing"), ids("duplicated"), ids("extra"), ids("differing")]
}

fn none() -> Vec<i64> {
    Vec::new()
}

#[tokio::test]
async fn verify_full_lists_exactly_the_damage_and_repair_makes_it_clean() {
    let env = setup(&spec(3000), "").await;
    let a = attempt(&env, 0, "fix", "  index: none\n");
    finish(spawn(&env, &a, "migrate", None), "migrate");
    damage_find_repair(&env, &a);
}

/// A Parquet dump loaded with inserts (1 MiB batches: 14 169 rows at dim 16, so the pack of
/// _default's segments takes three), killed after its third Insert was stored and before it was
/// recorded: the re-run starts past the acknowledged rows inside the file's first row group and
/// upserts the batch in doubt. Then the same damage is found and repaired from rows.parquet.
#[tokio::test]
async fn a_parquet_dump_inserted_through_a_kill_is_reconciled_and_repaired_alike() {
    let env = setup(&spec(30_000), "").await;
    let a = attempt(&env, 1, "fix", "  index: none\n  format: parquet\n  loadMode: insert\n  insertBatchMiB: 1\n");
    let o = spawn(&env, &a, "migrate", Some("insert-sent:3")).wait_with_output().unwrap();
    assert!(!o.status.success(), "{}", mm_tests::tool::text(&o));
    let o = finish(spawn(&env, &a, "migrate", None), "migrate");
    let out = String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
    // The batch in doubt starts past the acknowledged rows of its group, whichever group went first.
    let resent: Vec<u64> = out
        .lines()
        .filter_map(|l| l.split_once(": rows ")?.1.split_once(" were sent before and no reply was recorded; sending them again with Upsert"))
        .filter_map(|(range, _)| range.split_once("..")?.0.parse().ok())
        .collect();
    assert!(matches!(resent.as_slice(), [first] if *first > 0 && first % 14_169 == 0), "{resent:?}\n{out}");
    let files = mm_tests::tool::files_under(&a.out);
    assert!(files.iter().any(|p| p.ends_with("rows.parquet")) && !files.iter().any(|p| p.extension().is_some_and(|x| x == "npy")), "{files:?}");
    damage_find_repair(&env, &a);
}

/// Damages the migrated collection through pymilvus, then: verify --full lists exactly the
/// damage, repair without --delete-extra leaves the foreign ids, with it ends clean, and pymilvus
/// finds every live id once with the source's vectors.
fn damage_find_repair(env: &Env, a: &Attempt) {
    let c = &env.expected.collections[0];
    let ids = |tag: &str| -> Vec<i64> { c.partitions.iter().find(|p| p.tag == tag).unwrap().segments.iter().flat_map(|s| s.ids.clone()).collect() };
    let (default, p) = (ids(""), ids("p"));
    // Seeded picks over both segments of _default and the partition's rows.
    let pick = |from: &[i64], n: usize, salt: usize| -> Vec<i64> {
        let mut v: Vec<i64> = (0..n).map(|k| from[(k * 389 + salt * 97) % from.len()]).collect();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), n);
        v
    };
    let twice = pick(&default, 10, 1);
    let overwrite: Vec<i64> = pick(&default, 13, 5).into_iter().filter(|i| !twice.contains(i)).take(3).collect();
    let delete = pick(&p, 10, 2);
    let foreign: Vec<i64> = (0..5).map(|k| 9_000_000_000 + k * 7).collect();
    assert_eq!(overwrite.len(), 3);

    // Clean first: nothing to find.
    let (code, out, _) = run(env, a, &["verify", "--full"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verified: every primary key"), "{out}");

    damage(&a.collection, &twice, &delete, &foreign, &overwrite);
    let (code, out, report) = run(env, a, &["verify", "--full"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(findings(&report, ""), [none(), twice.clone(), foreign.clone(), overwrite.clone()], "{out}");
    assert_eq!(findings(&report, "p"), [delete.clone(), none(), none(), none()], "{out}");
    assert_eq!(report["outcome"], "failed");

    // Without --delete-extra the foreign ids stay, and the final verify says so.
    let (code, out, report) = run(env, a, &["repair"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(findings(&report, ""), [none(), none(), foreign.clone(), none()], "{out}");
    assert_eq!(findings(&report, "p"), [none(), none(), none(), none()], "{out}");

    let (code, out, report) = run(env, a, &["repair", "--delete-extra"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("5 extra deleted"), "{out}");
    assert_eq!(report["outcome"], "succeeded");
    let (code, out, _) = run(env, a, &["verify", "--full"]);
    assert_eq!(code, 0, "{out}");
    // pymilvus: every live id once, vectors as the source, counts and (after compaction) stored
    // entities exact, no foreign or deleted id.
    let live: Vec<i64> = default.iter().chain(&p).copied().collect();
    let vectors: Vec<serde_json::Value> = [(&twice, "_default", ""), (&overwrite, "_default", ""), (&delete, "p", "p")]
        .iter()
        .flat_map(|(ids, name, tag)| ids.iter().map(move |id| serde_json::json!({"id": id, "partition": name, "float": source_vector(c, tag, *id)})))
        .collect();
    pymilvus_check_with(env, "fix", &[("p", "p")], serde_json::json!({"collection": a.collection, "exact_ids": live, "compact": true, "vectors": vectors}));
}

/// The generator's vector of `id` in the partition with this tag.
fn source_vector(c: &mm_tests::expect::ExpectedCollection, tag: &str, id: i64) -> Vec<f32> {
    let width = c.dim as usize * 4;
    let p = c.partitions.iter().find(|p| p.tag == tag).unwrap();
    let (s, i) = p.segments.iter().find_map(|s| s.ids.iter().position(|x| *x == id).map(|i| (s, i))).unwrap();
    s.vectors[i * width..(i + 1) * width].chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}
