//! Load and verify against an in-memory Milvus (unit tests only; the real server is exercised by
//! the end-to-end tests).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use crate::dump::dump_segment;
use crate::error::{Error, Result};
use crate::io::memory::{MemReport, MemStore};
use crate::io::*;
use crate::load::{load_collection, plan_load, LoadOptions};
use crate::manifest::write_manifest;
use crate::meta::VectorKind;
use crate::plan::{CollectionPlan, DumpOptions, DumpPlan, PartitionPlan, SegmentUnit};
use crate::verify::verify_collection;

fn opts() -> LoadOptions {
    LoadOptions::default()
}

#[derive(Default)]
struct FakeMilvus {
    store: MemStore,
    collections: RefCell<BTreeMap<String, (NewCollection, BTreeMap<String, Vec<Entity>>)>>,
    imports: Cell<u32>,
    fail_next: Cell<bool>,
    failed: RefCell<Vec<i64>>,
    indexes: RefCell<Vec<IndexInfo>>,
    /// What `list_imports` answers (every import is recorded); `None` files as 2.4+ servers.
    tasks: RefCell<Vec<ImportTask>>,
    hide_files: Cell<bool>,
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
        for (id, v) in npy_body(&ids).chunks(8).zip(npy_body(&vecs).chunks(width)) {
            rows.push(Entity { id: i64::from_le_bytes(id.try_into().unwrap()), vector: v.to_vec() });
        }
        Ok(task)
    }
    fn await_import(&self, task: i64) -> Result<ImportOutcome> {
        let failed = self.failed.borrow().contains(&task);
        Ok(ImportOutcome { completed: !failed, rows: 0, reason: if failed { "disk quota".into() } else { String::new() } })
    }
    fn list_imports(&self, _: &str) -> Result<Vec<ImportTask>> {
        let hide = self.hide_files.get();
        Ok(self.tasks.borrow().iter().map(|t| ImportTask { files: if hide { None } else { t.files.clone() }, ..t.clone() }).collect())
    }
    fn flush(&self, _: &str) -> Result<()> {
        Ok(())
    }
    fn count_rows(&self, collection: &str, partition: Option<&str>) -> Result<u64> {
        let cols = self.collections.borrow();
        let parts = &cols[collection].1;
        Ok(parts.iter().filter(|(p, _)| partition.is_none_or(|x| x == p.as_str())).map(|(_, r)| r.len() as u64).sum())
    }
    fn get_entities(&self, collection: &str, _: &str, _: &str, ids: &[i64]) -> Result<Vec<Entity>> {
        let cols = self.collections.borrow();
        Ok(cols[collection].1.values().flatten().filter(|e| ids.contains(&e.id)).cloned().collect())
    }
}

fn counted(payload: Vec<u8>) -> Vec<u8> {
    let mut v = (payload.len() as u64).to_le_bytes().to_vec();
    v.extend(payload);
    v
}

/// A dumped collection "c" (dim 2): default partition segment "s1" (6 rows, rows 1 and 4
/// deleted) and partition "a b" (table "77") segment "s2" (3 rows).
fn dumped() -> MemStore {
    let store = MemStore::default();
    let seg = |table: &str, seg: &str, rows: u64, deleted: &[i32], first: i64| {
        let v: Vec<u8> = (0..rows).flat_map(|i| [first as f32 + i as f32, 0.5]).flat_map(f32::to_le_bytes).collect();
        let ids: Vec<u8> = (0..rows).flat_map(|i| (first + i as i64).to_le_bytes()).collect();
        store.put(Role::Source, &format!("{table}/{seg}/{seg}.rv"), counted(v));
        store.put(Role::Source, &format!("{table}/{seg}/{seg}.uid"), counted(ids));
        store.put(Role::Source, &format!("{table}/{seg}/deleted_docs"), counted(deleted.iter().flat_map(|d| d.to_le_bytes()).collect()));
    };
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
        warnings: vec![],
    };
    let opts = DumpOptions::default();
    let reports: Vec<_> = plan.units.iter().map(|u| dump_segment(&store, &MemReport::default(), u, &opts).unwrap()).collect();
    write_manifest(&store, &plan, &opts, &reports).unwrap();
    store
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

/// Rewinds every journal entry to `submitting`, as a run killed between submitting an import
/// and recording its task id leaves it.
fn rewind_journal(store: &MemStore) {
    for path in store.paths(Role::Target).into_iter().filter(|p| p.starts_with("_journal/")) {
        let mut e = crate::journal::read(store, &path).unwrap().unwrap();
        (e.state, e.task) = (crate::journal::State::Submitting, 0);
        crate::journal::write(store, &path, &e).unwrap();
    }
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
    let e = crate::journal::read(&store, "_journal/c/_default/s1.json").unwrap().unwrap();
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
    assert!(err.contains("whether that import ran cannot be told") && err.contains("_journal/c/_default/s1.json"), "{err}");
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
    assert!(err.contains("segment s1: the dump changed since an earlier run imported it") && err.contains("_journal/c/_default/s1.json"), "{err}");
    assert_eq!(milvus.imports.get(), 2, "nothing imported again");
}

#[test]
fn a_mismatched_existing_collection_stops_the_plan() {
    let store = dumped();
    let milvus = FakeMilvus { store: store.clone(), ..Default::default() };
    milvus
        .create_collection(&NewCollection {
            name: "c".into(),
            description: String::new(),
            id_field: "id".into(),
            vector_field: "data".into(),
            binary: false,
            dim: 3,
            shards: 0,
            consistency: "Bounded".into(),
        })
        .unwrap();
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
