//! `manifest.json` at the target root: what a completed dump wrote, for `load` and `verify`
//! and for anyone checking the files (rows, bytes and CRC-32C per file).
use crate::prelude::*;

use serde::{Deserialize, Serialize};

use crate::dump::{FileGroups, SegmentReport};
use crate::error::{Error, Result};
use crate::io::{read_exact, Reader, Role, Store, Writer, Written};
use crate::paths;
use crate::plan::{DumpOptions, DumpPlan};

/// Version 2 adds packs (segments sharing file groups); a reader of version 1 must not see
/// their segments as empty.
pub const FORMAT: &str = "milvus-migration-rs/manifest/2";
const FORMAT_1: &str = "milvus-migration-rs/manifest/1";
/// A manifest larger than this is not one we wrote.
const MAX_MANIFEST_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: String,
    pub id_field: String,
    pub vector_field: String,
    pub rows: u64,
    pub collections: Vec<CollectionEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionEntry {
    pub name: String,
    pub vector_type: String,
    pub dim: u32,
    pub metric: u32,
    pub engine_type: u32,
    pub index_params: String,
    pub rows: u64,
    pub partitions: Vec<PartitionEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionEntry {
    /// Empty for the default partition.
    pub tag: String,
    pub table_id: String,
    pub rows: u64,
    pub segments: Vec<SegmentEntry>,
    /// Small segments dumped together (their entries have no files of their own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packs: Vec<PackEntry>,
}

/// The live rows of several segments of one partition, one segment after the other, in shared
/// file groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackEntry {
    pub dir: String,
    pub rows: u64,
    /// Its segments in order: the first one's rows come first.
    pub segments: Vec<String>,
    pub files: Vec<FileEntry>,
    /// The file groups (one import each).
    pub groups: Vec<GroupEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentEntry {
    pub segment: String,
    pub dir: String,
    pub rows_in: u64,
    pub deleted: u64,
    pub rows: u64,
    /// Live rows according to the 1.x meta (`TableFiles.row_count`): a fact the decoder did not
    /// produce, which `verify` checks Milvus against. Absent in manifests of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_rows: Option<u64>,
    pub files: Vec<FileEntry>,
    /// The file groups (one import each): one, or several when the segment was split.
    #[serde(default)]
    pub groups: Vec<GroupEntry>,
    /// Rows the bad-data policy dropped (segment row offsets), which verify does not expect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_rows: Vec<u64>,
    /// Deletions of rows outside the segment, ignored by the policy.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ignored_deletes: u64,
    /// The reject file of the segment (policy `reject`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects: Option<String>,
    /// The pack holding this segment's rows, when it was packed (`files` is then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupEntry {
    pub dir: String,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub crc32c: String,
}

fn file_entry(f: &Written) -> FileEntry {
    FileEntry { path: f.path.clone(), bytes: f.bytes, crc32c: format!("{:08x}", f.crc32c) }
}

fn group_entries(live: u64, row_bytes: u64, max_group_bytes: u64, dir: &str) -> Vec<GroupEntry> {
    let g = FileGroups::new(live, row_bytes, max_group_bytes, dir);
    (0..g.count).map(|k| GroupEntry { dir: g.dir(k), rows: g.rows(k) }).collect()
}

/// The manifest of a dump: `reports` in the order of `plan.units` (a packed segment's as its
/// pack returned it), `pack_files` in the order of `plan.packs`.
pub fn build(plan: &DumpPlan, opts: &DumpOptions, reports: &[SegmentReport], pack_files: &[Vec<Written>]) -> Result<Manifest> {
    if reports.len() != plan.units.len() || pack_files.len() != plan.packs.len() {
        return Err(Error::Other(format!(
            "manifest needs one report per unit and one file list per pack: {} units, {} reports, {} packs, {} file lists",
            plan.units.len(),
            reports.len(),
            plan.packs.len(),
            pack_files.len()
        )));
    }
    let mut pack_of = vec![None; plan.units.len()];
    for (i, p) in plan.packs.iter().enumerate() {
        for &k in &p.units {
            pack_of[k as usize] = Some(i);
        }
    }
    let mut collections = Vec::new();
    for c in &plan.collections {
        let mut partitions = Vec::new();
        for p in &c.partitions {
            let mine = |u: &crate::plan::SegmentUnit| u.collection == c.name && u.table_id == p.table_id;
            let segments: Vec<SegmentEntry> = plan
                .units
                .iter()
                .zip(reports)
                .enumerate()
                .filter(|(_, (u, _))| mine(u))
                .map(|(k, (u, r))| SegmentEntry {
                    groups: if r.files.is_empty() {
                        vec![]
                    } else {
                        group_entries(r.rows_out, u.vector.row_bytes(u.dim).unwrap_or(1), opts.max_group_bytes, &u.output_dir)
                    },
                    pack: pack_of[k].map(|i| plan.packs[i].output_dir.clone()),
                    segment: u.segment_id.clone(),
                    dir: u.output_dir.clone(),
                    rows_in: r.rows_in,
                    meta_rows: Some(u.rows),
                    deleted: r.deleted,
                    rows: r.rows_out,
                    dropped_rows: r.dropped_rows.clone(),
                    ignored_deletes: r.ignored_deletes,
                    rejects: r.rejects.as_ref().map(|w| w.path.clone()),
                    files: r.files.iter().map(file_entry).collect(),
                })
                .collect();
            let packs: Vec<PackEntry> = plan
                .packs
                .iter()
                .zip(pack_files)
                .filter(|(pk, _)| pk.units.first().is_some_and(|&k| mine(&plan.units[k as usize])))
                .map(|(pk, files)| {
                    let first = &plan.units[pk.units[0] as usize];
                    let rows: u64 = pk.units.iter().map(|&k| reports[k as usize].rows_out).sum();
                    PackEntry {
                        dir: pk.output_dir.clone(),
                        rows,
                        segments: pk.units.iter().map(|&k| plan.units[k as usize].segment_id.clone()).collect(),
                        files: files.iter().map(file_entry).collect(),
                        groups: if files.is_empty() {
                            vec![]
                        } else {
                            group_entries(rows, first.vector.row_bytes(first.dim).unwrap_or(1), opts.max_group_bytes, &pk.output_dir)
                        },
                    }
                })
                .collect();
            partitions.push(PartitionEntry {
                tag: p.tag.clone(),
                table_id: p.table_id.clone(),
                rows: segments.iter().map(|s| s.rows).sum(),
                segments,
                packs,
            });
        }
        collections.push(CollectionEntry {
            name: c.name.clone(),
            vector_type: c.vector.name().to_string(),
            dim: c.dim,
            metric: c.metric,
            engine_type: c.engine_type,
            index_params: c.index_params.clone(),
            rows: partitions.iter().map(|p| p.rows).sum(),
            partitions,
        });
    }
    Ok(Manifest {
        format: FORMAT.to_string(),
        id_field: opts.id_field.clone(),
        vector_field: opts.vector_field.clone(),
        rows: collections.iter().map(|c| c.rows).sum(),
        collections,
    })
}

/// Removes the manifest of an earlier dump before anything is rewritten: a dump that stops half
/// way must not leave a manifest that describes files it has since changed.
pub fn invalidate_manifest(store: &impl Store) -> Result<()> {
    store.delete(Role::Target, paths::MANIFEST)
}

pub fn write_manifest(store: &impl Store, plan: &DumpPlan, opts: &DumpOptions, reports: &[SegmentReport], pack_files: &[Vec<Written>]) -> Result<Written> {
    let doc = build(plan, opts, reports, pack_files)?;
    let text = serde_json::to_vec_pretty(&doc).map_err(|e| Error::Other(format!("manifest: {e}")))?;
    let w = store.create(Role::Target, paths::MANIFEST)?;
    w.write(&text)?;
    w.finish()
}

/// Reads the manifest a completed dump left in the target store.
pub fn read_manifest(store: &impl Store) -> Result<Manifest> {
    let size = store.stat(Role::Target, paths::MANIFEST)?.ok_or_else(|| {
        Error::NotFound(format!(
            "{} in the target store: run `dump` first (a dump that did not complete writes no manifest)",
            paths::MANIFEST
        ))
    })?;
    if size > MAX_MANIFEST_BYTES {
        return Err(Error::invalid(paths::MANIFEST, None, format!("{size} bytes is too large for a manifest")));
    }
    let r = store.open(Role::Target, paths::MANIFEST)?;
    let bytes = read_exact(&r, r.size() as usize, paths::MANIFEST, 0)?;
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid(paths::MANIFEST, Some(e.line() as u64), format!("not a dump manifest: {e}")))?;
    if m.format != FORMAT && m.format != FORMAT_1 {
        return Err(Error::Unsupported(format!("{}: format {:?} (expected {FORMAT:?})", paths::MANIFEST, m.format)));
    }
    Ok(m)
}
