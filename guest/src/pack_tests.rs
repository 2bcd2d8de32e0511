//! Packing small segments into shared file groups, end to end in memory: plan, dump, manifest,
//! load (exactly once, also when the packing changes between runs) and verify.
use crate::prelude::*;

use super::*;
use crate::bad_data::Policy;
use crate::dump::dump_plan;
use crate::meta::json::from_json;
use crate::plan::plan_dump;

/// Collection "c" (dim 2, 16 bytes a row with the id): default partition with 12 segments
/// d00..d11 of 3 rows (ids 100k + i) and one of 40 rows ("big"); partition "x" (table 77) with
/// 5 segments x0..x4 of 2 rows. d02 row 1 is deleted; d05 row 0 holds a NaN; d07 row 2
/// repeats d03 row 0's id.
fn fragmented() -> (MemStore, String) {
    let store = MemStore::default();
    let mut default = Vec::new();
    for k in 0..12 {
        let seg = format!("d{k:02}");
        let deleted: &[i32] = if k == 2 { &[1] } else { &[] };
        put_segment(&store, "c", &seg, 3, deleted, 100 * k as i64);
        default.push(format!(r#"{{"collection":"c","segment":"{seg}","dim":2,"rows":{},"fileSize":48}}"#, 3 - deleted.len()));
    }
    put_segment(&store, "c", "big", 40, &[], 5000);
    default.push(r#"{"collection":"c","segment":"big","dim":2,"rows":40,"fileSize":640}"#.into());
    // A NaN in d05 row 0, and d07 row 2 with d03 row 0's id.
    let mut rv = store.get(Role::Source, "c/d05/d05.rv").unwrap();
    rv[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    store.put(Role::Source, "c/d05/d05.rv", rv);
    let mut uid = store.get(Role::Source, "c/d07/d07.uid").unwrap();
    uid[8 + 16..8 + 24].copy_from_slice(&300i64.to_le_bytes());
    store.put(Role::Source, "c/d07/d07.uid", uid);
    let mut x = Vec::new();
    for k in 0..5 {
        let seg = format!("x{k}");
        put_segment(&store, "77", &seg, 2, &[], 9000 + 10 * k as i64);
        x.push(format!(r#"{{"collection":"c","segment":"{seg}","dim":2,"rows":2,"fileSize":32}}"#));
    }
    let meta = format!(
        r#"{{"format":"milvus-migration-rs/meta/1","rows":91,"collections":[{{"collection":"c","metric":1,"rows":81,"dim":2,
            "segments":[{}],"partitions":[{{"tag":"x","tableId":"77","rows":10,"segments":[{}]}}]}}]}}"#,
        default.join(","),
        x.join(",")
    );
    (store, meta)
}

/// Plans (with the keep-last scan) and dumps with `opts`, then writes the manifest.
fn dump_with(store: &MemStore, meta: &str, opts: &DumpOptions) -> DumpPlan {
    dump_planned(store, meta, opts, opts)
}

/// The same, with the packs planned for `plan_opts` and the files cut by `opts`.
fn dump_planned(store: &MemStore, meta: &str, plan_opts: &DumpOptions, opts: &DumpOptions) -> DumpPlan {
    let mut plan = plan_dump(from_json(meta, "meta.json").unwrap(), plan_opts).unwrap();
    let r = crate::duplicates::find_duplicates(store, &MemReport::default(), &plan.units, opts).unwrap();
    for (u, drops) in plan.units.iter_mut().zip(r.drops) {
        u.drop_rows = drops;
    }
    crate::manifest::invalidate_manifest(store).unwrap();
    let (reports, packs) = dump_plan(store, &MemReport::default(), &plan, opts).unwrap();
    write_manifest(store, &plan, opts, &reports, &packs).unwrap();
    plan
}

fn packing(max_group_bytes: u64) -> DumpOptions {
    DumpOptions { max_group_bytes, bad_data: Policy::Reject, keep_last: true, ..Default::default() }
}

/// Every id Milvus holds, sorted (copies included).
fn stored_ids(milvus: &FakeMilvus) -> Vec<i64> {
    let mut ids: Vec<i64> = milvus.collections.borrow()["c"].1.values().flatten().map(|e| e.id).collect();
    ids.sort_unstable();
    ids
}

/// The ids that must land: every row less d02 row 1 (deleted), d05 row 0 (NaN) and d03 row 0
/// (an older copy of id 300).
fn expected_ids() -> Vec<i64> {
    let mut ids: Vec<i64> = (0..12).flat_map(|k| (0..3).map(move |i| 100 * k + i)).filter(|&id| ![201, 500, 300].contains(&id)).collect();
    ids.push(300); // d07 row 2
    ids.retain(|&id| id != 702);
    ids.extend(5000..5040);
    ids.extend((0..5).flat_map(|k| [9000 + 10 * k, 9001 + 10 * k]));
    ids.sort_unstable();
    ids
}

#[test]
fn small_segments_are_packed_per_partition_and_big_ones_stay_alone() {
    let (_, meta) = fragmented();
    // 64 rows a group: "big" (40 rows) fills over half of one and stays alone.
    let plan = plan_dump(from_json(&meta, "m").unwrap(), &packing(64 * 16)).unwrap();
    let dirs: Vec<&str> = plan.packs.iter().map(|p| p.output_dir.as_str()).collect();
    assert_eq!(dirs, ["c/_default/pack-d00-d11", "c/77/pack-x0-x4"]);
    assert_eq!(plan.packs[0].units.len(), 12);
    assert!(!plan.packs.iter().any(|p| p.units.iter().any(|&k| plan.units[k as usize].segment_id == "big")));
    // 8 rows a group: packs of two or three 3-row segments; "big" is split alone.
    let plan = plan_dump(from_json(&meta, "m").unwrap(), &packing(8 * 16)).unwrap();
    let sizes: Vec<usize> = plan.packs.iter().map(|p| p.units.len()).collect();
    assert_eq!(sizes, [3, 2, 2, 2, 2, 4], "d02 has 2 live rows; d11 and x4 are left alone");
    // Off: no packs.
    let plan = plan_dump(from_json(&meta, "m").unwrap(), &DumpOptions { pack: false, ..packing(0) }).unwrap();
    assert!(plan.packs.is_empty());
}

#[test]
fn a_pack_holds_every_live_row_once_with_rejects_and_keep_last_per_row() {
    let (store, meta) = fragmented();
    let plan = dump_with(&store, &meta, &packing(64 * 16));
    let m = crate::manifest::read_manifest(&store).unwrap();
    let pack = &m.collections[0].partitions[0].packs[0];
    // 36 rows less the deleted, the NaN and the older copy.
    assert_eq!((pack.rows, pack.groups.len(), pack.files.len()), (33, 1, 2));
    let ids: Vec<i64> = npy_body(&store.get(Role::Target, "c/_default/pack-d00-d11/id.npy").unwrap())
        .chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let want: Vec<i64> = expected_ids().into_iter().filter(|&id| id < 5000).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, want);
    assert_eq!(ids[..3], [0, 1, 2], "segments in order");
    // Rejects stay per segment; the segment entries point at their pack.
    assert!(store.get(Role::Target, "_rejects/c/_default/d05.jsonl").is_some());
    assert!(store.get(Role::Target, "_rejects/c/_default/d03.jsonl").is_some());
    let d05 = m.collections[0].partitions[0].segments.iter().find(|s| s.segment == "d05").unwrap();
    assert_eq!((d05.pack.as_deref(), d05.rows, d05.files.len()), (Some("c/_default/pack-d00-d11"), 2, 0));
    assert_eq!(plan.packs.len(), 2);
}

#[test]
fn a_packed_dump_loads_with_few_imports_exactly_once_and_verifies() {
    let (store, meta) = fragmented();
    dump_with(&store, &meta, &packing(64 * 16));
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    let r = load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    // 18 segments: "big", one pack per partition.
    assert_eq!((r.imported, milvus.imports.get()), (3, 3));
    assert_eq!(stored_ids(&milvus), expected_ids());
    let v = verify_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    assert!(v.ok(), "{v:?}");
    assert!(v.partitions[0].sampled >= 2 * 12, "every packed segment is sampled: {v:?}");
    // Again: nothing imported.
    let r = load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    assert_eq!((r.imported, r.skipped, milvus.imports.get()), (0, 3, 3));
    // Packed otherwise (or not at all) and loaded again: every row is known as imported.
    for opts2 in [packing(8 * 16), DumpOptions { pack: false, ..packing(0) }] {
        dump_with(&store, &meta, &opts2);
        let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
        let r = load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
        assert_eq!(r.imported, 0, "{opts2:?}");
        assert_eq!(stored_ids(&milvus), expected_ids());
    }
}

#[test]
fn a_pack_split_into_parts_shares_a_straddling_segment() {
    let (store, meta) = fragmented();
    // 64 rows a pack, but 10-row file groups: the 33 rows of the default pack make 4 parts,
    // and segments straddle them.
    dump_planned(&store, &meta, &packing(64 * 16), &packing(10 * 16));
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    let groups = &c.partitions[0].groups;
    let pack_groups: Vec<_> = groups.iter().filter(|g| g.unit_dir == "c/_default/pack-d00-d11").collect();
    assert_eq!(pack_groups.len(), 4);
    let straddles = pack_groups.windows(2).filter(|w| w[0].members.last().unwrap().segment_id == w[1].members[0].segment_id).count();
    assert!(straddles >= 1, "a segment straddles two parts");
    load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    let v = verify_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    assert!(v.ok(), "{v:?}");
    let r = load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    assert_eq!(r.imported, 0);
}

#[test]
fn a_run_stopped_while_recording_a_pack_resumes_without_importing_twice() {
    let (store, meta) = fragmented();
    dump_with(&store, &meta, &packing(64 * 16));
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    // The pack's completion reached only some of its segments' entries; the others still
    // say submitted, or only that the import was about to be submitted.
    let mut k = 0;
    edit_journals(&store, |i| {
        if i.dir == "c/_default/pack-d00-d11" {
            k += 1;
            match k % 3 {
                0 => i.state = crate::journal::State::Submitted,
                1 => (i.state, i.task) = (crate::journal::State::Submitting, 0),
                _ => {}
            }
        }
    });
    let r = load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    assert_eq!(milvus.imports.get(), 3, "nothing submitted again");
    assert_eq!((r.imported, r.skipped), (1, 2));
    assert_eq!(stored_ids(&milvus), expected_ids());
    // Killed before any record said more than "submitting": the server is asked.
    edit_journals(&store, |i| {
        if i.dir == "c/_default/pack-d00-d11" {
            (i.state, i.task) = (crate::journal::State::Submitting, 0);
        }
    });
    load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    assert_eq!(milvus.imports.get(), 3);
    assert_eq!(stored_ids(&milvus), expected_ids());
}

#[test]
fn a_new_packing_over_a_partial_load_is_refused() {
    let (store, meta) = fragmented();
    dump_with(&store, &meta, &packing(8 * 16));
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    // The first run imports only the first pack of the default partition.
    let pack: Vec<_> = c.partitions[0].groups.iter().filter(|g| g.dir.contains("/pack-")).take(1).cloned().collect();
    let first = crate::load::CollectionLoad {
        partitions: vec![crate::load::PartitionLoad { groups: pack, ..c.partitions[0].clone() }],
        ..c.clone()
    };
    load_collection(&store, &milvus, &MemReport::default(), &first).unwrap();
    let before = stored_ids(&milvus);
    // Packed otherwise: the first new pack holds those rows and others.
    dump_with(&store, &meta, &packing(64 * 16));
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    let err = load_collection(&store, &milvus, &MemReport::default(), &c).unwrap_err().to_string();
    assert!(err.contains("group c/_default/pack-d00-d11") && err.contains("segments d00, d01, d02 were imported"), "{err}");
    // Nothing imported twice ("big", alone in both dumps, was imported by this run).
    let after = stored_ids(&milvus);
    let mut unique = after.clone();
    unique.dedup();
    assert_eq!(after, unique);
    assert!(before.iter().all(|id| after.contains(id)) && after.len() == before.len() + 40);
}

#[test]
fn an_early_load_imports_what_is_dumped_and_the_full_load_skips_it() {
    let (store, meta) = fragmented();
    let opts = packing(8 * 16);
    let mut plan = plan_dump(from_json(&meta, "m").unwrap(), &opts).unwrap();
    let r = crate::duplicates::find_duplicates(&store, &MemReport::default(), &plan.units, &opts).unwrap();
    for (u, drops) in plan.units.iter_mut().zip(r.drops) {
        u.drop_rows = drops;
    }
    let (reports, packs) = dump_plan(&store, &MemReport::default(), &plan, &opts).unwrap();
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    // Only "big" and the first pack are done so far.
    let big = plan.units.iter().position(|u| u.segment_id == "big").unwrap();
    let mut early_reports: Vec<Option<crate::dump::SegmentReport>> = vec![None; plan.units.len()];
    early_reports[big] = Some(reports[big].clone());
    for &k in &plan.packs[0].units {
        early_reports[k as usize] = Some(reports[k as usize].clone());
    }
    let mut early_files = vec![None; plan.packs.len()];
    early_files[0] = Some(packs[0].clone());
    let early = crate::load::plan_early_load(&milvus, &plan, &opts, &early_reports, &early_files, &opts_early()).unwrap();
    let groups: usize = early.collections.iter().flat_map(|c| &c.partitions).map(|p| p.groups.len()).sum();
    assert_eq!(groups, 5 + 1, "big's five parts and the first pack");
    let r = load_collection(&store, &milvus, &MemReport::default(), &early.collections[0]).unwrap();
    assert_eq!(r.imported, 6);
    // The dump ends; the full load imports the rest only.
    write_manifest(&store, &plan, &opts, &reports, &packs).unwrap();
    let c = plan_load(&store, &milvus, &opts_early()).unwrap().collections.remove(0);
    let r = load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    assert_eq!((r.skipped, r.imported as usize), (6, plan.packs.len() - 1 + 2), "d11 and x4 are alone");
    assert_eq!(stored_ids(&milvus), expected_ids());
}

fn opts_early() -> LoadOptions {
    LoadOptions { on_exists: crate::load::OnExists::Append, ..opts() }
}
