//! `loadMode: insert` against the in-memory Milvus: exactly once through lost replies,
//! refusals and re-runs, and never mixed with a bulk import of the same rows.
use crate::prelude::*;

use crate::error::Error;
use crate::io::memory::MemReport;
use crate::io::Role;
use crate::load::{load_collection, plan_load, LoadMode, LoadOptions};
use crate::load_tests::{dumped, dumped_parquet, journal_of, opts, FakeMilvus};
use crate::verify::verify_collection;

fn insert_opts(batch_bytes: u64) -> LoadOptions {
    LoadOptions { load_mode: LoadMode::Insert { batch_bytes }, ..opts() }
}

/// Ids stored per partition, sorted, every copy.
fn stored(m: &FakeMilvus) -> Vec<(String, Vec<i64>)> {
    m.collections.borrow()["c"]
        .1
        .iter()
        .map(|(p, rows)| {
            let mut ids: Vec<i64> = rows.iter().map(|e| e.id).collect();
            ids.sort();
            (p.clone(), ids)
        })
        .collect()
}

fn expected() -> Vec<(String, Vec<i64>)> {
    vec![("_default".into(), vec![100, 102, 103, 105]), ("a_b".into(), vec![200, 201, 202])]
}

#[test]
fn rows_are_inserted_in_batches_once_and_a_rerun_sends_nothing() {
    let store = dumped();
    let milvus = FakeMilvus::on(&store);
    // 18 bytes a row at dim 2 (8 of vector, 10 of key and framing): 2 rows a batch.
    let plan = plan_load(&store, &milvus, &insert_opts(36)).unwrap();
    let c = &plan.collections[0];
    let r = load_collection(&store, &milvus, &MemReport::default(), c).unwrap();
    assert_eq!((r.imported, r.skipped, r.rows), (2, 0, 7));
    assert_eq!(stored(&milvus), expected());
    assert_eq!((milvus.imports.get(), milvus.upserts.get()), (0, 0), "no bulk import, no upsert");
    assert!(verify_collection(&store, &milvus, &MemReport::default(), c).unwrap().ok());
    let j = journal_of(&store, "c/_default/s1");
    assert_eq!((j.imports.len(), j.imports[0].state, j.imports[0].via), (1, crate::journal::State::Completed, crate::journal::Via::Insert));

    let plan = plan_load(&store, &milvus, &insert_opts(36)).unwrap();
    let r = load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap();
    assert_eq!((r.imported, r.skipped, r.rows), (0, 2, 0));
    assert_eq!(milvus.inserted.get(), 7);
    // A bulk-import load of the same dump finds the rows there too.
    let plan = plan_load(&store, &milvus, &opts()).unwrap();
    let r = load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap();
    assert_eq!((r.imported, r.skipped, milvus.imports.get()), (0, 2, 0));
}

#[test]
fn a_batch_whose_reply_was_lost_is_sent_again_with_upsert_and_lands_once() {
    let store = dumped();
    let milvus = FakeMilvus::on(&store);
    let plan = plan_load(&store, &milvus, &insert_opts(36)).unwrap();
    let c = &plan.collections[0];
    // The first batch is stored, its reply lost.
    *milvus.lose_reply.borrow_mut() = Some(Error::Unavailable("connection reset".into()));
    assert!(load_collection(&store, &milvus, &MemReport::default(), c).is_err());
    assert_eq!(stored(&milvus)[0].1, vec![100, 102]);
    let log = MemReport::default();
    let r = load_collection(&store, &milvus, &log, c).unwrap();
    assert_eq!(milvus.upserts.get(), 1, "only the batch in doubt goes again, as an upsert");
    assert_eq!(stored(&milvus), expected(), "every row once");
    assert_eq!(r.rows, 7);
    assert!(verify_collection(&store, &milvus, &MemReport::default(), c).unwrap().ok());
    let lines = log.lines.borrow();
    assert!(lines.iter().any(|(_, l)| l.contains("rows 0..2 were sent before and no reply was recorded; sending them again with Upsert")), "{lines:?}");
}

#[test]
fn without_upsert_as_on_2_2_a_batch_in_doubt_is_deleted_and_inserted_again() {
    let store = dumped();
    let milvus = FakeMilvus::on(&store);
    milvus.no_upsert.set(true);
    let plan = plan_load(&store, &milvus, &insert_opts(36)).unwrap();
    let c = &plan.collections[0];
    *milvus.lose_reply.borrow_mut() = Some(Error::Unavailable("connection reset".into()));
    assert!(load_collection(&store, &milvus, &MemReport::default(), c).is_err());
    let log = MemReport::default();
    load_collection(&store, &milvus, &log, c).unwrap();
    assert_eq!(stored(&milvus), expected(), "every row once");
    assert_eq!(milvus.inserted.get(), 9, "the batch in doubt went twice, its first copy deleted");
    assert!(verify_collection(&store, &milvus, &MemReport::default(), c).unwrap().ok());
    assert!(log.lines.borrow().iter().any(|(_, l)| l.contains("the server has no Upsert")));
}

#[test]
fn a_refused_batch_is_not_in_doubt_and_a_lost_one_is_never_bulk_imported() {
    let store = dumped();
    let milvus = FakeMilvus::on(&store);
    let plan = plan_load(&store, &milvus, &insert_opts(36)).unwrap();
    let c = &plan.collections[0];
    // The server answers no: nothing stored, and the re-run inserts (no upsert).
    *milvus.fail_write.borrow_mut() = Some(Error::Remote { code: 8, reason: "rate limit exceeded".into() });
    assert!(load_collection(&store, &milvus, &MemReport::default(), c).is_err());
    // A lost reply now leaves the second batch in doubt...
    *milvus.lose_reply.borrow_mut() = Some(Error::Other("transport error".into()));
    assert!(load_collection(&store, &milvus, &MemReport::default(), c).is_err());
    assert_eq!(milvus.upserts.get(), 0);
    // ...so a bulk import of the same dump is refused instead of storing rows twice.
    let plan = plan_load(&store, &milvus, &opts()).unwrap();
    let e = load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap_err().to_string();
    assert!(e.contains("did not finish") && e.contains("Finish the load with loadMode: insert"), "{e}");
    assert_eq!(milvus.imports.get(), 0);
    // The insert load finishes it, exactly once.
    load_collection(&store, &milvus, &MemReport::default(), c).unwrap();
    assert_eq!(stored(&milvus), expected());
    assert_eq!(milvus.upserts.get(), 1);
}

#[test]
fn an_unfinished_bulk_import_stops_an_insert_load() {
    let store = dumped();
    let milvus = FakeMilvus::on(&store);
    let plan = plan_load(&store, &milvus, &opts()).unwrap();
    load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap();
    // Pretend the bulk import of s1 never finished.
    let path = store.paths(Role::Target).into_iter().find(|p| p.ends_with("/c/_default/s1.json")).unwrap();
    let mut j = journal_of(&store, "c/_default/s1");
    j.imports[0].state = crate::journal::State::Submitted;
    store.put(Role::Target, &path, serde_json::to_vec(&j).unwrap());
    let plan = plan_load(&store, &milvus, &insert_opts(1 << 20)).unwrap();
    let e = load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap_err().to_string();
    assert!(e.contains("a bulk import (loadMode: import) that did not finish"), "{e}");
    assert_eq!(milvus.inserted.get(), 0);
}

#[test]
fn batches_follow_the_bytes_within_bounds() {
    use crate::inserts::batch_rows;
    assert_eq!(batch_rows(16 << 20, 768 * 4), 5443);
    assert_eq!(batch_rows(1, 512), 1);
    assert_eq!(batch_rows(48 << 20, 1), 100_000);
}

#[test]
fn a_file_changed_after_the_manifest_is_never_sent() {
    let store = dumped();
    let milvus = FakeMilvus::on(&store);
    let plan = plan_load(&store, &milvus, &insert_opts(36)).unwrap();
    let path = store.paths(Role::Target).into_iter().find(|p| p.ends_with("c/_default/s1/data.npy")).unwrap();
    let mut bytes = store.get(Role::Target, &path).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    store.put(Role::Target, &path, bytes);
    let e = load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap_err().to_string();
    assert!(e.contains(&path) && e.contains("the file changed after the manifest was written"), "{e}");
    assert_eq!(milvus.inserted.get(), 0);
}

/// A Parquet dump (`migration.format: parquet`) is inserted the same way: batches cut across
/// its row groups, a lost reply re-sent with Upsert, every row once.
#[test]
fn a_parquet_dump_is_inserted_once_through_a_lost_reply() {
    let store = dumped_parquet();
    let milvus = FakeMilvus::on(&store);
    let plan = plan_load(&store, &milvus, &insert_opts(36)).unwrap();
    let c = &plan.collections[0];
    *milvus.lose_reply.borrow_mut() = Some(Error::Unavailable("connection reset".into()));
    assert!(load_collection(&store, &milvus, &MemReport::default(), c).is_err());
    assert_eq!(stored(&milvus)[0].1, vec![100, 102]);
    let r = load_collection(&store, &milvus, &MemReport::default(), c).unwrap();
    assert_eq!((r.imported, r.rows, milvus.upserts.get()), (2, 7, 1));
    assert_eq!(stored(&milvus), expected(), "every row once");
    let vectors: Vec<(i64, Vec<u8>)> = milvus.collections.borrow()["c"].1["a_b"].iter().map(|e| (e.id, e.vector.clone())).collect();
    let want = |id: i64| [id as f32, 0.5].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    assert_eq!(vectors, [200, 201, 202].map(|id| (id, want(id))), "vectors read back from the Parquet file");
    assert!(verify_collection(&store, &milvus, &MemReport::default(), c).unwrap().ok());
}
