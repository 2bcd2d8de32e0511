//! Loading a dump into Milvus 2.x: plan (check the target first), then per collection create
//! what is missing and import every file group exactly once, as the journal records.

use crate::error::{Error, Result};
use crate::index::{map_index, IndexMode, IndexSpec, Version};
use crate::io::{FieldType, ImportState, ImportTask, IndexInfo, Level, Milvus, NewCollection, Report, Store};
use crate::journal::{self, Entry, State};
use crate::manifest::{read_manifest, CollectionEntry, Manifest};
use crate::meta::VectorKind;
use crate::names::{self, DEFAULT_PARTITION};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExists {
    Fail,
    Append,
    Skip,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    pub collections: Vec<String>,
    pub index_mode: IndexMode,
    pub load_after: bool,
    /// 1.x name -> 2.x name.
    pub renames: Vec<(String, String)>,
    pub shards: u32,
    pub consistency: String,
    /// Empty: one naming the 1.x source.
    pub description: String,
    pub on_exists: OnExists,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            collections: vec![],
            index_mode: IndexMode::Keep,
            load_after: true,
            renames: vec![],
            shards: 0,
            consistency: "Bounded".into(),
            description: String::new(),
            on_exists: OnExists::Append,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileGroup {
    pub segment_id: String,
    pub files: Vec<String>,
    pub rows: u64,
    /// Segment rows the dump's bad-data policy dropped.
    pub dropped_rows: Vec<u64>,
    /// The files' CRC-32C (hex) from the manifest, in the order of `files`: the journal keeps
    /// them, so a re-run can tell when the dump changed under an import it already did.
    pub checksums: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartitionLoad {
    pub tag: String,
    pub name: String,
    pub table_id: String,
    pub rows: u64,
    pub groups: Vec<FileGroup>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CollectionLoad {
    /// The 2.x name.
    pub name: String,
    /// The 1.x name.
    pub source_name: String,
    pub shards: u32,
    pub consistency: String,
    pub description: String,
    pub vector: VectorKind,
    pub dim: u32,
    pub metric: u32,
    pub id_field: String,
    pub vector_field: String,
    pub exists: bool,
    pub index: Option<IndexSpec>,
    pub load_after: bool,
    pub partitions: Vec<PartitionLoad>,
}

impl CollectionLoad {
    pub fn rows(&self) -> u64 {
        self.partitions.iter().map(|p| p.rows).sum()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    pub collections: Vec<CollectionLoad>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadReport {
    pub imported: u32,
    pub skipped: u32,
    pub rows: u64,
    /// Rows imported by this run per 2.x partition (every planned partition listed).
    pub partition_rows: Vec<(String, u64)>,
}

fn vector_kind(c: &CollectionEntry) -> Result<VectorKind> {
    match c.vector_type.as_str() {
        "float" => Ok(VectorKind::Float),
        "binary" => Ok(VectorKind::Binary),
        v => Err(Error::invalid("manifest.json", None, format!("collection {:?}: unknown vectorType {v:?}", c.name))),
    }
}

/// Why an existing collection cannot receive this data; empty when it can.
fn schema_problems(info: &crate::io::CollectionInfo, c: &CollectionLoad) -> Vec<String> {
    let mut problems = Vec::new();
    let want_vec = match c.vector {
        VectorKind::Float => FieldType::FloatVector,
        VectorKind::Binary => FieldType::BinaryVector,
    };
    match info.fields.iter().find(|f| f.name == c.id_field) {
        None => problems.push(format!("it has no field {:?}", c.id_field)),
        Some(f) if f.field_type != FieldType::Int64 || !f.is_primary => {
            problems.push(format!("field {:?} is not an Int64 primary key", c.id_field))
        }
        Some(f) if f.auto_id => problems.push(format!("field {:?} generates its ids (autoID), the 1.x ids would be lost", c.id_field)),
        Some(_) => {}
    }
    match info.fields.iter().find(|f| f.name == c.vector_field) {
        None => problems.push(format!("it has no field {:?}", c.vector_field)),
        Some(f) if f.field_type != want_vec => {
            problems.push(format!("field {:?} is {:?}, the 1.x collection has {} vectors", c.vector_field, f.field_type, c.vector.name()))
        }
        Some(f) if f.dim != Some(c.dim) => problems.push(format!(
            "field {:?} has dim {}, the 1.x collection has dim {}",
            c.vector_field,
            f.dim.map_or("?".to_string(), |d| d.to_string()),
            c.dim
        )),
        Some(_) => {}
    }
    for f in info.fields.iter().filter(|f| f.name != c.id_field && f.name != c.vector_field) {
        problems.push(format!("it has another field {:?}, which the dump has no data for", f.name));
    }
    problems
}

pub fn plan_load(store: &impl Store, milvus: &impl Milvus, opts: &LoadOptions) -> Result<LoadPlan> {
    let manifest = read_manifest(store)?;
    let version = Version::parse(&milvus.server_version()?);
    let (plan, problems) = map_collections(&manifest, Some(milvus), version, opts)?;
    if !problems.is_empty() {
        return Err(Error::Unsupported(format!("{}. Nothing was imported.", problems.join(". "))));
    }
    Ok(plan)
}

/// The 2.x side of every collection of a manifest (a dump's, or one planned from the meta):
/// names, partitions, index, and, when the target is known, whether it exists and matches.
/// Returns the plan and what blocks it.
pub fn map_collections<M: Milvus>(
    manifest: &Manifest,
    milvus: Option<&M>,
    version: Version,
    opts: &LoadOptions,
) -> Result<(LoadPlan, Vec<String>)> {
    let known: Vec<&str> = manifest.collections.iter().map(|c| c.name.as_str()).collect();
    names::check_selection(&opts.collections, &known, "the dump's manifest")?;
    let mut plan = LoadPlan { collections: vec![], warnings: vec![] };
    let mut problems = Vec::new();
    for (from, _) in &opts.renames {
        if !manifest.collections.iter().any(|c| &c.name == from) {
            problems.push(format!("rename of {from:?}: no such collection in the dump"));
        }
    }
    let mut taken = std::collections::BTreeMap::new();
    for c in manifest.collections.iter().filter(|c| opts.collections.is_empty() || opts.collections.contains(&c.name)) {
        let target = opts.renames.iter().find(|(from, _)| from == &c.name).map_or(c.name.clone(), |(_, to)| to.clone());
        if !names::is_valid(&target) {
            problems.push(format!("collection {:?}: {target:?} is not a valid 2.x collection name (rename it with migration.rename)", c.name));
            continue;
        }
        if let Some(other) = taken.insert(target.clone(), c.name.clone()) {
            problems.push(format!("collections {other:?} and {:?} would both become {target:?}", c.name));
            continue;
        }
        let tags: Vec<&str> = c.partitions.iter().map(|p| p.tag.as_str()).collect();
        let mapped = names::partition_names(&tags);
        let mut partitions = Vec::new();
        for (p, name) in c.partitions.iter().zip(mapped) {
            if !p.tag.is_empty() && p.tag != name {
                plan.warnings.push(format!("collection {:?}: partition tag {:?} becomes 2.x partition {name:?}", c.name, p.tag));
            }
            let mut groups = Vec::new();
            for s in p.segments.iter().filter(|s| !s.files.is_empty()) {
                let group = |files: Vec<&crate::manifest::FileEntry>, rows| FileGroup {
                    segment_id: s.segment.clone(),
                    files: files.iter().map(|f| f.path.clone()).collect(),
                    checksums: files.iter().map(|f| f.crc32c.clone()).collect(),
                    rows,
                    dropped_rows: s.dropped_rows.clone(),
                };
                if s.groups.is_empty() {
                    groups.push(group(s.files.iter().collect(), s.rows));
                }
                for g in &s.groups {
                    groups.push(group(s.files.iter().filter(|f| f.path.rsplit_once('/').map(|x| x.0) == Some(g.dir.as_str())).collect(), g.rows));
                }
            }
            partitions.push(PartitionLoad { tag: p.tag.clone(), name, table_id: p.table_id.clone(), rows: p.rows, groups });
        }
        let vector = vector_kind(c)?;
        let (index, index_warnings) = map_index(c.engine_type, &c.index_params, c.metric, vector, opts.index_mode, version)?;
        plan.warnings.extend(index_warnings.into_iter().map(|w| format!("collection {:?}: {w}", c.name)));
        let mut load = CollectionLoad {
            name: target.clone(),
            source_name: c.name.clone(),
            shards: opts.shards,
            consistency: opts.consistency.clone(),
            description: opts.description.clone(),
            vector,
            dim: c.dim,
            metric: c.metric,
            id_field: manifest.id_field.clone(),
            vector_field: manifest.vector_field.clone(),
            exists: false,
            index,
            load_after: opts.load_after,
            partitions,
        };
        if let Some(info) = milvus.map(|m| m.describe_collection(&target)).transpose()?.flatten() {
            match opts.on_exists {
                OnExists::Fail => {
                    problems.push(format!("collection {target:?} already exists (migration.onExists: fail)"));
                    continue;
                }
                OnExists::Skip => {
                    plan.warnings.push(format!("collection {target:?} already exists; skipped (migration.onExists: skip)"));
                    continue;
                }
                OnExists::Append => {}
            }
            let p = schema_problems(&info, &load);
            if p.is_empty() {
                load.exists = true;
            } else {
                problems.push(format!("existing collection {target:?} does not match: {}", p.join("; ")));
            }
        }
        plan.collections.push(load);
    }
    Ok((plan, problems))
}

fn description(c: &CollectionLoad) -> String {
    if !c.description.is_empty() {
        return c.description.clone();
    }
    format!(
        "Migrated from Milvus 1.x collection {:?} ({} vectors, dim {}, 1.x metric_type {}) by milvus-migration",
        c.source_name,
        c.vector.name(),
        c.dim,
        c.metric
    )
}

pub fn load_collection(store: &impl Store, milvus: &impl Milvus, report: &impl Report, c: &CollectionLoad) -> Result<LoadReport> {
    let existing = milvus.describe_collection(&c.name)?;
    let partitions = match existing {
        Some(info) => info.partitions,
        None => {
            milvus.create_collection(&NewCollection {
                name: c.name.clone(),
                description: description(c),
                id_field: c.id_field.clone(),
                vector_field: c.vector_field.clone(),
                binary: c.vector == VectorKind::Binary,
                dim: c.dim,
                shards: c.shards,
                consistency: c.consistency.clone(),
            })?;
            report.log(Level::Info, &format!("created collection {:?}", c.name));
            vec![DEFAULT_PARTITION.to_string()]
        }
    };
    for p in c.partitions.iter().filter(|p| p.name != DEFAULT_PARTITION && !partitions.contains(&p.name)) {
        milvus.create_partition(&c.name, &p.name)?;
        report.log(Level::Info, &format!("created partition {:?} of {:?}", p.name, c.name));
    }

    let mut out = LoadReport { partition_rows: c.partitions.iter().map(|p| (p.name.clone(), 0)).collect(), ..Default::default() };
    let mut waiting = Vec::new();
    for p in &c.partitions {
        for g in &p.groups {
            let jpath = journal::path_for(&g.files[0]);
            let entry = |task, state| journal_entry(c, p, g, task, state);
            let earlier = journal::read(store, &jpath)?;
            if let Some(e) = earlier.as_ref().filter(|e| e.state != State::Failed && !e.checksums.is_empty() && e.checksums != g.checksums) {
                return Err(Error::Unsupported(format!(
                    "segment {}: the dump changed since an earlier run imported it (task {}, journal {jpath}): its files now have \
                     other checksums, and importing them again would duplicate rows. Load into a new collection (migration.rename), \
                     or drop {:?} and delete the journal to start over",
                    g.segment_id, e.task, c.name
                )));
            }
            match earlier {
                Some(e) if e.state == State::Completed => {
                    out.skipped += 1;
                    continue;
                }
                Some(e) if e.state == State::Submitted => {
                    report.log(Level::Info, &format!("segment {}: waiting on import task {} from an earlier run", g.segment_id, e.task));
                    waiting.push((p, g, jpath, e.task));
                    continue;
                }
                Some(e) if e.state == State::Submitting => {
                    if let Some(task) = submitted_earlier(milvus, &c.name, g)? {
                        report.log(Level::Info, &format!("segment {}: an earlier run's import reached the server as task {task}; waiting on it", g.segment_id));
                        journal::write(store, &jpath, &entry(task, State::Submitted))?;
                        waiting.push((p, g, jpath, task));
                        continue;
                    }
                }
                _ => {}
            }
            journal::write(store, &jpath, &entry(0, State::Submitting))?;
            let task = milvus.import_files(&c.name, &p.name, &g.files)?;
            journal::write(store, &jpath, &entry(task, State::Submitted))?;
            waiting.push((p, g, jpath, task));
        }
    }
    let mut failures = Vec::new();
    for (p, g, jpath, task) in waiting {
        let outcome = milvus.await_import(task)?;
        let state = if outcome.completed { State::Completed } else { State::Failed };
        let mut entry = Entry { rows: outcome.rows, reason: outcome.reason.clone(), ..journal_entry(c, p, g, task, state) };
        if outcome.completed && outcome.rows != 0 && outcome.rows != g.rows {
            entry.reason = format!("server reports {} rows, the dump has {}", outcome.rows, g.rows);
            failures.push(format!("segment {} (task {task}): {}", g.segment_id, entry.reason));
        } else if !outcome.completed {
            failures.push(format!("segment {} (task {task}) failed on the server: {}", g.segment_id, outcome.reason));
        }
        journal::write(store, &jpath, &entry)?;
        if outcome.completed {
            out.imported += 1;
            out.rows += g.rows;
            if let Some(pr) = out.partition_rows.iter_mut().find(|(n, _)| *n == p.name) {
                pr.1 += g.rows;
            }
            report.progress(g.rows, 0);
        }
    }
    milvus.flush(&c.name)?;
    if !failures.is_empty() {
        return Err(Error::Remote { code: 0, reason: format!("collection {:?}: {}", c.name, failures.join("; ")) });
    }
    if let Some(spec) = &c.index {
        let existing = milvus.describe_indexes(&c.name)?;
        match existing.iter().find(|i| i.field == c.vector_field) {
            Some(i) => report.log(Level::Info, &format!("{:?} already has a {} index; left as it is", c.name, i.index_type)),
            None => {
                let index = IndexInfo {
                    field: c.vector_field.clone(),
                    index_type: spec.index_type.clone(),
                    metric: spec.metric.clone(),
                    params: spec.params.clone(),
                };
                milvus.create_index(&c.name, &index)?;
                report.log(Level::Info, &format!("built {} ({}) {} on {:?}", spec.index_type, spec.metric, spec.params, c.name));
            }
        }
    }
    if c.load_after {
        if c.index.is_some() || !milvus.describe_indexes(&c.name)?.is_empty() {
            milvus.load(&c.name)?;
            report.log(Level::Info, &format!("loaded {:?}", c.name));
        } else {
            report.log(Level::Warn, &format!("{:?} has no index, so it was not loaded", c.name));
        }
    }
    Ok(out)
}

/// The journal entry of group `g` in `state` (rows as dumped, no reason yet).
fn journal_entry(c: &CollectionLoad, p: &PartitionLoad, g: &FileGroup, task: i64, state: State) -> Entry {
    Entry {
        collection: c.name.clone(),
        partition: p.name.clone(),
        files: g.files.clone(),
        checksums: g.checksums.clone(),
        task,
        state,
        rows: g.rows,
        reason: String::new(),
    }
}

/// The task of an import of `g` that an interrupted run submitted without recording its id: a
/// task the server remembers with exactly these files that did not fail. None when there is
/// none (the run stopped before the server took it, or the server failed it).
fn submitted_earlier(milvus: &impl Milvus, collection: &str, g: &FileGroup) -> Result<Option<i64>> {
    let mut want = g.files.clone();
    want.sort();
    let tasks = milvus.list_imports(collection)?;
    let same = |t: &&ImportTask| {
        t.files.as_ref().is_some_and(|f| {
            let mut f = f.clone();
            f.sort();
            f == want
        })
    };
    if let Some(t) = tasks.iter().filter(same).filter(|t| t.state != ImportState::Failed).max_by_key(|t| t.id) {
        return Ok(Some(t.id));
    }
    if tasks.iter().any(|t| t.files.is_none()) {
        return Err(Error::Unsupported(format!(
            "segment {}: an earlier run was stopped while submitting its import, and this server does not say which \
             files its import tasks read, so whether that import ran cannot be told. Check the row count of {collection:?}; \
             if the segment's {} rows are missing, delete its journal entry {} and run load again",
            g.segment_id,
            g.rows,
            journal::path_for(&g.files[0])
        )));
    }
    Ok(None)
}

/// Deletes a verified collection's staged npy files; the manifest and journal stay.
pub fn cleanup_collection(store: &impl Store, report: &impl Report, c: &CollectionLoad) -> Result<u32> {
    let mut n = 0;
    for g in c.partitions.iter().flat_map(|p| &p.groups) {
        for f in &g.files {
            store.delete(crate::io::Role::Target, f)?;
            n += 1;
        }
    }
    report.log(Level::Info, &format!("deleted {n} staged file(s) of {:?}", c.name));
    Ok(n)
}
