//! The bad-data policy, repeated primary keys and the run report, end to end against the real
//! Milvus: a NaN and an infinity in the vectors and an id repeated across segments.
//! Default (`fail`, `keep-all`): the dump stops naming the file, row, id and value, warns about
//! the repeat, and its report says failed. `reject` + `keep-last`: both bad rows and the older
//! copy go to reject files, Milvus gets every other row exactly once, verify passes, and the
//! reports count it all.

use std::path::{Path, PathBuf};

use mm_tests::milvus_env::{cmd, pymilvus_check_with, s, setup, unique, Env};
use mm_tests::tool::{patch, text};
use mm_tests::{CollectionSpec, SegmentSpec, Spec};

const DIM: usize = 4;

fn find(dir: &Path, name: &str) -> PathBuf {
    for e in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let p = e.path();
        if p.is_dir() {
            let found = find(&p, name);
            if found.as_os_str().len() > 0 {
                return found;
            }
        } else if p.file_name().unwrap() == name {
            return p;
        }
    }
    PathBuf::new()
}

fn report(env: &Env, name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(env.dir.join(name)).unwrap()).unwrap()
}

fn with_report(env: &Env, command: &str, name: &str) -> std::process::Output {
    let path = env.dir.join(name);
    cmd(env, &[command, "--report", s(&path)])
}

#[tokio::test]
async fn nan_inf_and_repeated_ids_fail_by_default_and_are_rejected_on_request() {
    let name = unique("policy");
    let seg = |deleted: &[i32]| SegmentSpec { rows: 50, deleted: deleted.to_vec(), ..Default::default() };
    let spec = Spec {
        seed: 3,
        collections: vec![CollectionSpec {
            name: name.clone(),
            dim: DIM as u32,
            metric: 1,
            engine_type: 1,
            index_params: "{}".into(),
            dropped: false,
            segments: vec![seg(&[]), seg(&[3])],
            partitions: vec![],
        }],
    };
    let env = setup(&spec, "").await;
    let segs = &env.expected.collections[0].partitions[0].segments;
    let (s0, s1) = (&segs[0], &segs[1]);
    assert!(s0.segment_id.parse::<u64>().unwrap() < s1.segment_id.parse::<u64>().unwrap());
    let rv0 = find(&env.dir.join("src"), &format!("{}.rv", s0.segment_id));
    let rv1 = find(&env.dir.join("src"), &format!("{}.rv", s1.segment_id));
    let uid1 = find(&env.dir.join("src"), &format!("{}.uid", s1.segment_id));
    // Segment 0 row 10, component 2: NaN. Segment 1 row 20, component 0: +inf.
    patch(&rv0, 8 + (10 * DIM + 2) * 4, &f32::NAN.to_le_bytes());
    patch(&rv1, 8 + (20 * DIM) * 4, &f32::INFINITY.to_le_bytes());
    // Segment 1 row 5 takes the id of segment 0 row 7.
    patch(&uid1, 8 + 5 * 8, &s0.ids[7].to_le_bytes());

    // Default policy: stop, naming everything; the repeat is reported; the report says failed.
    let o = with_report(&env, "dump", "dump-fail.json");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let all = text(&o);
    assert!(all.contains(&format!("{}.rv", s0.segment_id)) && all.contains(&format!("row 10 (id {}): component 2 of the vector is NaN", s0.ids[10])), "{all}");
    assert!(all.contains("migration.badData: skip or reject"), "{all}");
    assert!(all.contains("1 id(s) appear more than once (1 extra copies") && all.contains("every copy is kept"), "{all}");
    assert!(!env.dir.join("out/manifest.json").exists());
    let r = report(&env, "dump-fail.json");
    assert_eq!(r["outcome"], "failed", "{r:#}");
    assert!(r["error"].as_str().unwrap().contains("no manifest was written"), "{r:#}");
    let p = &r["collections"][0]["partitions"][0];
    assert_eq!((p["complete"].as_bool(), p["segmentsFailed"].as_u64()), (Some(false), Some(2)), "{r:#}");

    // reject + keep-last.
    let yaml = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, format!("{yaml}migration:\n  badData: reject\n  duplicateIds: keep-last\n")).unwrap();
    let o = with_report(&env, "dump", "dump.json");
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("only the newest copy of each is kept"), "{}", text(&o));
    let lines = |seg: &str| -> Vec<serde_json::Value> {
        let p = env.dir.join(format!("out/_rejects/{name}/_default/{seg}.jsonl"));
        let t = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        t.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let r0 = lines(&s0.segment_id);
    assert_eq!(r0.len(), 2, "{r0:?}");
    assert_eq!((r0[0]["row"].as_u64(), r0[0]["id"].as_i64()), (Some(7), Some(s0.ids[7])));
    assert!(r0[0]["reason"].as_str().unwrap().contains("keep-last"));
    assert_eq!((r0[1]["row"].as_u64(), r0[1]["vector"][2].as_str()), (Some(10), Some("NaN")));
    let r1 = lines(&s1.segment_id);
    assert_eq!(r1.len(), 1, "{r1:?}");
    assert_eq!((r1[0]["row"].as_u64(), r1[0]["vector"][0].as_str()), (Some(20), Some("inf")));
    let r = report(&env, "dump.json");
    assert_eq!(r["outcome"], "succeeded");
    let p = &r["collections"][0]["partitions"][0];
    assert_eq!(
        (p["sourceRows"].as_u64(), p["deleted"].as_u64(), p["dropped"].as_u64(), p["duplicatesDropped"].as_u64(), p["dumped"].as_u64()),
        (Some(100), Some(1), Some(2), Some(1), Some(96)),
        "{r:#}"
    );
    assert_eq!(p["rejectFiles"].as_array().unwrap().len(), 2);

    // Load: Milvus holds each remaining row once, and verify (which skips dropped rows) passes.
    let o = with_report(&env, "load", "load.json");
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("verified"), "{}", text(&o));
    let s1_row = |r: usize| s1.ids[r - usize::from(r > 3)]; // s1 lists live ids; row 3 is deleted
    let mut ids: Vec<i64> = s0.ids.iter().enumerate().filter(|(r, _)| *r != 10).map(|(_, id)| *id).collect();
    ids.extend(s1.ids.iter().copied().filter(|id| *id != s1_row(5) && *id != s1_row(20)));
    assert_eq!(ids.len(), 96);
    pymilvus_check_with(&env, &name, &[], serde_json::json!({"partitions": {"_default": 96}, "vectors": [], "exact_ids": ids}));
    let r = report(&env, "load.json");
    assert_eq!(r["outcome"], "succeeded", "{r:#}");
    let c = &r["collections"][0];
    assert_eq!((c["verified"].as_bool(), c["imported"].as_u64(), c["groupsImported"].as_u64()), (Some(true), Some(96), Some(1)), "{r:#}");
    let p = &c["partitions"][0];
    assert_eq!(
        (p["expectedRows"].as_u64(), p["imported"].as_u64(), p["milvusRows"].as_u64(), p["verified"].as_bool()),
        (Some(96), Some(96), Some(96), Some(true)),
        "{r:#}"
    );
}
