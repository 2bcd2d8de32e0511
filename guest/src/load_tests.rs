//! Load and verify against an in-memory Milvus (unit tests only; the real server is exercised by
//! the end-to-end tests).
use crate::prelude::*;

use core::cell::{Cell, RefCell};
use alloc::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::io::memory::{MemReport, MemStore};
use crate::io::*;
use crate::load::{load_collection, plan_load, LoadOptions};
use crate::manifest::write_manifest;
use crate::meta::VectorKind;
use crate::plan::{CollectionPlan, DumpOptions, DumpPlan, PartitionPlan, SegmentUnit};
use crate::verify::verify_collection;

pub(crate) fn opts() -> LoadOptions {
    LoadOptions::default()
}

#[derive(Default)]
pub(crate) struct FakeMilvus {
    pub(crate) store: MemStore,
    pub(crate) collections: RefCell<BTreeMap<String, (NewCollection, BTreeMap<String, Vec<Entity>>)>>,
    pub(crate) imports: Cell<u32>,
    fail_next: Cell<bool>,
    failed: RefCell<Vec<i64>>,
    indexes: RefCell<Vec<IndexInfo>>,
    /// What `list_imports` answers (every import is recorded); `None` files as 2.4+ servers.
    tasks: RefCell<Vec<ImportTask>>,
    hide_files: Cell<bool>,
    /// Collection ids: a re-created collection gets a new one.
    ids: RefCell<BTreeMap<String, i64>>,
    /// Rows each task imported, as `await_import` reports them (a test may change them).
    task_rows: RefCell<BTreeMap<i64, u64>>,
    /// The next import is refused by the server (a status error, nothing imported).
    refuse_next: Cell<bool>,
    /// Imports submitted and not yet awaited: now and at most.
    in_flight: Cell<u32>,
    max_in_flight: Cell<u32>,
    /// Rows stored by Insert, and Upsert calls.
    pub(crate) inserted: Cell<u64>,
    pub(crate) upserts: Cell<u32>,
    /// The next write fails with this before storing anything, or after storing its rows.
    pub(crate) fail_write: RefCell<Option<Error>>,
    pub(crate) lose_reply: RefCell<Option<Error>>,
    /// A 2.2 server: Upsert is unimplemented.
    pub(crate) no_upsert: Cell<bool>,
}

impl FakeMilvus {
    /// A server whose import tasks read `store`.
    pub(crate) fn on(store: &MemStore) -> Self {
        FakeMilvus { store: store.clone(), ..Default::default() }
    }

    fn drop_collection(&self, name: &str) {
        self.collections.borrow_mut().remove(name);
    }
}

fn npy_body(b: &[u8]) -> &[u8] {
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    &b[10 + hlen..]
}

impl Milvus for FakeMilvus {
    fn server_version(&self) -> Result<String> {
        Ok("v2.3.5".into())
    }
    fn describe_collection(&self, name: &str) -> Result<Option<CollectionInfo>> {
        Ok(self.collections.borrow().get(name).map(|(c, parts)| CollectionInfo {
            id: self.ids.borrow()[name],
            fields: vec![
                FieldInfo { name: c.id_field.clone(), field_type: FieldType::Int64, is_primary: true, auto_id: false, dim: None },
                FieldInfo {
                    name: c.vector_field.clone(),
                    field_type: if c.binary { FieldType::BinaryVector } else { FieldType::FloatVector },
                    is_primary: false,
                    auto_id: false,
                    dim: Some(c.dim),
                },
            ],
            partitions: parts.keys().cloned().collect(),
        }))
    }
    fn create_collection(&self, c: &NewCollection) -> Result<()> {
        let parts = [("_default".to_string(), vec![])].into();
        self.collections.borrow_mut().insert(c.name.clone(), (c.clone(), parts));
        let next = self.ids.borrow().values().max().copied().unwrap_or(1000) + 1;
        self.ids.borrow_mut().insert(c.name.clone(), next);
        Ok(())
    }
    fn create_partition(&self, collection: &str, partition: &str) -> Result<()> {
        self.collections.borrow_mut().get_mut(collection).unwrap().1.insert(partition.into(), vec![]);
        Ok(())
    }
    fn describe_indexes(&self, _: &str) -> Result<Vec<IndexInfo>> {
        Ok(self.indexes.borrow().clone())
    }
    fn create_index(&self, _: &str, index: &IndexInfo) -> Result<()> {
        self.indexes.borrow_mut().push(index.clone());
        Ok(())
    }
    fn load(&self, _: &str) -> Result<()> {
        if self.indexes.borrow().is_empty() {
            return Err(Error::Remote { code: 700, reason: "index not found".into() });
        }
        Ok(())
    }
    fn import_files(&self, collection: &str, partition: &str, files: &[String]) -> Result<i64> {
        if self.refuse_next.replace(false) {
            return Err(Error::Remote { code: 2100, reason: "Milvus at fake (Import): too many unfinished import jobs".into() });
        }
        self.in_flight.set(self.in_flight.get() + 1);
        self.max_in_flight.set(self.max_in_flight.get().max(self.in_flight.get()));
        self.imports.set(self.imports.get() + 1);
        let task = self.imports.get() as i64;
        let failed = self.fail_next.replace(false);
        let state = if failed { ImportState::Failed } else { ImportState::Completed };
        self.tasks.borrow_mut().push(ImportTask { id: task, state, files: Some(files.to_vec()) });
        if failed {
            self.failed.borrow_mut().push(task);
            return Ok(task);
        }
        let mut cols = self.collections.borrow_mut();
        let (c, parts) = cols.get_mut(collection).unwrap();
        let ids = self.store.get(Role::Target, files.iter().find(|f| f.ends_with("/id.npy")).unwrap()).unwrap();
        let vecs = self.store.get(Role::Target, files.iter().find(|f| f.ends_with("/data.npy")).unwrap()).unwrap();
        let width = if c.binary { c.dim as usize / 8 } else { c.dim as usize * 4 };
        let rows = parts.get_mut(partition).ok_or_else(|| Error::Remote { code: 200, reason: "partition not found".into() })?;
        let mut n = 0;
        for (id, v) in npy_body(&ids).chunks(8).zip(npy_body(&vecs).chunks(width)) {
            rows.push(Entity { id: i64::from_le_bytes(id.try_into().unwrap()), vector: v.to_vec() });
            n += 1;
        }
        self.task_rows.borrow_mut().insert(task, n);
        Ok(task)
    }
    fn await_import(&self, task: i64) -> Result<ImportOutcome> {
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
        let failed = self.failed.borrow().contains(&task);
        let rows = self.task_rows.borrow().get(&task).copied().unwrap_or(0);
        Ok(ImportOutcome { completed: !failed, rows, reason: if failed { "disk quota".into() } else { String::new() } })
    }
    fn list_imports(&self, _: &str) -> Result<Vec<ImportTask>> {
        let hide = self.hide_files.get();
        Ok(self.tasks.borrow().iter().map(|t| ImportTask { files: if hide { None } else { t.files.clone() }, ..t.clone() }).collect())
    }
    fn insert(&self, collection: &str, partition: &str, rows: &Rows) -> Result<u64> {
        if let Some(e) = self.fail_write.borrow_mut().take() {
            return Err(e);
        }
        let mut cols = self.collections.borrow_mut();
        let (c, parts) = cols.get_mut(collection).unwrap();
        let width = if c.binary { c.dim as usize / 8 } else { c.dim as usize * 4 };
        let stored = parts.get_mut(partition).ok_or_else(|| Error::Remote { code: 200, reason: "partition not found".into() })?;
        for (id, v) in rows.ids.iter().zip(rows.vectors.chunks(width)) {
            stored.push(Entity { id: *id, vector: v.to_vec() });
        }
        self.inserted.set(self.inserted.get() + rows.ids.len() as u64);
        // A reply lost after the rows were stored.
        if let Some(e) = self.lose_reply.borrow_mut().take() {
            return Err(e);
        }
        Ok(rows.ids.len() as u64)
    }
    fn upsert(&self, collection: &str, partition: &str, rows: &Rows) -> Result<u64> {
        if self.no_upsert.get() {
            return Err(Error::Unsupported("Milvus at fake (Upsert): unimplemented".into()));
        }
        {
            let mut cols = self.collections.borrow_mut();
            let stored = cols.get_mut(collection).unwrap().1.get_mut(partition).unwrap();
            stored.retain(|e| !rows.ids.contains(&e.id));
        }
        self.upserts.set(self.upserts.get() + 1);
        let dedup: alloc::collections::BTreeMap<i64, usize> = rows.ids.iter().enumerate().map(|(k, id)| (*id, k)).collect();
        let width = rows.vectors.len() / rows.ids.len().max(1);
        let mut cols = self.collections.borrow_mut();
        let stored = cols.get_mut(collection).unwrap().1.get_mut(partition).unwrap();
        for (id, k) in dedup {
            stored.push(Entity { id, vector: rows.vectors[k * width..(k + 1) * width].to_vec() });
        }
        Ok(rows.ids.len() as u64)
    }
    fn flush(&self, _: &str) -> Result<()> {
        Ok(())
    }
    /// As 2.3.5 measured: count(*) counts every stored copy of a repeated primary key.
    fn count_rows(&self, collection: &str, partition: Option<&str>) -> Result<u64> {
        Ok(self.stored(collection, partition, |_| true).len() as u64)
    }
    fn stored_rows(&self, collection: &str, partition: Option<&str>) -> Result<u64> {
        let cols = self.collections.borrow();
        let parts = &cols[collection].1;
        Ok(parts.iter().filter(|(p, _)| partition.is_none_or(|x| x == p.as_str())).map(|(_, r)| r.len() as u64).sum())
    }
    /// As 2.3.5: one entity per primary key (the newest copy).
    fn get_entities(&self, collection: &str, _: &str, _: &str, ids: &[i64]) -> Result<Vec<Entity>> {
        let cols = self.collections.borrow();
        let mut out: BTreeMap<i64, Entity> = BTreeMap::new();
        for e in cols[collection].1.values().flatten().filter(|e| ids.contains(&e.id)) {
            out.insert(e.id, e.clone());
        }
        Ok(out.into_values().collect())
    }
    /// As 2.3.5 measured: count(*) of an expression counts every stored copy.
    fn count_in_range(&self, collection: &str, partition: Option<&str>, _: &str, low: i64, high: i64) -> Result<u64> {
        Ok(self.stored(collection, partition, |id| (low..=high).contains(&id)).len() as u64)
    }
    fn count_ids(&self, collection: &str, partition: Option<&str>, _: &str, ids: &[i64]) -> Result<u64> {
        Ok(self.stored(collection, partition, |id| ids.contains(&id)).len() as u64)
    }
    /// As 2.3.5: one entity per key (the oldest copy), and only `limit` copies looked at.
    fn query_range(&self, collection: &str, partition: Option<&str>, _: &str, _: &str, low: i64, high: i64, limit: u32) -> Result<Vec<Entity>> {
        let mut out: BTreeMap<i64, Entity> = BTreeMap::new();
        for e in self.stored(collection, partition, |id| (low..=high).contains(&id)).into_iter().take(limit as usize) {
            out.entry(e.id).or_insert(e);
        }
        Ok(out.into_values().collect())
    }
    fn delete_ids(&self, collection: &str, partition: &str, _: &str, ids: &[i64]) -> Result<u64> {
        let mut cols = self.collections.borrow_mut();
        let stored = cols.get_mut(collection).unwrap().1.get_mut(partition).unwrap();
        stored.retain(|e| !ids.contains(&e.id));
        Ok(ids.len() as u64)
    }
}

impl FakeMilvus {
    /// Every stored copy whose key `keep` accepts, in one partition or all.
    fn stored(&self, collection: &str, partition: Option<&str>, keep: impl Fn(i64) -> bool) -> Vec<Entity> {
        let cols = self.collections.borrow();
        cols[collection].1.iter().filter(|(p, _)| partition.is_none_or(|x| x == p.as_str())).flat_map(|(_, r)| r.iter().filter(|e| keep(e.id)).cloned()).collect()
    }
}

fn counted(payload: Vec<u8>) -> Vec<u8> {
    let mut v = (payload.len() as u64).to_le_bytes().to_vec();
    v.extend(payload);
    v
}

/// A dumped collection "c" (dim 2): default partition segment "s1" (6 rows, rows 1 and 4
/// deleted) and partition "a b" (table "77") segment "s2" (3 rows).
pub(crate) fn dumped() -> MemStore {
    let (store, plan) = source();
    dump(&store, &plan, &DumpOptions::default());
    store
}

/// `dumped` with `migration.format: parquet`: one rows.parquet per segment.
pub(crate) fn dumped_parquet() -> MemStore {
    let (store, plan) = source();
    dump(&store, &plan, &DumpOptions { format: crate::plan::FileFormat::Parquet, ..Default::default() });
    assert!(store.paths(Role::Target).iter().any(|p| p.ends_with("/rows.parquet")) && !store.paths(Role::Target).iter().any(|p| p.ends_with(".npy")));
    store
}

/// Dumps `plan` again with `opts` (as `dump` would: the manifest goes first).
fn dump(store: &MemStore, plan: &DumpPlan, opts: &DumpOptions) {
    crate::manifest::invalidate_manifest(store).unwrap();
    let (reports, pack_files) = crate::dump::dump_plan(store, &MemReport::default(), plan, opts).unwrap();
    write_manifest(store, plan, opts, &reports, &pack_files).unwrap();
}

/// Writes a 1.x segment of `rows` rows (ids `first..`, vectors `[id, 0.5]`).
fn put_segment(store: &MemStore, table: &str, seg: &str, rows: u64, deleted: &[i32], first: i64) {
    let v: Vec<u8> = (0..rows).flat_map(|i| [first as f32 + i as f32, 0.5]).flat_map(f32::to_le_bytes).collect();
    let ids: Vec<u8> = (0..rows).flat_map(|i| (first + i as i64).to_le_bytes()).collect();
    store.put(Role::Source, &format!("{table}/{seg}/{seg}.rv"), counted(v));
    store.put(Role::Source, &format!("{table}/{seg}/{seg}.uid"), counted(ids));
    store.put(Role::Source, &format!("{table}/{seg}/deleted_docs"), counted(deleted.iter().flat_map(|d| d.to_le_bytes()).collect()));
}

/// The 1.x side of `dumped`, and its plan.
fn source() -> (MemStore, DumpPlan) {
    let store = MemStore::default();
    let seg = |table: &str, seg: &str, rows: u64, deleted: &[i32], first: i64| put_segment(&store, table, seg, rows, deleted, first);
    seg("c", "s1", 6, &[4, 1], 100);
    seg("77", "s2", 3, &[], 200);
    let unit = |table: &str, tag: &str, seg: &str, rows, dir: &str| SegmentUnit {
        collection: "c".into(),
        partition_tag: tag.into(),
        table_id: table.into(),
        segment_id: seg.into(),
        vector: VectorKind::Float,
        dim: 2,
        rows,
        file_size: 0,
        output_dir: dir.into(),
        drop_rows: vec![],
    };
    let plan = DumpPlan {
        collections: vec![CollectionPlan {
            name: "c".into(),
            vector: VectorKind::Float,
            dim: 2,
            metric: 1,
            engine_type: 1,
            index_params: "{}".into(),
            partitions: vec![
                PartitionPlan { tag: String::new(), table_id: "c".into(), segments: 1, rows: 4 },
                PartitionPlan { tag: "a b".into(), table_id: "77".into(), segments: 1, rows: 3 },
            ],
        }],
        units: vec![unit("c", "", "s1", 4, "c/_default/s1"), unit("77", "a b", "s2", 3, "c/77/s2")],
        packs: vec![],
        warnings: vec![],
    };
    (store, plan)
}

#[test]
fn load_is_exactly_once_and_verifies() {
    let store = dumped();
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let plan = plan_load(&store, &milvus, &opts()).unwrap();
    assert_eq!(plan.warnings, ["collection \"c\": partition tag \"a b\" becomes 2.x partition \"a_b\""]);
    let c = &plan.collections[0];
    assert_eq!(c.index.as_ref().map(|i| i.index_type.as_str()), Some("FLAT"));
    let r = load_collection(&store, &milvus, &MemReport::default(), c).unwrap();
    assert_eq!((r.imported, r.skipped, r.rows), (2, 0, 7));
    assert_eq!(milvus.indexes.borrow().len(), 1, "the planned index was built");
    assert_eq!(milvus.count_rows("c", Some("a_b")).unwrap(), 3);

    let v = verify_collection(&store, &milvus, &MemReport::default(), c).unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.partitions[0].deleted_checked, 2);
    assert_eq!(v.partitions[0].sampled, 4);

    // Again: the journal says both groups are done; nothing is imported twice.
    let plan = plan_load(&store, &milvus, &opts()).unwrap();
    assert!(plan.collections[0].exists);
    let r = load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap();
    assert_eq!((r.imported, r.skipped), (0, 2));
    assert_eq!(milvus.imports.get(), 2);
    assert_eq!(milvus.count_rows("c", None).unwrap(), 7);

    // Cleanup removes the npy files only; the journal still prevents a second import.
    assert_eq!(crate::load::cleanup_collection(&store, &MemReport::default(), &plan.collections[0]).unwrap(), 4);
    assert!(store.paths(Role::Target).iter().all(|p| !p.ends_with(".npy")));
    let r = load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap();
    assert_eq!((r.imported, r.skipped), (0, 2));
}

#[test]
fn verify_catches_a_deleted_row_and_a_wrong_vector() {
    let store = dumped();
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let plan = plan_load(&store, &milvus, &opts()).unwrap();
    load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap();
    {
        let mut cols = milvus.collections.borrow_mut();
        let rows = cols.get_mut("c").unwrap().1.get_mut("_default").unwrap();
        rows[0].vector[0] ^= 1; // id 100
        rows.push(Entity { id: 101, vector: [101f32, 0.5].iter().flat_map(|f| f.to_le_bytes()).collect() });
    }
    let v = verify_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap();
    assert!(!v.ok());
    let problems = v.partitions[0].problems.join("\n");
    assert!(problems.contains("5 rows in Milvus, 4 live rows"), "{problems}");
    assert!(problems.contains("row 0 (id 100): its vector differs"), "{problems}");
    assert!(problems.contains("row 1: deleted row (id 101) is present"), "{problems}");
}

#[test]
fn a_failed_import_is_reported_and_retried_by_the_next_run() {
    let store = dumped();
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    milvus.fail_next.set(true);
    let plan = plan_load(&store, &milvus, &opts()).unwrap();
    let err = load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap_err().to_string();
    assert!(err.contains("segment s1 (task 1) failed on the server: disk quota"), "{err}");
    let r = load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap();
    assert_eq!((r.imported, r.skipped), (1, 1));
    assert_eq!(milvus.count_rows("c", None).unwrap(), 7);
}

/// Creates collection "c" (float, `dim`) as another client would.
fn create_c(milvus: &FakeMilvus, dim: u32) {
    let c = NewCollection {
        name: "c".into(),
        description: String::new(),
        id_field: "id".into(),
        vector_field: "data".into(),
        binary: false,
        dim,
        shards: 0,
        consistency: "Bounded".into(),
    };
    milvus.create_collection(&c).unwrap();
}

/// Rewinds every journal entry to `submitting`, as a run killed between submitting an import
/// and recording its task id leaves it.
fn rewind_journal(store: &MemStore) {
    edit_journals(store, |i| (i.state, i.task) = (crate::journal::State::Submitting, 0));
}

/// Changes every import record of every journal entry.
fn edit_journals(store: &MemStore, mut f: impl FnMut(&mut crate::journal::Import)) {
    for path in journal_paths(store) {
        let mut j: crate::journal::SegmentJournal = serde_json::from_slice(&store.get(Role::Target, &path).unwrap()).unwrap();
        j.imports.iter_mut().for_each(&mut f);
        crate::journal::write(store, &path, &j).unwrap();
    }
}

fn journal_paths(store: &MemStore) -> Vec<String> {
    store.paths(Role::Target).into_iter().filter(|p| p.starts_with("_journal/")).collect()
}

/// The journal entry of segment dir `dir` (exactly one target expected).
pub(crate) fn journal_of(store: &MemStore, dir: &str) -> crate::journal::SegmentJournal {
    let paths: Vec<String> = journal_paths(store).into_iter().filter(|p| p.ends_with(&format!("/{dir}.json"))).collect();
    assert_eq!(paths.len(), 1, "{paths:?}");
    serde_json::from_slice(&store.get(Role::Target, &paths[0]).unwrap()).unwrap()
}

#[test]
fn an_import_submitted_but_not_recorded_is_found_on_the_server_not_repeated() {
    let store = dumped();
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let plan = plan_load(&store, &milvus, &opts()).unwrap();
    load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap();
    rewind_journal(&store);
    let r = load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap();
    assert_eq!(milvus.imports.get(), 2, "no import was submitted again");
    assert_eq!(r.imported, 2, "the earlier tasks were adopted and awaited");
    assert_eq!(milvus.count_rows("c", None).unwrap(), 7);
    let e = &journal_of(&store, "c/_default/s1").imports[0];
    assert_eq!((e.state, e.task), (crate::journal::State::Completed, 1));
}

#[test]
fn an_intent_the_server_never_saw_is_submitted_once() {
    let store = dumped();
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let plan = plan_load(&store, &milvus, &opts()).unwrap();
    load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap();
    rewind_journal(&store);
    // The server forgot the tasks and the rows (as if the run stopped before Import reached it).
    milvus.tasks.borrow_mut().clear();
    milvus.collections.borrow_mut().get_mut("c").unwrap().1.values_mut().for_each(Vec::clear);
    let r = load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap();
    assert_eq!((r.imported, milvus.imports.get()), (2, 4));
    assert_eq!(milvus.count_rows("c", None).unwrap(), 7);

    // A failed task with the same files does not count as done.
    rewind_journal(&store);
    milvus.tasks.borrow_mut().iter_mut().for_each(|t| t.state = ImportState::Failed);
    milvus.collections.borrow_mut().get_mut("c").unwrap().1.values_mut().for_each(Vec::clear);
    load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap();
    assert_eq!(milvus.count_rows("c", None).unwrap(), 7);
}

#[test]
fn an_intent_that_cannot_be_checked_stops_instead_of_guessing() {
    let store = dumped();
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let plan = plan_load(&store, &milvus, &opts()).unwrap();
    load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap();
    rewind_journal(&store);
    milvus.hide_files.set(true);
    let err = load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap_err().to_string();
    assert!(err.contains("whether that import ran cannot be told") && err.contains("/c/_default/s1.json"), "{err}");
    assert_eq!(milvus.imports.get(), 2);
}

#[test]
fn a_dump_changed_under_an_earlier_import_stops_the_load() {
    let store = dumped();
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let plan = plan_load(&store, &milvus, &opts()).unwrap();
    load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap();
    // A new dump wrote other bytes for segment s1 (the manifest's checksum changes).
    let mut m: serde_json::Value = serde_json::from_slice(&store.get(Role::Target, "manifest.json").unwrap()).unwrap();
    m["collections"][0]["partitions"][0]["segments"][0]["files"][0]["crc32c"] = "0badc0de".into();
    store.put(Role::Target, "manifest.json", serde_json::to_vec(&m).unwrap());
    let plan = plan_load(&store, &milvus, &opts()).unwrap();
    let err = load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap_err().to_string();
    assert!(err.contains("segment s1: the dump changed since an earlier run imported rows of it") && err.contains("/c/_default/s1.json"), "{err}");
    assert_eq!(milvus.imports.get(), 2, "nothing imported again");
}

#[test]
fn a_mismatched_existing_collection_stops_the_plan() {
    let store = dumped();
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    create_c(&milvus, 3);
    let err = plan_load(&store, &milvus, &opts()).unwrap_err().to_string();
    assert!(err.contains("existing collection \"c\" does not match: field \"data\" has dim 3, the 1.x collection has dim 2"), "{err}");
    assert!(err.contains("Nothing was imported"), "{err}");
    assert_eq!(milvus.imports.get(), 0);
}

#[test]
fn rename_and_on_exists() {
    let store = dumped();
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let mut o = opts();
    o.renames = vec![("c".into(), "c2".into())];
    let plan = plan_load(&store, &milvus, &o).unwrap();
    assert_eq!((plan.collections[0].name.as_str(), plan.collections[0].source_name.as_str()), ("c2", "c"));
    load_collection(&store, &milvus, &MemReport::default(), &plan.collections[0]).unwrap();
    assert_eq!(milvus.count_rows("c2", None).unwrap(), 7);

    o.on_exists = crate::load::OnExists::Fail;
    let err = plan_load(&store, &milvus, &o).unwrap_err().to_string();
    assert!(err.contains("collection \"c2\" already exists (migration.onExists: fail)"), "{err}");
    o.on_exists = crate::load::OnExists::Skip;
    let plan = plan_load(&store, &milvus, &o).unwrap();
    assert!(plan.collections.is_empty() && plan.warnings.iter().any(|w| w.contains("skipped")));

    o.renames = vec![("nope".into(), "x".into()), ("c".into(), "1bad".into())];
    let err = plan_load(&store, &milvus, &o).unwrap_err().to_string();
    assert!(err.contains("rename of \"nope\": no such collection") && err.contains("\"1bad\" is not a valid"), "{err}");
}

#[test]
fn no_manifest_means_no_load() {
    let milvus = FakeMilvus::default();
    let err = plan_load(&MemStore::default(), &milvus, &opts()).unwrap_err().to_string();
    assert!(err.contains("run `dump` first"), "{err}");
}

// --- The review's findings (issue 10): each reproduced first, then fixed. ---

/// Finding 2: lowering migration.maxGroupMiB after a completed import and dumping again must
/// not import the segment again (7 rows became 14).
#[test]
fn a_new_split_of_an_imported_segment_is_not_imported_again() {
    let (store, plan) = source();
    dump(&store, &plan, &DumpOptions::default());
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    // 16 bytes a row: 2 rows per group.
    dump(&store, &plan, &DumpOptions { max_group_bytes: 32, ..Default::default() });
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    assert_eq!(c.partitions[0].groups.len(), 2, "s1 is now two part groups");
    let r = load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    assert_eq!((r.imported, r.skipped), (0, 4));
    assert_eq!((milvus.imports.get(), milvus.stored_rows("c", None).unwrap()), (2, 7));
}

/// Finding 2, the other way round: part of a segment imported in one split, the rest failed,
/// then a new split overlaps both: refused, nothing imported twice.
#[test]
fn a_new_split_overlapping_a_partial_import_is_refused() {
    let (store, plan) = source();
    dump(&store, &plan, &DumpOptions { max_group_bytes: 32, ..Default::default() });
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    // Rows 2..4 of s1 "never landed": their record says failed, their rows are gone.
    edit_journals(&store, |i| {
        if i.dir == "c/_default/s1/part-0001" {
            i.state = crate::journal::State::Failed;
        }
    });
    milvus.collections.borrow_mut().get_mut("c").unwrap().1.get_mut("_default").unwrap().truncate(2);
    dump(&store, &plan, &DumpOptions::default());
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    let err = load_collection(&store, &milvus, &MemReport::default(), &c).unwrap_err().to_string();
    assert!(err.contains("segment s1: its rows 0..4") && err.contains("overlap") && err.contains("rows 0..2 as c/_default/s1/part-0000"), "{err}");
    assert_eq!(milvus.stored_rows("c", Some("_default")).unwrap(), 2, "nothing of s1 imported again");
}

/// Finding 3: a completion with the wrong row count (or 0 rows) is recorded as mismatched; the
/// next run neither skips it nor imports it again.
#[test]
fn a_completion_with_the_wrong_row_count_is_never_taken_as_done() {
    for reported in [3, 0] {
        let store = dumped();
        let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
        let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
        // The server imports s1 (task 1, 4 rows) but reports another count.
        let lying = Tweaked { report: Some((1, reported)), ..Tweaked::new(&milvus) };
        let err = load_collection(&store, &lying, &MemReport::default(), &c).unwrap_err().to_string();
        assert!(err.contains(&format!("the server reports {reported} rows imported, the dump has 4")), "{err}");
        let e = journal_of(&store, "c/_default/s1");
        assert_eq!(e.imports[0].state, crate::journal::State::Mismatched);
        let err = load_collection(&store, &milvus, &MemReport::default(), &c).unwrap_err().to_string();
        assert!(err.contains(&format!("completed with {reported} rows where the dump has 4")), "{err}");
        assert_eq!(milvus.imports.get(), 2, "not imported again");
    }
}

/// The fake Milvus with a twist: `await_import` reports `rows` for `task`; or, `racing`, its
/// first describe does not see the collection and the next one not the partitions (the plan's
/// view), and creates fail as a server's do when another client created the thing first.
struct Tweaked<'a> {
    inner: &'a FakeMilvus,
    report: Option<(i64, u64)>,
    racing: bool,
    describes: Cell<u32>,
}

impl<'a> Tweaked<'a> {
    fn new(inner: &'a FakeMilvus) -> Self {
        Tweaked { inner, report: None, racing: false, describes: Cell::new(0) }
    }
}

impl Milvus for Tweaked<'_> {
    fn server_version(&self) -> Result<String> {
        self.inner.server_version()
    }
    fn describe_collection(&self, name: &str) -> Result<Option<CollectionInfo>> {
        let n = self.describes.replace(self.describes.get() + 1);
        match self.inner.describe_collection(name)? {
            Some(_) if self.racing && n == 0 => Ok(None),
            Some(info) if self.racing && n == 1 => Ok(Some(CollectionInfo { partitions: vec!["_default".into()], ..info })),
            other => Ok(other),
        }
    }
    fn create_collection(&self, c: &NewCollection) -> Result<()> {
        if self.racing {
            return Err(Error::Remote { code: 1, reason: "collection already exists".into() });
        }
        self.inner.create_collection(c)
    }
    fn create_partition(&self, collection: &str, partition: &str) -> Result<()> {
        if self.racing {
            return Err(Error::Remote { code: 1, reason: "partition already exists".into() });
        }
        self.inner.create_partition(collection, partition)
    }
    fn describe_indexes(&self, c: &str) -> Result<Vec<IndexInfo>> {
        self.inner.describe_indexes(c)
    }
    fn create_index(&self, c: &str, index: &IndexInfo) -> Result<()> {
        self.inner.create_index(c, index)
    }
    fn load(&self, c: &str) -> Result<()> {
        self.inner.load(c)
    }
    fn import_files(&self, collection: &str, partition: &str, files: &[String]) -> Result<i64> {
        self.inner.import_files(collection, partition, files)
    }
    fn await_import(&self, task: i64) -> Result<ImportOutcome> {
        let o = self.inner.await_import(task)?;
        Ok(match self.report {
            Some((t, rows)) if t == task => ImportOutcome { rows, ..o },
            _ => o,
        })
    }
    fn list_imports(&self, c: &str) -> Result<Vec<ImportTask>> {
        self.inner.list_imports(c)
    }
    fn insert(&self, c: &str, p: &str, rows: &Rows) -> Result<u64> {
        self.inner.insert(c, p, rows)
    }
    fn upsert(&self, c: &str, p: &str, rows: &Rows) -> Result<u64> {
        self.inner.upsert(c, p, rows)
    }
    fn flush(&self, c: &str) -> Result<()> {
        self.inner.flush(c)
    }
    fn count_rows(&self, c: &str, p: Option<&str>) -> Result<u64> {
        self.inner.count_rows(c, p)
    }
    fn stored_rows(&self, c: &str, p: Option<&str>) -> Result<u64> {
        self.inner.stored_rows(c, p)
    }
    fn get_entities(&self, c: &str, i: &str, v: &str, ids: &[i64]) -> Result<Vec<Entity>> {
        self.inner.get_entities(c, i, v, ids)
    }
    fn count_in_range(&self, c: &str, p: Option<&str>, i: &str, low: i64, high: i64) -> Result<u64> {
        self.inner.count_in_range(c, p, i, low, high)
    }
    fn count_ids(&self, c: &str, p: Option<&str>, i: &str, ids: &[i64]) -> Result<u64> {
        self.inner.count_ids(c, p, i, ids)
    }
    fn query_range(&self, c: &str, p: Option<&str>, i: &str, v: &str, low: i64, high: i64, limit: u32) -> Result<Vec<Entity>> {
        self.inner.query_range(c, p, i, v, low, high, limit)
    }
    fn delete_ids(&self, c: &str, p: &str, i: &str, ids: &[i64]) -> Result<u64> {
        self.inner.delete_ids(c, p, i, ids)
    }
}

/// Finding 5: the journal is scoped by target: another collection (rename), a dropped and
/// re-created collection, or another server each get every row.
#[test]
fn the_journal_is_per_target() {
    let store = dumped();
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();

    let mut o = opts();
    o.renames = vec![("c".into(), "c2".into())];
    let c2 = plan_load(&store, &milvus, &o).unwrap().collections.remove(0);
    let r = load_collection(&store, &milvus, &MemReport::default(), &c2).unwrap();
    assert_eq!((r.imported, r.rows, milvus.stored_rows("c2", None).unwrap()), (2, 7, 7));

    milvus.drop_collection("c");
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    let r = load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    assert_eq!((r.imported, milvus.stored_rows("c", None).unwrap()), (2, 7), "a re-created collection gets every row");

    // Another server (its collection has another id), reached under another address.
    let other = FakeMilvus { store: store.clone(), ..Default::default() };
    other.ids.borrow_mut().insert("seed".into(), 5000);
    let c = plan_load(&store, &other, &LoadOptions { target: "elsewhere:19530/default".into(), ..opts() }).unwrap().collections.remove(0);
    let r = load_collection(&store, &other, &MemReport::default(), &c).unwrap();
    assert_eq!((r.imported, other.stored_rows("c", None).unwrap()), (2, 7));
    // And each target still imports nothing twice.
    let r = load_collection(&store, &other, &MemReport::default(), &c).unwrap();
    assert_eq!((r.imported, r.skipped), (0, 2));

    // A journal of an older version (no target recorded) stops the load instead of guessing.
    let fresh = dumped();
    fresh.put(Role::Target, "_journal/c/_default/s1.json", b"{}".to_vec());
    let m = FakeMilvus { store: fresh.clone(), ..Default::default() };
    let c = plan_load(&fresh, &m, &opts()).unwrap().collections.remove(0);
    let err = load_collection(&fresh, &m, &MemReport::default(), &c).unwrap_err().to_string();
    assert!(err.contains("_journal/c/_default/s1.json") && err.contains("older version"), "{err}");
}

/// Finding 6: a file that no longer matches the manifest is not imported.
#[test]
fn files_are_checked_against_the_manifest_before_the_import() {
    let store = dumped();
    let ids = store.get(Role::Target, "c/_default/s1/id.npy").unwrap();
    store.put(Role::Target, "c/_default/s1/id.npy", ids[..ids.len() - 8].to_vec());
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    let err = load_collection(&store, &milvus, &MemReport::default(), &c).unwrap_err().to_string();
    assert!(err.contains("c/_default/s1/id.npy") && err.contains("the dump's manifest says"), "{err}");
    assert_eq!(milvus.imports.get(), 0);
    // And a dump invalidates the manifest before it writes anything.
    crate::manifest::invalidate_manifest(&store).unwrap();
    assert!(plan_load(&store, &milvus, &opts()).unwrap_err().to_string().contains("run `dump` first"));
}

/// Finding 7: a refused import (a status error) is recorded as failed, so the next run submits
/// it again even on a server that lists no files (2.4+); imports in flight are bounded.
#[test]
fn a_refused_import_is_retried_and_imports_in_flight_are_bounded() {
    let store = dumped();
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    milvus.hide_files.set(true);
    milvus.refuse_next.set(true);
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    let err = load_collection(&store, &milvus, &MemReport::default(), &c).unwrap_err().to_string();
    assert!(err.contains("too many unfinished import jobs"), "{err}");
    assert_eq!(journal_of(&store, "c/_default/s1").imports[0].state, crate::journal::State::Failed);
    let r = load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    assert_eq!((r.imported, milvus.stored_rows("c", None).unwrap()), (2, 7));

    for (bound, seen) in [(1, 1), (0, 2)] {
        let store = dumped();
        let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
        let c = plan_load(&store, &milvus, &LoadOptions { imports_in_flight: bound, ..opts() }).unwrap().collections.remove(0);
        load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
        assert_eq!(milvus.max_in_flight.get(), seen, "bound {bound}");
    }
}

/// Finding 4: rows imported twice: count(*) and the stored entities both see them (queries by
/// id show one copy).
#[test]
fn verify_sees_rows_imported_twice() {
    let store = dumped();
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    {
        let mut cols = milvus.collections.borrow_mut();
        let rows = cols.get_mut("c").unwrap().1.get_mut("a_b").unwrap();
        let again = rows.clone();
        rows.extend(again);
    }
    assert_eq!(milvus.count_rows("c", None).unwrap(), 10);
    let v = verify_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    assert!(!v.ok());
    let problems = v.partitions[1].problems.join("\n");
    assert!(problems.contains("6 rows in Milvus, 3 live rows"), "{problems}");
    assert!(problems.contains("Milvus stores 6 entities") && problems.contains("imported twice"), "{problems}");
}

/// Finding 9: samples cover every part of a split segment; a missing part plus a duplicated part
/// of the same size is caught.
#[test]
fn verify_samples_every_part_of_a_split_segment() {
    let (store, plan) = source();
    dump(&store, &plan, &DumpOptions { max_group_bytes: 32, ..Default::default() });
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    let v = verify_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.partitions[0].sampled, 4, "both parts of s1 sampled");
    {
        // Part 1 (ids 103, 105) lost, part 0 (ids 100, 102) imported twice.
        let mut cols = milvus.collections.borrow_mut();
        let rows = cols.get_mut("c").unwrap().1.get_mut("_default").unwrap();
        rows.truncate(2);
        let again = rows.clone();
        rows.extend(again);
    }
    let v = verify_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    let problems = v.partitions[0].problems.join("\n");
    assert!(problems.contains("row 3 (id 103): it is missing") && problems.contains("row 5 (id 105): it is missing"), "{problems}");
}

/// Finding 9: an id deleted in 1.x and inserted again with the same vector is no "deleted row
/// present"; under keep-all a repeated id is no "vector differs".
#[test]
fn verify_knows_reinserted_and_repeated_ids() {
    let (store, mut plan) = source();
    // s3: id 101 again (deleted in s1 row 1), same vector; and id 200 again (s2 row 0) with
    // another vector.
    let v: Vec<u8> = [101f32, 0.5, 7.0, 7.0].iter().flat_map(|f| f.to_le_bytes()).collect();
    let ids: Vec<u8> = [101i64, 200].iter().flat_map(|i| i.to_le_bytes()).collect();
    store.put(Role::Source, "c/s3/s3.rv", counted(v));
    store.put(Role::Source, "c/s3/s3.uid", counted(ids));
    store.put(Role::Source, "c/s3/deleted_docs", counted(vec![]));
    let mut s3 = plan.units[0].clone();
    (s3.segment_id, s3.rows, s3.output_dir) = ("s3".into(), 2, "c/_default/s3".into());
    plan.units.push(s3);
    plan.collections[0].partitions[0].rows += 2;
    dump(&store, &plan, &DumpOptions::default());
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    let v = verify_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    let problems: Vec<String> = v.partitions.iter().flat_map(|p| p.problems.clone()).collect();
    // count(*) sees 8 distinct ids of 9 rows, as 2.3.5 would: that mismatch is real and reported,
    // but no row is blamed wrongly.
    assert!(problems.iter().all(|p| !p.contains("deleted row") && !p.contains("differs")), "{problems:?}");
    assert!(v.partitions[0].deleted_checked >= 1 && v.partitions[1].sampled == 3);
}

/// Finding 1 (verify side): Milvus is checked against the 1.x meta's row counts too, a fact the
/// decoder did not produce.
#[test]
fn verify_checks_milvus_against_the_meta_row_counts() {
    let store = dumped();
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    load_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    // As if the decoder had (wrongly) deleted s2's last row: manifest and Milvus agree on 2
    // rows, the meta says 3 are live.
    let mut m: serde_json::Value = serde_json::from_slice(&store.get(Role::Target, "manifest.json").unwrap()).unwrap();
    m["collections"][0]["partitions"][1]["rows"] = 2.into();
    m["collections"][0]["partitions"][1]["segments"][0]["rows"] = 2.into();
    m["collections"][0]["partitions"][1]["segments"][0]["deleted"] = 1.into();
    store.put(Role::Target, "manifest.json", serde_json::to_vec(&m).unwrap());
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    assert_eq!(c.partitions[1].meta_rows, Some(3));
    milvus.collections.borrow_mut().get_mut("c").unwrap().1.get_mut("a_b").unwrap().pop();
    let v = verify_collection(&store, &milvus, &MemReport::default(), &c).unwrap();
    let problems = v.partitions[1].problems.join("\n");
    assert!(problems.contains("2 rows in Milvus, but the 1.x meta's row_count says at least 3"), "{problems}");
}

/// Workers of one plan load the same collection at once: a creation that loses the race to
/// another worker's is fine when the schema matches.
#[test]
fn a_collection_or_partition_created_by_another_worker_meanwhile_is_used() {
    let store = dumped();
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    let c = plan_load(&store, &milvus, &opts()).unwrap().collections.remove(0);
    assert!(!c.exists);
    // "Another worker" creates both after this one planned.
    create_c(&milvus, 2);
    milvus.create_partition("c", "a_b").unwrap();
    let racing = Tweaked { racing: true, ..Tweaked::new(&milvus) };
    let r = load_collection(&store, &racing, &MemReport::default(), &c).unwrap();
    assert_eq!((r.imported, milvus.stored_rows("c", None).unwrap()), (2, 7));
}

#[path = "pack_tests.rs"]
mod pack_tests;
