//! Exactly once under `kill -9`: `dump` and `load` are killed at seeded random moments and at
//! named steps (right after Milvus took an import and before the journal recorded it, while
//! polling, during the index build, right after a file was published), then the same command is
//! run again. Every time, the real Milvus must hold each live source row exactly once (pymilvus
//! checks counts, every id once, vectors), and no npy file may be half-written under its name.

use std::time::Instant;

use mm_tests::interrupt::{attempt, finish, no_torn_npy, run_killed_after, run_killed_at, spawn, Kill, Rng};
use mm_tests::milvus_env::{pymilvus_check_with, setup, Env};
use mm_tests::{CollectionSpec, PartitionSpec, SegmentSpec, Spec};

const SEED: u64 = 20261125;
const DUMP_POINTS: usize = 4;
const LOAD_POINTS: usize = 10;

/// One float collection: two default-partition segments and a tagged partition, with deletions.
fn spec() -> Spec {
    let seg = |rows, deleted: &[i32]| SegmentSpec { rows, deleted: deleted.to_vec(), ..Default::default() };
    Spec {
        seed: 5,
        collections: vec![CollectionSpec {
            name: "eo".into(),
            dim: 8,
            metric: 1,
            engine_type: 2,
            index_params: r#"{"nlist":8}"#.into(),
            dropped: false,
            segments: vec![seg(300, &[4, 299, 4]), seg(200, &[0])],
            partitions: vec![PartitionSpec { tag: "p".into(), dropped: false, segments: vec![seg(150, &[149, 7])] }],
        }],
    }
}

/// Interrupts as `kill` says, runs the interrupted command again, finishes the migration, and
/// checks that Milvus holds every live row exactly once.
fn interrupted_migration(env: &Env, k: usize, kill: &Kill) -> bool {
    let a = attempt(env, k, "eo", "");
    let killed = match kill {
        Kill::At { in_load: false, after } => run_killed_after(env, &a, "dump", *after),
        Kill::Step { in_load: false, point } => {
            run_killed_at(env, &a, "dump", point);
            true
        }
        Kill::At { in_load: true, after } => {
            finish(spawn(env, &a, "dump", None), "dump");
            run_killed_after(env, &a, "load", *after)
        }
        Kill::Step { in_load: true, point } => {
            finish(spawn(env, &a, "dump", None), "dump");
            run_killed_at(env, &a, "load", point);
            true
        }
    };
    no_torn_npy(&a.out);
    if matches!(kill, Kill::At { in_load: false, .. } | Kill::Step { in_load: false, .. }) {
        finish(spawn(env, &a, "dump", None), "dump again");
    }
    let o = finish(spawn(env, &a, "load", None), &format!("load after {kill:?}"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("verified"), "{kill:?}: load did not verify:\n{out}");
    let ids: Vec<i64> = env.expected.collections[0].partitions.iter().flat_map(|p| &p.segments).flat_map(|s| s.ids.clone()).collect();
    pymilvus_check_with(env, "eo", &[("p", "p")], serde_json::json!({"collection": a.collection, "exact_ids": ids}));
    killed
}

#[tokio::test]
async fn killed_anywhere_a_rerun_leaves_each_live_row_exactly_once() {
    let env = setup(&spec(), "").await;

    // A clean run sets the time scale of the random points.
    let a = attempt(&env, 0, "eo", "");
    let t0 = Instant::now();
    finish(spawn(&env, &a, "dump", None), "dump");
    let dump_time = t0.elapsed();
    let t1 = Instant::now();
    finish(spawn(&env, &a, "load", None), "load");
    let load_time = t1.elapsed();
    eprintln!("clean run: dump {dump_time:?}, load {load_time:?}");

    let mut kills = vec![
        Kill::Step { in_load: false, point: "file-published:3" },
        Kill::Step { in_load: true, point: "import-submitted:1" },
        Kill::Step { in_load: true, point: "import-submitted:2" },
        Kill::Step { in_load: true, point: "import-polled:1" },
        Kill::Step { in_load: true, point: "file-published:2" },
        Kill::Step { in_load: true, point: "import-polled:2" },
        Kill::Step { in_load: true, point: "index-polled:1" },
    ];
    // Stratified: one point in each slice of the dump, then of the load, at a seeded place within it.
    let mut rng = Rng(SEED);
    for i in 0..DUMP_POINTS {
        kills.push(Kill::At { in_load: false, after: dump_time.mul_f64((i as f64 + rng.unit()) / DUMP_POINTS as f64) });
    }
    for i in 0..LOAD_POINTS {
        kills.push(Kill::At { in_load: true, after: load_time.mul_f64((i as f64 + rng.unit()) / LOAD_POINTS as f64) });
    }
    let mut killed = 0;
    for (k, kill) in kills.iter().enumerate() {
        eprintln!("point {}: {kill:?}", k + 1);
        killed += interrupted_migration(&env, k + 1, kill) as usize;
    }
    // Nearly every point must really interrupt something (a last slice may see the run end).
    assert!(killed >= kills.len() - 3, "only {killed} of {} runs were interrupted", kills.len());
}
