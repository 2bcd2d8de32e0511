//! A fragmented installation against the real Milvus 2.3.5: 320 small segments across three
//! partitions, with deletions, a NaN row under `badData: reject` and an id repeated across
//! segments under `duplicateIds: keep-last`. `migrate` packs the segments, so it imports a
//! handful of file groups instead of 320, imported while it dumps, and every live row lands
//! exactly once — also when dump, load or migrate is killed at seeded moments and named steps
//! and run again (pymilvus checks every id once and the stored entities).

use std::path::{Path, PathBuf};
use std::time::Instant;

use mm_tests::interrupt::{attempt, finish, no_torn_npy, run_killed_after, run_killed_at, spawn, Attempt, Kill, Rng};
use mm_tests::milvus_env::{pymilvus_check_with, setup, Env};
use mm_tests::tool::{patch, text};
use mm_tests::{CollectionSpec, PartitionSpec, SegmentSpec, Spec};

const SEED: u64 = 20261128;
const KILLS: usize = 6;
const DIM: usize = 8;
/// Segments per partition: (tag, segments, rows each).
const LAYOUT: [(&str, usize, u64); 3] = [("", 160, 20), ("p1", 100, 15), ("p2", 60, 10)];

fn spec() -> Spec {
    let partition = |n: usize, rows: u64| -> Vec<SegmentSpec> {
        // Every seventh segment lost a row in 1.x.
        (0..n).map(|k| SegmentSpec { rows, deleted: if k % 7 == 3 { vec![(k % rows as usize) as i32] } else { vec![] }, ..Default::default() }).collect()
    };
    let (_, n, rows) = LAYOUT[0];
    Spec {
        seed: 11,
        collections: vec![CollectionSpec {
            name: "frag".into(),
            dim: DIM as u32,
            metric: 1,
            engine_type: 1,
            index_params: "{}".into(),
            dropped: false,
            segments: partition(n, rows),
            partitions: LAYOUT[1..]
                .iter()
                .map(|(tag, n, rows)| PartitionSpec { tag: tag.to_string(), dropped: false, segments: partition(*n, *rows) })
                .collect(),
        }],
    }
}

fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(found) = find(&p, name) {
                return Some(found);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

/// Plants the bad row and the repeated id in the source files; returns the ids that must land.
/// Segment 10 of the default partition gets a NaN in row 5 (its id is left out); segment 200 (in
/// p1) takes, in row 2, the id of segment 20's row 4, which keep-last then leaves out there.
fn plant(env: &Env) -> Vec<i64> {
    let segs: Vec<_> = env.expected.collections[0].partitions.iter().flat_map(|p| &p.segments).collect();
    let (nan_seg, old_seg, new_seg) = (segs[10], segs[20], segs[200]);
    let src = env.dir.join("src");
    assert!(old_seg.segment_id.parse::<u64>().unwrap() < new_seg.segment_id.parse::<u64>().unwrap(), "keep-last keeps the newer");
    // Rows 5, 4 and 2 are live: segment 10 lost row 10; 20 and p1's 40th lost none.
    let rv = find(&src, &format!("{}.rv", nan_seg.segment_id)).unwrap();
    patch(&rv, 8 + (5 * DIM + 1) * 4, &f32::NAN.to_le_bytes());
    let uid = find(&src, &format!("{}.uid", new_seg.segment_id)).unwrap();
    patch(&uid, 8 + 2 * 8, &old_seg.ids[4].to_le_bytes());
    let mut ids: Vec<i64> = segs.iter().flat_map(|s| s.ids.iter().copied()).collect();
    ids.retain(|&id| id != nan_seg.ids[5] && id != new_seg.ids[2]);
    ids
}

const POLICY: &str = "  badData: reject\n  duplicateIds: keep-last\n";

/// Milvus holds each of `ids` once, in the right partitions, and nothing else.
fn check(env: &Env, a: &Attempt, ids: &[i64]) {
    let per_partition: Vec<usize> = env.expected.collections[0].partitions.iter().map(|p| p.segments.iter().map(|s| s.ids.len()).sum()).collect();
    // The NaN row was in the default partition; the repeated id's kept copy is in p1 while its
    // older copy (default partition) is left out.
    let partitions = serde_json::json!({"_default": per_partition[0] - 2, "p1": per_partition[1], "p2": per_partition[2]});
    pymilvus_check_with(
        env,
        "frag",
        &[("p1", "p1"), ("p2", "p2")],
        serde_json::json!({"collection": a.collection, "partitions": partitions, "vectors": [], "exact_ids": ids}),
    );
}

/// Imports the run reported first ("imported N group(s)": those made while dumping).
fn groups_imported(out: &str) -> u64 {
    let at = out.find(" group(s) (").unwrap_or_else(|| panic!("no import count in:\n{out}"));
    out[..at].rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_fragmented_installation_migrates_in_few_imports_exactly_once_even_when_killed() {
    let env = setup(&spec(), "").await;
    let ids = plant(&env);
    let segments: usize = LAYOUT.iter().map(|(_, n, _)| n).sum();

    // A clean migrate: a few imports for 320 segments, every row once, verified.
    let a = attempt(&env, 0, "frag", POLICY);
    let t = Instant::now();
    let o = finish(spawn(&env, &a, "migrate", None), "migrate");
    let took = t.elapsed();
    let out = String::from_utf8_lossy(&o.stdout);
    // The packs were imported as the dump finished them; the load after the dump found them in.
    let imports = groups_imported(&out);
    assert!(imports <= 6 && (imports as usize) * 50 < segments, "{imports} imports for {segments} segments:\n{}", text(&o));
    assert!(out.contains(&format!("imported {imports} group(s) ({} rows) while dumping", ids.len())), "{}", text(&o));
    assert!(out.contains(&format!("imported 0 group(s) (0 rows), {imports} already imported")), "{}", text(&o));
    assert!(out.contains("verified"), "{}", text(&o));
    assert!(out.contains("packed into"), "{}", text(&o));
    check(&env, &a, &ids);
    // Rejects stay per segment: the NaN row and the older copy of the repeated id.
    assert_eq!(std::fs::read_dir(a.out.join("_rejects/frag/_default")).unwrap().count(), 2);
    let t = Instant::now();
    finish(spawn(&env, &attempt(&env, 99, "frag", POLICY), "dump", None), "dump");
    let dump_time = t.elapsed();
    let load_time = took.saturating_sub(dump_time);
    eprintln!("clean migrate of {segments} segments: {took:?} ({imports} imports); a dump alone: {dump_time:?}");

    // Killed at named steps and at seeded moments, then run again: exactly once every time.
    let mut kills = vec![
        Kill::Step { in_load: false, point: "file-published:2" },
        Kill::Step { in_load: true, point: "import-submitted:1" },
        Kill::Step { in_load: true, point: "import-polled:1" },
        Kill::Step { in_load: true, point: "file-published:100" },
    ];
    let mut rng = Rng(SEED);
    for i in 0..KILLS {
        let (in_load, scale) = if i % 2 == 1 { (true, load_time) } else { (false, dump_time) };
        let slice = (i / 2) as f64;
        kills.push(Kill::At { in_load, after: scale.mul_f64((slice + rng.unit()) / (KILLS / 2) as f64 * 0.9) });
    }
    let mut killed = 0;
    for (k, kill) in kills.iter().enumerate() {
        eprintln!("point {}: {kill:?}", k + 1);
        let a = attempt(&env, k + 1, "frag", POLICY);
        let (in_load, was_killed) = match kill {
            Kill::Step { in_load, point } => {
                if *in_load {
                    finish(spawn(&env, &a, "dump", None), "dump");
                }
                run_killed_at(&env, &a, if *in_load { "load" } else { "dump" }, point);
                (*in_load, true)
            }
            Kill::At { in_load, after } => {
                if *in_load {
                    finish(spawn(&env, &a, "dump", None), "dump");
                }
                (*in_load, run_killed_after(&env, &a, if *in_load { "load" } else { "dump" }, *after))
            }
        };
        killed += was_killed as usize;
        no_torn_npy(&a.out);
        if !in_load {
            finish(spawn(&env, &a, "dump", None), "dump again");
        }
        let o = finish(spawn(&env, &a, "load", None), &format!("load after {kill:?}"));
        assert!(String::from_utf8_lossy(&o.stdout).contains("verified"), "{kill:?}:\n{}", text(&o));
        check(&env, &a, &ids);
    }
    assert!(killed >= kills.len() - 2, "only {killed} of {} runs were interrupted", kills.len());

    // `migrate` killed while it imports during the dump (right after Milvus took the first
    // import, and while polling it), then run again: still every row once.
    for (k, point) in ["import-submitted:1", "import-polled:1"].into_iter().enumerate() {
        eprintln!("migrate killed at {point}");
        let a = attempt(&env, 50 + k, "frag", POLICY);
        run_killed_at(&env, &a, "migrate", point);
        let o = finish(spawn(&env, &a, "migrate", None), &format!("migrate after a kill at {point}"));
        assert!(String::from_utf8_lossy(&o.stdout).contains("verified"), "{point}:\n{}", text(&o));
        check(&env, &a, &ids);
    }
}
