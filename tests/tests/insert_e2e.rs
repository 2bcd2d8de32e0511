//! `migration.loadMode: insert` on the real Milvus 2.3.5: rows reach Milvus over gRPC in
//! batches, so the dump never has to be where Milvus reads (the server lists no import task),
//! and `kill -9` at seeded points (right after Milvus stored a batch and before the journal
//! said so, right after a journal entry was published, at random moments, and once more while
//! the batch in doubt is being upserted) followed by a re-run leaves every live row exactly
//! once: pymilvus finds every id once, counts exact, vectors equal, and, after a compaction
//! has dropped the copies an Upsert replaced, exactly the live rows stored. Ids the source repeats
//! land the same way in both modes, as `duplicateIds` says.

use std::time::Instant;

use mm_tests::interrupt::{attempt, finish, run_killed_after, run_killed_at, spawn, Rng};
use mm_tests::milvus_env::{pymilvus_check_with, setup, Env};
use mm_tests::{CollectionSpec, PartitionSpec, SegmentSpec, Spec};

const SEED: u64 = 20261129;
/// At dim 128 a row is 522 bytes with its key and framing: 1 MiB batches hold 2008 rows, so
/// each segment below goes in two or three batches.
const INSERT: &str = "  loadMode: insert\n  insertBatchMiB: 1\n  index: none\n";

fn spec() -> Spec {
    let seg = |rows, deleted: &[i32]| SegmentSpec { rows, deleted: deleted.to_vec(), ..Default::default() };
    Spec {
        seed: 13,
        collections: vec![CollectionSpec {
            name: "ins".into(),
            dim: 128,
            metric: 1,
            engine_type: 1,
            index_params: "{}".into(),
            dropped: false,
            segments: vec![seg(5000, &[0, 4999, 17]), seg(4500, &[])],
            partitions: vec![PartitionSpec { tag: "p".into(), dropped: false, segments: vec![seg(3000, &[5])] }],
        }],
    }
}

fn live_ids(env: &Env) -> Vec<i64> {
    env.expected.collections[0].partitions.iter().flat_map(|p| &p.segments).flat_map(|s| s.ids.clone()).collect()
}

/// Every live row once in `collection`; `compact`: first let a compaction drop the copies an
/// Upsert replaced (until then the row statistics still count them).
fn exactly_once(env: &Env, collection: &str) {
    pymilvus_check_with(env, "ins", &[("p", "p")], serde_json::json!({"collection": collection, "exact_ids": live_ids(env), "compact": true, "no_imports": true}));
}

#[tokio::test]
async fn an_insert_migration_needs_no_shared_store_and_lands_every_row_once() {
    let env = setup(&spec(), "").await;
    let a = attempt(&env, 0, "ins", INSERT);
    let o = finish(spawn(&env, &a, "migrate", None), "migrate");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("verified"), "{out}");
    exactly_once(&env, &a.collection);
    // Again: every batch is acknowledged in the journal; nothing is sent twice.
    let o = finish(spawn(&env, &a, "load", None), "load again");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("verified"), "{out}");
    exactly_once(&env, &a.collection);
}

#[tokio::test]
async fn killed_at_seeded_points_a_rerun_leaves_each_live_row_exactly_once() {
    let env = setup(&spec(), "").await;
    let a = attempt(&env, 0, "ins", INSERT);
    finish(spawn(&env, &a, "dump", None), "dump");
    let t = Instant::now();
    finish(spawn(&env, &a, "load", None), "load");
    let load_time = t.elapsed();
    eprintln!("clean insert load: {load_time:?}");

    let mut rng = Rng(SEED);
    // Named steps at seeded counts: a batch stored and not recorded; a journal entry published.
    let steps: Vec<String> = {
        let mut pick = |n: u64| 1 + (rng.unit() * n as f64) as u64;
        let mut steps: Vec<String> = (0..4).map(|_| format!("insert-sent:{}", pick(6))).collect();
        steps.extend((0..3).map(|_| format!("file-published:{}", pick(14))));
        steps
    };
    let mut k = 1;
    for step in &steps {
        eprintln!("point {k}: {step}");
        let a = attempt(&env, k, "ins", INSERT);
        finish(spawn(&env, &a, "dump", None), "dump");
        run_killed_at(&env, &a, "load", step);
        let o = finish(spawn(&env, &a, "load", None), &format!("load after {step}"));
        assert!(String::from_utf8_lossy(&o.stdout).contains("verified"), "{step}");
        exactly_once(&env, &a.collection);
        k += 1;
    }
    // Killed again while the batch in doubt is being sent with Upsert.
    eprintln!("point {k}: insert-sent:2, then upsert-sent:1");
    let a = attempt(&env, k, "ins", INSERT);
    finish(spawn(&env, &a, "dump", None), "dump");
    run_killed_at(&env, &a, "load", "insert-sent:2");
    run_killed_at(&env, &a, "load", "upsert-sent:1");
    let o = finish(spawn(&env, &a, "load", None), "load after two kills");
    assert!(String::from_utf8_lossy(&o.stdout).contains("verified"));
    exactly_once(&env, &a.collection);
    k += 1;
    // Seeded moments through the load.
    let mut killed = 0;
    for i in 0..3 {
        let after = load_time.mul_f64((i as f64 + rng.unit()) / 3.0);
        eprintln!("point {k}: kill after {after:?}");
        let a = attempt(&env, k, "ins", INSERT);
        finish(spawn(&env, &a, "dump", None), "dump");
        killed += run_killed_after(&env, &a, "load", after) as usize;
        let o = finish(spawn(&env, &a, "load", None), "load after a kill");
        assert!(String::from_utf8_lossy(&o.stdout).contains("verified"));
        exactly_once(&env, &a.collection);
        k += 1;
    }
    assert!(k > 10, "at least 10 points");
    assert!(killed >= 2, "only {killed} of 3 timed kills interrupted the load");
}

/// (entities stored after a flush, count(*)) of a collection, by pymilvus.
fn counts(collection: &str) -> (u64, u64) {
    let script = r#"
import sys
from pymilvus import Collection, connections
host, port = sys.argv[1].rsplit(":", 1)
connections.connect(host=host, port=port)
c = Collection(sys.argv[2])
c.flush()
c.compact()
c.wait_for_compaction_completed(timeout=300)
c.flush()
if not c.indexes:
    c.create_index("data", {"index_type": "FLAT", "metric_type": "L2", "params": {}})
c.load()
n = c.query(expr="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
print(c.num_entities, n)
"#;
    let o = std::process::Command::new(mm_tests::tool::python())
        .args(["-c", script, &mm_tests::milvus_env::endpoint(), collection])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let v: Vec<u64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert!(o.status.success() && v.len() == 2, "{out}\n{}", String::from_utf8_lossy(&o.stderr));
    (v[0], v[1])
}

/// Ids repeated across segments (rows 200..299 of the first segment reappear in the second):
/// both load modes store the same, as `duplicateIds` says: every copy with keep-all, the newest
/// only with keep-last; and count(*) answers the same for both.
#[tokio::test]
async fn repeated_source_ids_follow_duplicate_ids_the_same_way_in_both_modes() {
    let seg = |first: i64| SegmentSpec { rows: 300, first_id: Some(first), ..Default::default() };
    let spec = Spec {
        seed: 17,
        collections: vec![CollectionSpec {
            name: "rep".into(),
            dim: 8,
            metric: 1,
            engine_type: 1,
            index_params: "{}".into(),
            dropped: false,
            segments: vec![seg(1000), seg(1200)],
            partitions: vec![],
        }],
    };
    let env = setup(&spec, "").await;
    let mut k = 0;
    for (policy, want) in [("keep-all", 600), ("keep-last", 500)] {
        let mut seen = Vec::new();
        for mode in ["import", "insert"] {
            k += 1;
            let a = attempt(&env, k, "rep", &format!("  loadMode: {mode}\n  duplicateIds: {policy}\n  index: none\n"));
            finish(spawn(&env, &a, "migrate", None), &format!("migrate {mode} {policy}"));
            seen.push((mode, counts(&a.collection)));
        }
        assert!(seen.iter().all(|(_, c)| c.0 == want) && seen[0].1 == seen[1].1, "{policy}: (stored, count(*)) per mode {seen:?}, want {want} stored");
    }
}
