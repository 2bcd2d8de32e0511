//! Loading a dump into Milvus 2.x: plan (check the target first), then per collection create
//! what is missing and import every file group exactly once, as the journal records.

use crate::error::{Error, Result};
use crate::index::{map_index, IndexMode, IndexSpec, Version};
use std::collections::{BTreeMap, VecDeque};

use crate::io::{FieldType, ImportState, ImportTask, IndexInfo, Level, Milvus, NewCollection, Report, Role, Store};
use crate::journal::{self, Import, Scope, SegmentJournal, State};
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
    /// The target server and database as the host names them (`endpoint/database`): part of
    /// the journal's scope.
    pub target: String,
    /// Imports submitted and not yet finished, at most (0: no bound).
    pub imports_in_flight: u32,
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
            target: String::new(),
            imports_in_flight: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileGroup {
    pub segment_id: String,
    /// The segment's dump directory (its journal entry is named after it).
    pub segment_dir: String,
    pub files: Vec<String>,
    /// The files' sizes from the manifest, in the order of `files`.
    pub sizes: Vec<u64>,
    /// The files' CRC-32C (hex) from the manifest, in the order of `files`: checked before the
    /// import, and kept by the journal, so a re-run can tell when the dump changed under an
    /// import it already did.
    pub checksums: Vec<String>,
    pub rows: u64,
    /// The group's first row among the rows the dump wrote of the segment.
    pub first_row: u64,
    /// The segment as dumped: rows read, deleted, written (all groups).
    pub segment_rows_in: u64,
    pub segment_deleted: u64,
    pub segment_rows: u64,
    /// The segment's live rows according to the 1.x meta (`row_count`); none in older manifests.
    pub meta_rows: Option<u64>,
    /// Segment rows the dump's bad-data policy dropped.
    pub dropped_rows: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartitionLoad {
    pub tag: String,
    pub name: String,
    pub table_id: String,
    pub rows: u64,
    /// Live rows according to the 1.x meta less the rows the dump's policies dropped; none
    /// when the manifest does not say (older dumps).
    pub meta_rows: Option<u64>,
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
    /// The target server and database (journal scope).
    pub target: String,
    /// Imports of this collection in flight at most (0: no bound).
    pub imports_in_flight: u32,
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
                let mut first_row = 0;
                let mut group = |files: Vec<&crate::manifest::FileEntry>, rows| {
                    let g = FileGroup {
                        segment_id: s.segment.clone(),
                        segment_dir: s.dir.clone(),
                        files: files.iter().map(|f| f.path.clone()).collect(),
                        sizes: files.iter().map(|f| f.bytes).collect(),
                        checksums: files.iter().map(|f| f.crc32c.clone()).collect(),
                        rows,
                        first_row,
                        segment_rows_in: s.rows_in,
                        segment_deleted: s.deleted,
                        segment_rows: s.rows,
                        meta_rows: s.meta_rows,
                        dropped_rows: s.dropped_rows.clone(),
                    };
                    first_row += rows;
                    g
                };
                if s.groups.is_empty() {
                    groups.push(group(s.files.iter().collect(), s.rows));
                }
                for g in &s.groups {
                    groups.push(group(s.files.iter().filter(|f| f.path.rsplit_once('/').map(|x| x.0) == Some(g.dir.as_str())).collect(), g.rows));
                }
            }
            // The meta's view of the partition: its live rows less what the dump left out on
            // purpose (bad data, unpaired rows, older copies of repeated ids).
            let meta_rows = p.segments.iter().try_fold(0u64, |sum, s| {
                let left_out = s.rows_in.saturating_sub(s.deleted).saturating_sub(s.rows);
                Some(sum + s.meta_rows?.saturating_sub(left_out))
            });
            partitions.push(PartitionLoad { tag: p.tag.clone(), name, table_id: p.table_id.clone(), rows: p.rows, meta_rows, groups });
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
            target: opts.target.clone(),
            imports_in_flight: opts.imports_in_flight,
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
    let info = match existing {
        Some(info) => info,
        None => {
            let created = milvus.create_collection(&NewCollection {
                name: c.name.clone(),
                description: description(c),
                id_field: c.id_field.clone(),
                vector_field: c.vector_field.clone(),
                binary: c.vector == VectorKind::Binary,
                dim: c.dim,
                shards: c.shards,
                consistency: c.consistency.clone(),
            });
            // Another worker of the same plan may have created it meanwhile: fine when it
            // has the schema this load needs.
            let info = milvus.describe_collection(&c.name)?;
            match (created, info) {
                (Ok(()), Some(info)) => {
                    report.log(Level::Info, &format!("created collection {:?}", c.name));
                    info
                }
                (Err(_), Some(info)) if schema_problems(&info, c).is_empty() => info,
                (Err(e), _) => return Err(e),
                (Ok(()), None) => {
                    return Err(Error::Remote { code: 0, reason: format!("collection {:?} was created but the server does not describe it", c.name) })
                }
            }
        }
    };
    for p in c.partitions.iter().filter(|p| p.name != DEFAULT_PARTITION && !info.partitions.contains(&p.name)) {
        match milvus.create_partition(&c.name, &p.name) {
            Ok(()) => report.log(Level::Info, &format!("created partition {:?} of {:?}", p.name, c.name)),
            // Created by a concurrent worker?
            Err(e) => {
                if !milvus.describe_collection(&c.name)?.is_some_and(|i| i.partitions.contains(&p.name)) {
                    return Err(e);
                }
            }
        }
    }

    let mut run = Run {
        store,
        milvus,
        report,
        c,
        collection_id: info.id,
        journals: BTreeMap::new(),
        waiting: VecDeque::new(),
        failures: Vec::new(),
        out: LoadReport { partition_rows: c.partitions.iter().map(|p| (p.name.clone(), 0)).collect(), ..Default::default() },
    };
    for p in &c.partitions {
        for g in &p.groups {
            match run.decide(p, g)? {
                Next::Skip => run.out.skipped += 1,
                Next::Wait(task) => run.wait(p, g, task)?,
                Next::Import => {
                    run.check_files(g)?;
                    run.import(p, g)?;
                }
            }
        }
    }
    while let Some(w) = run.waiting.pop_front() {
        run.finish(w)?;
    }
    milvus.flush(&c.name)?;
    if !run.failures.is_empty() {
        return Err(Error::Remote { code: 0, reason: format!("collection {:?}: {}", c.name, run.failures.join("; ")) });
    }
    let out = run.out;
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

/// What to do with a file group, as the journal says.
enum Next {
    /// Its rows are in the target already.
    Skip,
    /// An earlier run's task is importing it.
    Wait(i64),
    Import,
}

/// An import in flight.
struct Waiting<'a> {
    p: &'a PartitionLoad,
    g: &'a FileGroup,
    task: i64,
}

/// One collection's load: the journals read so far and the imports in flight.
struct Run<'a, S, M, R> {
    store: &'a S,
    milvus: &'a M,
    report: &'a R,
    c: &'a CollectionLoad,
    collection_id: i64,
    /// Journal path -> entry, as last written.
    journals: BTreeMap<String, SegmentJournal>,
    waiting: VecDeque<Waiting<'a>>,
    failures: Vec<String>,
    out: LoadReport,
}

impl<'a, S: Store, M: Milvus, R: Report> Run<'a, S, M, R> {
    fn scope(&self, p: &PartitionLoad) -> Scope {
        Scope { target: self.c.target.clone(), collection: self.c.name.clone(), collection_id: self.collection_id, partition: p.name.clone() }
    }

    /// The journal of `g`'s segment in this target (read once, then kept), and its path.
    fn journal(&mut self, p: &PartitionLoad, g: &FileGroup) -> Result<(String, &mut SegmentJournal)> {
        let scope = self.scope(p);
        let path = journal::path(&scope, &g.segment_dir);
        if !self.journals.contains_key(&path) {
            let j = match journal::read(self.store, &path, &scope)? {
                Some(j) => j,
                None => {
                    let dir = g.files[0].rsplit_once('/').map_or("", |d| d.0);
                    let legacy = journal::legacy_path(dir);
                    if self.store.stat(Role::Target, &legacy)?.is_some() {
                        return Err(Error::Unsupported(format!(
                            "segment {}: found journal entry {legacy}, written by an older version that did not record which Milvus, \
                             database and collection it imported into, so whether these rows are in {:?} cannot be told. Finish this \
                             load with the version that started it, or drop the collection and delete the dump's _journal directory \
                             to start over",
                            g.segment_id, self.c.name
                        )));
                    }
                    SegmentJournal::new(&scope, &g.segment_id, g.segment_rows_in, g.segment_deleted, g.segment_rows)
                }
            };
            self.journals.insert(path.clone(), j);
        }
        let j = self.journals.get_mut(&path).expect("just inserted");
        Ok((path, j))
    }

    fn save(&mut self, path: &str) -> Result<()> {
        journal::write(self.store, path, &self.journals[path])
    }

    fn decide(&mut self, p: &PartitionLoad, g: &FileGroup) -> Result<Next> {
        let collection = self.c.name.clone();
        let (path, j) = self.journal(p, g)?;
        let j = j.clone();
        let (first, end) = (g.first_row, g.first_row + g.rows);
        let live: Vec<&Import> = j.imports.iter().filter(|i| i.state != State::Failed).collect();
        let changed = |why: String| {
            Error::Unsupported(format!(
                "segment {}: the dump changed since an earlier run imported rows of it into {collection:?} (journal {path}): {why}. \
                 Importing it again could duplicate rows or lose them. Load it into a new collection (migration.rename), or drop \
                 {collection:?} and load again",
                g.segment_id
            ))
        };
        let facts = (g.segment_rows_in, g.segment_deleted, g.segment_rows);
        if live.is_empty() && (j.rows_in, j.deleted, j.rows) != facts {
            // Nothing of the segment is in the target: the journal describes the dump as it is now.
            let cached = self.journals.get_mut(&path).expect("read above");
            (cached.rows_in, cached.deleted, cached.rows) = facts;
        } else if (j.rows_in, j.deleted, j.rows) != facts {
            return Err(changed(format!(
                "then it had {} rows, {} deleted, {} written; now {}, {}, {}",
                j.rows_in, j.deleted, j.rows, g.segment_rows_in, g.segment_deleted, g.segment_rows
            )));
        }
        let overlapping: Vec<&Import> = live.iter().copied().filter(|i| i.overlaps(first, end)).collect();
        if let Some(m) = overlapping.iter().find(|i| i.state == State::Mismatched) {
            return Err(Error::Unsupported(format!(
                "segment {}: an earlier import of its rows {}..{} (task {}) completed with {} rows where the dump has {} \
                 (journal {path}), so {collection:?} holds an unknown part of them: importing again would duplicate rows and \
                 skipping would lose them. Load into a new collection (migration.rename), or drop {collection:?} and load again",
                g.segment_id,
                m.first_row,
                m.end(),
                m.task,
                m.reported_rows,
                m.rows
            )));
        }
        let same = overlapping.iter().find(|i| i.first_row == first && i.rows == g.rows && i.files == g.files).copied();
        if let Some(i) = same {
            if !i.checksums.is_empty() && i.checksums != g.checksums {
                return Err(changed(format!("its files now have other checksums than when task {} imported them", i.task)));
            }
            return match i.state {
                State::Completed => Ok(Next::Skip),
                State::Submitted => {
                    self.report.log(Level::Info, &format!("segment {}: waiting on import task {} from an earlier run", g.segment_id, i.task));
                    Ok(Next::Wait(i.task))
                }
                State::Submitting => match submitted_earlier(self.milvus, &collection, g, &path)? {
                    Some(task) => {
                        self.report.log(Level::Info, &format!("segment {}: an earlier run's import reached the server as task {task}; waiting on it", g.segment_id));
                        self.record(p, g, task, State::Submitted, 0, String::new())?;
                        Ok(Next::Wait(task))
                    }
                    None => Ok(Next::Import),
                },
                State::Failed | State::Mismatched => unreachable!("filtered above"),
            };
        }
        if overlapping.is_empty() {
            return Ok(Next::Import);
        }
        if overlapping.iter().all(|i| i.state == State::Completed) && j.covered(first, end) {
            // Imported before in another split (migration.maxGroupMiB changed since).
            return Ok(Next::Skip);
        }
        let earlier: Vec<String> = overlapping.iter().map(|i| format!("rows {}..{} as {} (task {}, {:?})", i.first_row, i.end(), i.dir, i.task, i.state)).collect();
        Err(Error::Unsupported(format!(
            "segment {}: its rows {first}..{end} (group {}) overlap what an earlier run imported in another split: {} (journal {path}). \
             migration.maxGroupMiB changed while that import was unfinished; set it back, dump again and let the load finish, then change it",
            g.segment_id,
            g.files[0].rsplit_once('/').map_or("", |d| d.0),
            earlier.join(", ")
        )))
    }

    /// The group's files must be what the manifest says (a re-dump that stopped half way may
    /// have rewritten some).
    fn check_files(&self, g: &FileGroup) -> Result<()> {
        for (k, f) in g.files.iter().enumerate() {
            let w = self.store.checksum(Role::Target, f)?;
            let crc = format!("{:08x}", w.crc32c);
            let (size, want) = (g.sizes.get(k).copied(), g.checksums.get(k));
            if size.is_some_and(|s| s != w.bytes) || want.is_some_and(|c| *c != crc) {
                return Err(Error::invalid(
                    f.as_str(),
                    None,
                    format!(
                        "{} bytes with CRC-32C {crc}, but the dump's manifest says {} bytes with CRC-32C {}: the file changed after \
                         the manifest was written (an interrupted or concurrent dump?). Run dump again; nothing of this group was imported",
                        w.bytes,
                        size.map_or("?".into(), |s| s.to_string()),
                        want.map_or("?", |c| c.as_str())
                    ),
                ));
            }
        }
        Ok(())
    }

    fn record(&mut self, p: &PartitionLoad, g: &FileGroup, task: i64, state: State, reported_rows: u64, reason: String) -> Result<()> {
        let dir = g.files[0].rsplit_once('/').map_or("", |d| d.0).to_string();
        let import = Import {
            dir,
            first_row: g.first_row,
            rows: g.rows,
            files: g.files.clone(),
            checksums: g.checksums.clone(),
            task,
            state,
            reported_rows,
            reason,
        };
        let (path, j) = self.journal(p, g)?;
        j.record(import);
        self.save(&path)
    }

    /// Submits the import of `g` once there is room in flight.
    fn import(&mut self, p: &'a PartitionLoad, g: &'a FileGroup) -> Result<()> {
        self.make_room()?;
        self.record(p, g, 0, State::Submitting, 0, String::new())?;
        match self.milvus.import_files(&self.c.name, &p.name, &g.files) {
            Ok(task) => {
                self.record(p, g, task, State::Submitted, 0, String::new())?;
                self.waiting.push_back(Waiting { p, g, task });
                Ok(())
            }
            // The server answered no: nothing was imported, and the next run submits again.
            // (A lost reply is in doubt: the intent stays, and the next run asks the server.)
            Err(e) if is_refusal(&e) => {
                self.record(p, g, 0, State::Failed, 0, format!("refused: {e}"))?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn wait(&mut self, p: &'a PartitionLoad, g: &'a FileGroup, task: i64) -> Result<()> {
        self.make_room()?;
        self.waiting.push_back(Waiting { p, g, task });
        Ok(())
    }

    /// Waits for the oldest imports until fewer than the bound are in flight.
    fn make_room(&mut self) -> Result<()> {
        let bound = self.c.imports_in_flight as usize;
        while bound > 0 && self.waiting.len() >= bound {
            let w = self.waiting.pop_front().expect("non-empty");
            self.finish(w)?;
        }
        Ok(())
    }

    /// Waits for an import to end and records how: a completion with another row count than the
    /// dump's (0 included) is not a success.
    fn finish(&mut self, w: Waiting<'a>) -> Result<()> {
        let Waiting { p, g, task } = w;
        let outcome = self.milvus.await_import(task)?;
        let (state, reason) = if !outcome.completed {
            self.failures.push(format!("segment {} (task {task}) failed on the server: {}", g.segment_id, outcome.reason));
            (State::Failed, outcome.reason.clone())
        } else if outcome.rows != g.rows {
            let why = format!("the server reports {} rows imported, the dump has {}", outcome.rows, g.rows);
            self.failures.push(format!("segment {} (task {task}): {why}; the collection now holds an unknown part of these rows", g.segment_id));
            (State::Mismatched, why)
        } else {
            (State::Completed, String::new())
        };
        self.record(p, g, task, state, outcome.rows, reason)?;
        if state == State::Completed {
            self.out.imported += 1;
            self.out.rows += g.rows;
            if let Some(pr) = self.out.partition_rows.iter_mut().find(|(n, _)| *n == p.name) {
                pr.1 += g.rows;
            }
            self.report.progress(g.rows, 0);
        }
        Ok(())
    }
}

/// Whether an error from `import-files` is the server's answer (nothing was imported) rather
/// than a lost reply (the import may have been taken).
fn is_refusal(e: &Error) -> bool {
    !matches!(e, Error::Unavailable(_) | Error::Other(_))
}

/// The task of an import of `g` that an interrupted run submitted without recording its id: a
/// task the server remembers with exactly these files that did not fail. None when there is
/// none (the run stopped before the server took it, or the server failed it).
fn submitted_earlier(milvus: &impl Milvus, collection: &str, g: &FileGroup, journal_path: &str) -> Result<Option<i64>> {
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
             if the segment's {} rows are missing, delete its journal entry {journal_path} and run load again",
            g.segment_id, g.rows,
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
