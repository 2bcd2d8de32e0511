//! `verify --full` and `repair` against the in-memory Milvus: every kind of damage found
//! exactly, in one key range or many, and repaired without touching the rest.
use crate::prelude::*;

use crate::io::memory::MemReport;
use crate::io::{Entity, Milvus, Role};
use crate::load::{load_collection, plan_load, CollectionLoad};
use crate::load_tests::{dumped, dumped_parquet, opts, FakeMilvus};
use crate::reconcile::{reconcile_tuned, Options, ReconcileReport, Tuning};

fn vector(a: f32) -> Vec<u8> {
    [a, 0.5].iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn loaded() -> (crate::io::memory::MemStore, FakeMilvus, CollectionLoad) {
    let store = dumped();
    let milvus = FakeMilvus::on(&store);
    let plan = plan_load(&store, &milvus, &opts()).unwrap();
    let c = plan.collections[0].clone();
    load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    (store, milvus, c)
}

/// Every copy stored per partition, sorted (id, first vector component).
fn stored(m: &FakeMilvus) -> Vec<(String, Vec<(i64, Vec<u8>)>)> {
    m.collections.borrow()["c"]
        .1
        .iter()
        .map(|(p, rows)| {
            let mut v: Vec<(i64, Vec<u8>)> = rows.iter().map(|e| (e.id, e.vector.clone())).collect();
            v.sort();
            (p.clone(), v)
        })
        .collect()
}

fn damage(m: &FakeMilvus) {
    let mut cols = m.collections.borrow_mut();
    let parts = &mut cols.get_mut("c").unwrap().1;
    let d = parts.get_mut("_default").unwrap();
    // 100 stored twice, 102 deleted, 999 foreign (twice), 105 overwritten.
    d.push(Entity { id: 100, vector: vector(100.0) });
    d.retain(|e| e.id != 102);
    d.push(Entity { id: 999, vector: vector(1.0) });
    d.push(Entity { id: 999, vector: vector(1.0) });
    d.iter_mut().filter(|e| e.id == 105).for_each(|e| e.vector = vector(-1.0));
    // 201 in the wrong partition: missing in a_b, extra in _default.
    let a = parts.get_mut("a_b").unwrap();
    a.retain(|e| e.id != 201);
    parts.get_mut("_default").unwrap().push(Entity { id: 201, vector: vector(201.0) });
}

const FIND: Options = Options { max_listed: 100, repair: false, delete_extra: false, batch_rows: 2 };
const TUNINGS: [Tuning; 4] = [
    Tuning { bucket_rows: 1 << 18, open_writers: 8, max_query: 16_384 },
    // Many buckets, and ranges halved until two copies fit a query.
    Tuning { bucket_rows: 2, open_writers: 8, max_query: 2 },
    Tuning { bucket_rows: 3, open_writers: 8, max_query: 1 },
    // Many buckets written two at a time (the dump read once per pair).
    Tuning { bucket_rows: 2, open_writers: 2, max_query: 2 },
];

fn run(store: &crate::io::memory::MemStore, m: &FakeMilvus, c: &CollectionLoad, o: &Options, t: Tuning) -> ReconcileReport {
    reconcile_tuned(store, m, &MemReport::default(), c, o, t).unwrap()
}

#[test]
fn a_clean_load_reconciles_clean_in_any_key_ranges() {
    let (store, m, c) = loaded();
    for t in TUNINGS {
        let r = run(&store, &m, &c, &FIND, t);
        assert!(r.clean(), "{t:?} {r:?}");
        assert_eq!(r.partitions.iter().map(|p| (p.expected_rows, p.milvus_rows)).collect::<Vec<_>>(), [(4, 4), (3, 3)]);
    }
    assert!(store.paths(Role::Target).iter().all(|p| !p.starts_with("_verify/")), "scratch files removed");
}

#[test]
fn every_kind_of_damage_is_listed_exactly() {
    let (store, m, c) = loaded();
    damage(&m);
    for t in TUNINGS {
        let r = run(&store, &m, &c, &FIND, t);
        let d = &r.partitions[0];
        assert_eq!((d.name.as_str(), d.milvus_rows), ("_default", 7), "{t:?}");
        assert_eq!(d.missing.first, [102], "{t:?}");
        assert_eq!(d.duplicated.first, [100], "{t:?}");
        assert_eq!(d.extra.first, [201, 999], "{t:?}");
        assert_eq!(d.differing.first, [105], "{t:?}");
        let a = &r.partitions[1];
        assert_eq!((a.missing.first.as_slice(), a.clean()), ([201].as_slice(), false), "{t:?}");
        assert_eq!((a.duplicated.count, a.extra.count, a.differing.count), (0, 0, 0), "{t:?}");
        assert_eq!((d.repaired, d.deleted), (0, 0), "finding only");
    }
    // max-listed caps the lists, not the counts.
    let r = run(&store, &m, &c, &Options { max_listed: 1, ..FIND }, TUNINGS[0]);
    assert_eq!((r.partitions[0].extra.count, r.partitions[0].extra.first.as_slice()), (2, [201].as_slice()));
}

#[test]
fn repair_fixes_exactly_what_was_found_and_leaves_the_rest() {
    for t in TUNINGS {
        let (store, m, c) = loaded();
        let before = stored(&m);
        damage(&m);
        let untouched: Vec<(i64, Vec<u8>)> = stored(&m)[0].1.iter().filter(|(id, _)| *id == 103).cloned().collect();
        // Without delete-extra the foreign keys stay.
        let r = run(&store, &m, &c, &Options { repair: true, ..FIND }, t);
        assert_eq!((r.partitions[0].repaired, r.partitions[0].deleted, r.partitions[1].repaired), (3, 0, 1), "{t:?}");
        let after = run(&store, &m, &c, &FIND, t);
        assert_eq!(after.partitions[0].extra.first, [201, 999], "{t:?}");
        assert_eq!(after.partitions[0].missing.count + after.partitions[0].duplicated.count + after.partitions[0].differing.count, 0);
        assert!(after.partitions[1].clean());
        let upserts = m.upserts.get();
        let r = run(&store, &m, &c, &Options { repair: true, delete_extra: true, ..FIND }, t);
        assert_eq!((r.partitions[0].repaired, r.partitions[0].deleted), (0, 2), "{t:?}");
        assert_eq!(m.upserts.get(), upserts, "nothing written for keys found right");
        assert!(run(&store, &m, &c, &FIND, t).clean(), "{t:?}");
        assert_eq!(stored(&m), before, "{t:?}: back to what was loaded");
        assert_eq!(stored(&m)[0].1.iter().filter(|(id, _)| *id == 103).cloned().collect::<Vec<_>>(), untouched);
    }
}

#[test]
fn keys_the_source_repeats_count_every_copy() {
    let (store, m, mut c) = loaded();
    // The dump holds 103 twice (duplicateIds: keep-all): the same group's files listed twice.
    let g = c.partitions[0].groups[0].clone();
    c.partitions[0].groups.push(g);
    let r = run(&store, &m, &c, &FIND, TUNINGS[0]);
    let d = &r.partitions[0];
    // Every key of the group is expected twice and stored once.
    assert_eq!((d.expected_rows, d.missing.count, d.duplicated.count), (8, 4, 0), "{r:?}");
    let r = run(&store, &m, &c, &Options { repair: true, ..FIND }, TUNINGS[1]);
    assert_eq!(r.partitions[0].repaired, 4);
    assert!(run(&store, &m, &c, &FIND, TUNINGS[2]).clean());
    assert_eq!(m.count_ids("c", Some("_default"), "id", &[103]).unwrap(), 2);
}

/// From a Parquet dump (loaded with inserts: the in-memory Milvus imports npy only), the same
/// findings and the same repair, the dump's vectors read back at chosen rows.
#[test]
fn a_parquet_dump_is_reconciled_and_repaired_alike() {
    for t in TUNINGS {
        let store = dumped_parquet();
        let m = FakeMilvus::on(&store);
        let o = crate::load::LoadOptions { load_mode: crate::load::LoadMode::Insert { batch_bytes: 1 << 20 }, ..opts() };
        let c = plan_load(&store, &m, &o).unwrap().collections[0].clone();
        load_collection(&store, &m, &MemReport::default(), &c).unwrap();
        let before = stored(&m);
        assert!(run(&store, &m, &c, &FIND, t).clean(), "{t:?}");
        damage(&m);
        let r = run(&store, &m, &c, &FIND, t);
        let d = &r.partitions[0];
        assert_eq!((d.missing.first.as_slice(), d.duplicated.first.as_slice(), d.extra.first.as_slice(), d.differing.first.as_slice()), ([102].as_slice(), [100].as_slice(), [201, 999].as_slice(), [105].as_slice()), "{t:?}");
        let r = run(&store, &m, &c, &Options { repair: true, delete_extra: true, ..FIND }, t);
        assert_eq!((r.partitions[0].repaired, r.partitions[0].deleted, r.partitions[1].repaired), (3, 2, 1), "{t:?}");
        assert!(run(&store, &m, &c, &FIND, t).clean(), "{t:?}");
        assert_eq!(stored(&m), before, "{t:?}: back to what was loaded");
    }
}
