//! Unit tests of `dump.rs`: deletions, splitting, the bad-data policy, the meta's row counts.
use crate::prelude::*;

use super::*;
use crate::io::memory::{MemReport, MemStore};

fn counted(payload: Vec<u8>) -> Vec<u8> {
    let mut v = (payload.len() as u64).to_le_bytes().to_vec();
    v.extend(payload);
    v
}

/// A float segment of `rows` rows, dim 2, row i = [i, -i], id = 1000 + i.
fn segment(store: &MemStore, rows: u64, deleted: &[i32]) {
    let vecs: Vec<u8> = (0..rows).flat_map(|i| [i as f32, -(i as f32)]).flat_map(f32::to_le_bytes).collect();
    let ids: Vec<u8> = (0..rows).flat_map(|i| (1000 + i as i64).to_le_bytes()).collect();
    store.put(Role::Source, "t/s/s.rv", counted(vecs));
    store.put(Role::Source, "t/s/s.uid", counted(ids));
    store.put(Role::Source, "t/s/bloom_filter", vec![1, 2, 3]);
    store.put(Role::Source, "t/s/deleted_docs", counted(deleted.iter().flat_map(|d| d.to_le_bytes()).collect()));
}

fn unit(rows: u64) -> SegmentUnit {
    SegmentUnit {
        collection: "c".into(),
        partition_tag: String::new(),
        table_id: "t".into(),
        segment_id: "s".into(),
        vector: VectorKind::Float,
        dim: 2,
        rows,
        file_size: 0,
        output_dir: "c/_default/s".into(),
        drop_rows: vec![],
    }
}

fn body(store: &MemStore, path: &str) -> Vec<u8> {
    let b = store.get(Role::Target, path).expect(path);
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    b[10 + hlen..].to_vec()
}

/// Finding 1 of the review: a header for [17, 3, 250] followed by two stale offsets [3, 299]
/// used to be read as a header-less list, dropping rows 0, 12 and 299 silently.
#[test]
fn stale_deleted_offsets_do_not_delete_rows() {
    let store = MemStore::default();
    segment(&store, 300, &[]);
    let mut del: Vec<u8> = 12u64.to_le_bytes().to_vec();
    del.extend([17i32, 3, 250, 3, 299].iter().flat_map(|d| d.to_le_bytes()));
    store.put(Role::Source, "t/s/deleted_docs", del);
    let r = dump_segment(&store, &MemReport::default(), &unit(297), &DumpOptions::default()).unwrap();
    assert_eq!((r.deleted, r.rows_out), (3, 297));
    let ids: Vec<i64> = body(&store, "c/_default/s/id.npy").chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
    assert!(ids.contains(&1000) && ids.contains(&1012) && ids.contains(&1299) && !ids.contains(&1017));
    // Fewer live rows than the meta says is an error under every policy.
    for bad_data in [Policy::Fail, Policy::Skip] {
        let e = dump_segment(&store, &MemReport::default(), &unit(299), &DumpOptions { bad_data, ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("t/s/deleted_docs") && e.contains("row_count says 299 are live"), "{e}");
    }
}

/// Finding 11: a missing deleted_docs while the meta says rows were deleted.
#[test]
fn a_missing_deleted_docs_fails_when_the_meta_says_rows_were_deleted() {
    let store = MemStore::default();
    segment(&store, 10, &[]);
    store.delete(Role::Source, "t/s/deleted_docs").unwrap();
    let e = dump_segment(&store, &MemReport::default(), &unit(8), &DumpOptions::default()).unwrap_err().to_string();
    assert!(e.contains("t/s/deleted_docs is missing") && e.contains("says 8 of the segment's 10 rows are live"), "{e}");
    let log = MemReport::default();
    let r = dump_segment(&store, &log, &unit(8), &DumpOptions { bad_data: Policy::Skip, ..Default::default() }).unwrap();
    assert_eq!(r.rows_out, 10);
    assert!(log.lines.borrow().iter().any(|(l, m)| *l == Level::Warn && m.contains("only 8 are live")));
    // Nothing deleted according to the meta: dumped, with the plain warning.
    assert_eq!(dump_segment(&store, &MemReport::default(), &unit(10), &DumpOptions::default()).unwrap().rows_out, 10);
    // More live rows in the meta than the files hold: rows are missing.
    let e = dump_segment(&store, &MemReport::default(), &unit(11), &DumpOptions { bad_data: Policy::Skip, ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("hold 10 rows but the meta's row_count says 11"), "{e}");
}

#[test]
fn drops_deleted_rows_across_chunks() {
    let store = MemStore { max_read: 7, ..Default::default() };
    segment(&store, 10, &[7, 2, 7, 9, 0]);
    let opts = DumpOptions { read_chunk: 24, ..Default::default() }; // 3 rows per chunk
    let report = MemReport::default();
    let r = dump_segment(&store, &report, &unit(6), &opts).unwrap();
    assert_eq!((r.rows_in, r.deleted, r.rows_out), (10, 4, 6));
    let ids: Vec<i64> =
        body(&store, "c/_default/s/id.npy").chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(ids, [1001, 1003, 1004, 1005, 1006, 1008]);
    let v: Vec<f32> =
        body(&store, "c/_default/s/data.npy").chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(v, [1., -1., 3., -3., 4., -4., 5., -5., 6., -6., 8., -8.]);
    assert_eq!(report.rows.get(), 6);
    let header = store.get(Role::Target, "c/_default/s/data.npy").unwrap();
    assert!(core::str::from_utf8(&header[10..70]).unwrap().contains("'shape': (6, 2), }"));
}

#[test]
fn live_runs_and_the_pass_through_path() {
    let mut del = DeletedSet::empty(10);
    assert_eq!(live_runs(&del, 0, 10), [(0, 10)]);
    let store = MemStore::default();
    // Every other row deleted: more runs than MAX_DIRECT_RUNS, so rows pass through the engine.
    let rows = 2 * MAX_DIRECT_RUNS as u64 + 10;
    let deleted: Vec<i32> = (0..rows as i32).filter(|r| r % 2 == 1).collect();
    segment(&store, rows, &deleted);
    let r = dump_segment(&store, &MemReport::default(), &unit(rows / 2), &DumpOptions::default()).unwrap();
    assert_eq!(r.rows_out, rows / 2);
    let ids: Vec<i64> =
        body(&store, "c/_default/s/id.npy").chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(ids, (0..rows as i64).filter(|r| r % 2 == 0).map(|r| 1000 + r).collect::<Vec<_>>());
    let v: Vec<f32> = body(&store, "c/_default/s/data.npy").chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(v[2..4], [2.0, -2.0]);
    del = DeletedSet::read(&{
        store.put(Role::Source, "x", vec![8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0]);
        store.open(Role::Source, "x").unwrap()
    }, "x", 10, Expect::default()).unwrap().0;
    assert_eq!(live_runs(&del, 0, 10), [(0, 1), (2, 5), (6, 10)]);
}

#[test]
fn large_segments_are_split_into_groups() {
    let store = MemStore::default();
    segment(&store, 10, &[7, 2]);
    // 16 bytes per row (8 vector + 8 id): 48 bytes -> 3 rows per group -> 3 + 3 + 2.
    let opts = DumpOptions { read_chunk: 16, max_group_bytes: 48, ..Default::default() };
    let r = dump_segment(&store, &MemReport::default(), &unit(8), &opts).unwrap();
    let dirs: Vec<_> = r.files.iter().map(|f| f.path.rsplit_once('/').unwrap().0.to_string()).collect();
    assert_eq!(dirs, ["c/_default/s/part-0000", "c/_default/s/part-0000", "c/_default/s/part-0001", "c/_default/s/part-0001", "c/_default/s/part-0002", "c/_default/s/part-0002"]);
    let ids: Vec<i64> = (0..3)
        .flat_map(|k| body(&store, &format!("c/_default/s/part-{k:04}/id.npy")))
        .collect::<Vec<u8>>()
        .chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(ids, [1000, 1001, 1003, 1004, 1005, 1006, 1008, 1009]);
    let last = store.get(Role::Target, "c/_default/s/part-0002/data.npy").unwrap();
    assert!(core::str::from_utf8(&last[10..70]).unwrap().contains("'shape': (2, 2), }"));
    let g = FileGroups::new(8, 8, 48, "d");
    assert_eq!((g.count, g.rows(0), g.rows(2)), (3, 3, 2));
    assert_eq!(FileGroups::new(8, 8, 0, "d").dir(0), "d");
}

#[test]
fn all_deleted_writes_nothing() {
    let store = MemStore::default();
    segment(&store, 2, &[1, 0]);
    let r = dump_segment(&store, &MemReport::default(), &unit(0), &DumpOptions::default()).unwrap();
    assert_eq!(r.rows_out, 0);
    assert!(r.files.is_empty());
    assert!(store.paths(Role::Target).is_empty());
}

#[test]
fn id_and_vector_counts_must_agree() {
    let store = MemStore::default();
    segment(&store, 3, &[]);
    store.put(Role::Source, "t/s/s.uid", counted(vec![0; 16]));
    let err = dump_segment(&store, &MemReport::default(), &unit(3), &DumpOptions::default()).unwrap_err().to_string();
    assert!(err.contains("t/s/s.rv") && err.contains("expected 16 bytes") && err.contains("found 24"), "{err}");
    assert!(store.paths(Role::Target).is_empty());
}

#[test]
fn wrong_dimension_is_named() {
    let store = MemStore::default();
    segment(&store, 3, &[]);
    let mut u = unit(3);
    u.dim = 5;
    let err = dump_segment(&store, &MemReport::default(), &u, &DumpOptions::default()).unwrap_err().to_string();
    assert!(err.contains("dimension 5 does not match"), "{err}");
}

#[test]
fn missing_uid_and_missing_dir() {
    let store = MemStore::default();
    segment(&store, 3, &[]);
    store.files.borrow_mut().retain(|k, _| !k.1.ends_with(".uid"));
    let err = dump_segment(&store, &MemReport::default(), &unit(3), &DumpOptions::default()).unwrap_err().to_string();
    assert!(err.contains("no .uid file in segment directory t/s"), "{err}");
    let err = dump_segment(&MemStore::default(), &MemReport::default(), &unit(3), &DumpOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("segment directory t/s of collection \"c\" is missing"), "{err}");
}

#[test]
fn binary_rows_are_dim_over_8_bytes() {
    let store = MemStore::default();
    store.put(Role::Source, "t/s/s.rv", counted(vec![0xAA, 0x01, 0xBB, 0x02, 0xCC, 0x03]));
    store.put(Role::Source, "t/s/s.uid", counted((0..3i64).flat_map(i64::to_le_bytes).collect()));
    store.put(Role::Source, "t/s/deleted_docs", counted(1i32.to_le_bytes().to_vec()));
    let mut u = unit(2);
    u.vector = VectorKind::Binary;
    u.dim = 16;
    let r = dump_segment(&store, &MemReport::default(), &u, &DumpOptions::default()).unwrap();
    assert_eq!(r.rows_out, 2);
    assert_eq!(body(&store, "c/_default/s/data.npy"), [0xAA, 0x01, 0xCC, 0x03]);
    let header = store.get(Role::Target, "c/_default/s/data.npy").unwrap();
    assert!(core::str::from_utf8(&header[10..70]).unwrap().starts_with("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }"));
}

fn ids_of(store: &MemStore, path: &str) -> Vec<i64> {
    body(store, path).chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Rows 3 and 7 of a 10-row segment get a NaN and an infinity.
fn poisoned(store: &MemStore) {
    segment(store, 10, &[5]);
    let mut rv = store.get(Role::Source, "t/s/s.rv").unwrap();
    rv[8 + 3 * 8 + 4..8 + 3 * 8 + 8].copy_from_slice(&f32::NAN.to_le_bytes());
    rv[8 + 7 * 8..8 + 7 * 8 + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    store.put(Role::Source, "t/s/s.rv", rv);
}

#[test]
fn non_finite_floats_fail_by_default_naming_row_id_and_offset() {
    for read_chunk in [1 << 20, 16] {
        let store = MemStore::default();
        poisoned(&store);
        let opts = DumpOptions { read_chunk, ..Default::default() };
        let err = dump_segment(&store, &MemReport::default(), &unit(9), &opts).unwrap_err().to_string();
        assert!(err.contains("t/s/s.rv at offset 36") && err.contains("row 3 (id 1003): component 1 of the vector is NaN"), "{err}");
        assert!(err.contains("migration.badData: skip or reject"), "{err}");
        assert!(store.paths(Role::Target).is_empty(), "nothing published: {:?}", store.paths(Role::Target));
    }
}

#[test]
fn skip_and_reject_drop_non_finite_rows_on_both_copy_paths() {
    // 1 MiB chunks: the host-copy path; 16-byte chunks with every other row deleted: the
    // pass-through path.
    for (read_chunk, policy) in [(1 << 20, Policy::Skip), (16, Policy::Reject), (1 << 20, Policy::Reject)] {
        let store = MemStore::default();
        poisoned(&store);
        let opts = DumpOptions { read_chunk, bad_data: policy, ..Default::default() };
        let r = dump_segment(&store, &MemReport::default(), &unit(9), &opts).unwrap();
        assert_eq!((r.rows_in, r.deleted, r.rows_out, r.dropped_rows.clone()), (10, 1, 7, vec![3, 7]));
        assert_eq!(ids_of(&store, "c/_default/s/id.npy"), [1000, 1001, 1002, 1004, 1006, 1008, 1009]);
        let header = store.get(Role::Target, "c/_default/s/data.npy").unwrap();
        assert!(core::str::from_utf8(&header[10..70]).unwrap().contains("'shape': (7, 2), }"));
        match policy {
            Policy::Reject => {
                let text = String::from_utf8(store.get(Role::Target, "_rejects/c/_default/s.jsonl").unwrap()).unwrap();
                let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
                assert_eq!(lines.len(), 2);
                assert_eq!(lines[0]["id"], 1003);
                assert_eq!(lines[0]["vector"], serde_json::json!([3.0, "NaN"]));
                assert_eq!(lines[1]["vector"], serde_json::json!(["inf", -7.0]));
                assert_eq!(r.rejects.as_ref().unwrap().path, "_rejects/c/_default/s.jsonl");
            }
            _ => assert!(store.get(Role::Target, "_rejects/c/_default/s.jsonl").is_none()),
        }
    }
}

#[test]
fn a_retry_leaves_no_files_of_the_aborted_attempt_and_counts_progress_once() {
    // Found by the segment fuzz target: 4 rows in groups of 3; the first attempt finished
    // part-0000 (rows 0-2) before the NaN in row 3; the retry has 3 rows, one plain group.
    let store = MemStore::default();
    segment(&store, 4, &[]);
    let mut rv = store.get(Role::Source, "t/s/s.rv").unwrap();
    rv[8 + 3 * 8..8 + 3 * 8 + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    store.put(Role::Source, "t/s/s.rv", rv);
    // 16 bytes a row (8 vector + 8 id): 48 bytes -> 3 rows a group; 1-row chunks.
    let opts = DumpOptions { read_chunk: 8, max_group_bytes: 48, bad_data: Policy::Skip, ..Default::default() };
    let report = MemReport::default();
    let r = dump_segment(&store, &report, &unit(4), &opts).unwrap();
    assert_eq!((r.rows_out, r.dropped_rows.clone()), (3, vec![3]));
    assert_eq!(store.paths(Role::Target), ["c/_default/s/data.npy", "c/_default/s/id.npy"]);
    assert_eq!(ids_of(&store, "c/_default/s/id.npy"), [1000, 1001, 1002]);
    assert_eq!((report.rows.get(), report.bytes.get()), (3, 4 * 16));

    // And the fail policy leaves nothing either.
    let store2 = MemStore::default();
    store.files.borrow().iter().filter(|(k, _)| k.0 == Role::Source as u8).for_each(|(k, v)| store2.put(Role::Source, &k.1, v.clone()));
    let opts = DumpOptions { bad_data: Policy::Fail, ..opts };
    assert!(dump_segment(&store2, &MemReport::default(), &unit(4), &opts).is_err());
    assert!(store2.paths(Role::Target).is_empty(), "{:?}", store2.paths(Role::Target));
}

#[test]
fn unpaired_rows_and_outside_deletions_follow_the_policy() {
    let store = MemStore::default();
    segment(&store, 4, &[1, 9]);
    // Two more ids than vectors.
    store.put(Role::Source, "t/s/s.uid", counted((0..6).flat_map(|i| (1000 + i as i64).to_le_bytes()).collect()));
    let err = dump_segment(&store, &MemReport::default(), &unit(3), &DumpOptions::default()).unwrap_err().to_string();
    assert!(err.contains("expected 48 bytes of vectors") && err.contains("migration.badData"), "{err}");
    let opts = DumpOptions { bad_data: Policy::Reject, ..Default::default() };
    let r = dump_segment(&store, &MemReport::default(), &unit(3), &opts).unwrap();
    assert_eq!((r.rows_in, r.rows_out, r.ignored_deletes), (6, 3, 1));
    assert_eq!(ids_of(&store, "c/_default/s/id.npy"), [1000, 1002, 1003]);
    let text = String::from_utf8(store.get(Role::Target, "_rejects/c/_default/s.jsonl").unwrap()).unwrap();
    assert!(text.contains(r#""id":1004"#) && text.contains(r#""id":1005"#) && text.contains("has no partner"), "{text}");
    assert!(text.contains(r#""deletedOffset":9"#), "{text}");
}

#[test]
fn older_copies_of_repeated_ids_are_left_out_and_counted_apart() {
    let store = MemStore::default();
    segment(&store, 6, &[1]);
    let mut u = unit(5);
    u.drop_rows = vec![1, 4]; // row 1 is deleted anyway; row 4 has a newer copy elsewhere
    let opts = DumpOptions { bad_data: Policy::Reject, ..Default::default() };
    let r = dump_segment(&store, &MemReport::default(), &u, &opts).unwrap();
    assert_eq!((r.rows_out, r.deleted, r.duplicates_dropped, r.dropped_rows.clone()), (4, 1, 1, vec![4]));
    assert_eq!(ids_of(&store, "c/_default/s/id.npy"), [1000, 1002, 1003, 1005]);
    let text = String::from_utf8(store.get(Role::Target, "_rejects/c/_default/s.jsonl").unwrap()).unwrap();
    assert!(text.contains(r#""id":1004"#) && text.contains("keep-last"), "{text}");
}

/// `format: parquet`: one rows.parquet per group, holding exactly the live rows (deletions
/// and bad rows dropped, on the pass-through path the rows always take), split like npy.
#[test]
fn parquet_groups_hold_the_live_rows_of_their_part() {
    let store = MemStore::default();
    segment(&store, 10, &[7, 2]);
    let opts = DumpOptions { read_chunk: 16, max_group_bytes: 48, format: crate::plan::FileFormat::Parquet, ..Default::default() };
    let r = dump_segment(&store, &MemReport::default(), &unit(8), &opts).unwrap();
    let paths: Vec<_> = r.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["c/_default/s/part-0000/rows.parquet", "c/_default/s/part-0001/rows.parquet", "c/_default/s/part-0002/rows.parquet"]);
    let (mut ids, mut vecs) = (vec![], vec![]);
    for f in &r.files {
        let bytes = store.get(Role::Target, &f.path).unwrap();
        assert_eq!((f.bytes, f.crc32c), (bytes.len() as u64, crate::io::memory::crc32c(&bytes)));
        let (i, v, _) = crate::parquet::tests::read(bytes);
        ids.extend(i);
        vecs.extend(v);
    }
    assert_eq!(ids, [1000, 1001, 1003, 1004, 1005, 1006, 1008, 1009]);
    let want: Vec<u8> = [0, 1, 3, 4, 5, 6, 8, 9].iter().flat_map(|&i| [i as f32, -(i as f32)]).flat_map(f32::to_le_bytes).collect();
    assert_eq!(vecs, want);

    let store = MemStore::default();
    poisoned(&store);
    let opts = DumpOptions { bad_data: Policy::Skip, format: crate::plan::FileFormat::Parquet, ..Default::default() };
    let r = dump_segment(&store, &MemReport::default(), &unit(9), &opts).unwrap();
    assert_eq!((r.rows_out, r.dropped_rows.clone()), (7, vec![3, 7]));
    let (ids, _, _) = crate::parquet::tests::read(store.get(Role::Target, "c/_default/s/rows.parquet").unwrap());
    assert_eq!(ids, [1000, 1001, 1002, 1004, 1006, 1008, 1009]);
}
