//! Loading a dump into Milvus 2.x: plan (check the target first), then per collection create
//! what is missing and import every file group exactly once, as the journal records.
use crate::prelude::*;

use crate::error::{Error, Result};
use crate::index::{map_index, IndexMode, IndexSpec, Version};

use crate::imports::Run;
use crate::io::{FieldType, IndexInfo, Level, Milvus, NewCollection, Report, Store};
use crate::manifest::{read_manifest, CollectionEntry, Manifest};
use crate::meta::VectorKind;
use crate::dump::SegmentReport;
use crate::io::Written;
use crate::names::{self, DEFAULT_PARTITION};
use crate::plan::{DumpOptions, DumpPlan, PackPlan};

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
    pub load_mode: LoadMode,
}

/// How rows reach Milvus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadMode {
    /// Bulk import of the dump's files.
    #[default]
    Import,
    /// Insert over gRPC in batches of about this many bytes.
    Insert { batch_bytes: u64 },
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
            load_mode: LoadMode::Import,
        }
    }
}

/// One import: the npy files of a file group, holding rows of one segment, or of several
/// (a pack), one after the other.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileGroup {
    /// The group's directory.
    pub dir: String,
    /// The directory of the dump unit that wrote it (a segment's or a pack's): groups of one
    /// unit share journal entries.
    pub unit_dir: String,
    pub files: Vec<String>,
    /// The files' sizes from the manifest, in the order of `files`.
    pub sizes: Vec<u64>,
    /// The files' CRC-32C (hex) from the manifest, in the order of `files`: checked before the
    /// import, and kept by the journal, so a re-run can tell when the dump changed under an
    /// import it already did.
    pub checksums: Vec<String>,
    pub rows: u64,
    /// The segments whose rows it holds, in file order.
    pub members: Vec<GroupMember>,
}

/// The rows of one segment in a file group.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupMember {
    pub segment_id: String,
    /// The segment's dump directory (its journal entry is named after it).
    pub segment_dir: String,
    /// The first of its rows in the group, among the rows the dump wrote of the segment.
    pub first_row: u64,
    pub rows: u64,
    /// The segment as dumped: rows read, deleted, written (all groups).
    pub segment_rows_in: u64,
    pub segment_deleted: u64,
    pub segment_rows: u64,
    /// The segment's live rows according to the 1.x meta (`row_count`); none in older manifests.
    pub meta_rows: Option<u64>,
    /// Segment rows the dump's bad-data policy dropped.
    pub dropped_rows: Vec<u64>,
}

impl FileGroup {
    /// How messages name it: its segment, or its pack directory and segment count.
    pub fn label(&self) -> String {
        match self.members.as_slice() {
            [m] => format!("segment {}", m.segment_id),
            ms => format!("group {} ({} segments)", self.dir, ms.len()),
        }
    }
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
    pub load_mode: LoadMode,
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

/// The load plan of the units a dump has finished so far — `reports[k]` is set once unit k is
/// dumped, `pack_files[p]` once pack p is — so that `migrate` can import them while the dump
/// goes on. Checks the target as `plan_load` does; collections with nothing finished yet are
/// left out.
pub fn plan_early_load(
    milvus: &impl Milvus,
    plan: &DumpPlan,
    dopts: &DumpOptions,
    reports: &[Option<SegmentReport>],
    pack_files: &[Option<Vec<Written>>],
    opts: &LoadOptions,
) -> Result<LoadPlan> {
    if reports.len() != plan.units.len() || pack_files.len() != plan.packs.len() {
        return Err(Error::Other(format!(
            "early load needs a slot per unit and per pack: {} units, {} reports, {} packs, {} file lists",
            plan.units.len(),
            reports.len(),
            plan.packs.len(),
            pack_files.len()
        )));
    }
    // The finished part of the plan, as a plan of its own.
    let packed = plan.packed();
    let mut done = DumpPlan { collections: plan.collections.clone(), units: vec![], packs: vec![], warnings: vec![] };
    let (mut done_reports, mut done_files) = (Vec::new(), Vec::new());
    for (k, r) in reports.iter().enumerate() {
        if let (false, Some(r)) = (packed[k], r) {
            done.units.push(plan.units[k].clone());
            done_reports.push(r.clone());
        }
    }
    for (pk, files) in plan.packs.iter().zip(pack_files) {
        let Some(files) = files else { continue };
        let mut members = Vec::new();
        for &k in &pk.units {
            let r = reports[k as usize].clone().ok_or_else(|| Error::Other(format!("pack {}: a segment without its report", pk.output_dir)))?;
            members.push(done.units.len() as u32);
            done.units.push(plan.units[k as usize].clone());
            done_reports.push(r);
        }
        done.packs.push(PackPlan { output_dir: pk.output_dir.clone(), units: members });
        done_files.push(files.clone());
    }
    let manifest = crate::manifest::build(&done, dopts, &done_reports, &done_files)?;
    let version = Version::parse(&milvus.server_version()?);
    let (mut load, problems) = map_collections(&manifest, Some(milvus), version, opts)?;
    if !problems.is_empty() {
        return Err(Error::Unsupported(format!("{}. Nothing was imported.", problems.join(". "))));
    }
    load.collections.retain(|c| c.partitions.iter().any(|p| !p.groups.is_empty()));
    Ok(load)
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
    let mut taken = alloc::collections::BTreeMap::new();
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
            let groups = partition_groups(p);
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
            load_mode: opts.load_mode,
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

fn member(s: &crate::manifest::SegmentEntry, first_row: u64, rows: u64) -> GroupMember {
    GroupMember {
        segment_id: s.segment.clone(),
        segment_dir: s.dir.clone(),
        first_row,
        rows,
        segment_rows_in: s.rows_in,
        segment_deleted: s.deleted,
        segment_rows: s.rows,
        meta_rows: s.meta_rows,
        dropped_rows: s.dropped_rows.clone(),
    }
}

/// The files of `files` in directory `dir` (all of them when `dir` is None).
fn group_files(files: &[crate::manifest::FileEntry], dir: Option<&str>) -> Vec<crate::manifest::FileEntry> {
    files.iter().filter(|f| dir.is_none() || f.path.rsplit_once('/').map(|x| x.0) == dir).cloned().collect()
}

fn file_group(dir: &str, unit_dir: &str, files: Vec<crate::manifest::FileEntry>, rows: u64, members: Vec<GroupMember>) -> FileGroup {
    FileGroup {
        dir: dir.to_string(),
        unit_dir: unit_dir.to_string(),
        files: files.iter().map(|f| f.path.clone()).collect(),
        sizes: files.iter().map(|f| f.bytes).collect(),
        checksums: files.iter().map(|f| f.crc32c.clone()).collect(),
        rows,
        members,
    }
}

/// A partition's file groups: each segment's (one, or its parts), then each pack's, whose
/// groups take the pack's segments' rows in order.
fn partition_groups(p: &crate::manifest::PartitionEntry) -> Vec<FileGroup> {
    let mut groups = Vec::new();
    for s in p.segments.iter().filter(|s| !s.files.is_empty()) {
        if s.groups.is_empty() {
            groups.push(file_group(&s.dir, &s.dir, group_files(&s.files, None), s.rows, vec![member(s, 0, s.rows)]));
        }
        let mut first_row = 0;
        for g in &s.groups {
            groups.push(file_group(&g.dir, &s.dir, group_files(&s.files, Some(&g.dir)), g.rows, vec![member(s, first_row, g.rows)]));
            first_row += g.rows;
        }
    }
    for pk in p.packs.iter().filter(|pk| !pk.files.is_empty()) {
        // The pack's rows, segment after segment: (entry, first pack row, rows).
        let mut spans = Vec::new();
        let mut at = 0;
        for id in &pk.segments {
            if let Some(s) = p.segments.iter().find(|s| &s.segment == id) {
                spans.push((s, at, s.rows));
                at += s.rows;
            }
        }
        let mut start = 0;
        for g in &pk.groups {
            let end = start + g.rows;
            let members = spans
                .iter()
                .filter(|(_, a, n)| *n > 0 && *a < end && start < a + n)
                .map(|(s, a, n)| {
                    let from = start.max(*a);
                    member(s, from - a, end.min(a + n) - from)
                })
                .collect();
            groups.push(file_group(&g.dir, &pk.dir, group_files(&pk.files, Some(&g.dir)), g.rows, members));
            start = end;
        }
    }
    groups
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

    let (out, failures) = match c.load_mode {
        LoadMode::Import => {
            let mut run = Run::new(store, milvus, report, c, info.id);
            run.run()?;
            (run.out, run.failures)
        }
        LoadMode::Insert { batch_bytes } => (crate::inserts::insert_collection(store, milvus, report, c, info.id, batch_bytes)?, vec![]),
    };
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
