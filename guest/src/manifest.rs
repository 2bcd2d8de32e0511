//! `manifest.json` at the target root: what a completed dump wrote, for `load` and `verify`
//! and for anyone checking the files (rows, bytes and CRC-32C per file).

use serde::Serialize;

use crate::dump::SegmentReport;
use crate::error::{Error, Result};
use crate::io::{Role, Store, Writer, Written};
use crate::paths;
use crate::plan::{DumpOptions, DumpPlan};

pub const FORMAT: &str = "milvus-migration-rs/manifest/1";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    format: &'static str,
    id_field: &'a str,
    vector_field: &'a str,
    rows: u64,
    collections: Vec<CollectionEntry<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CollectionEntry<'a> {
    name: &'a str,
    vector_type: &'static str,
    dim: u32,
    metric: u32,
    engine_type: u32,
    index_params: &'a str,
    rows: u64,
    partitions: Vec<PartitionEntry<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PartitionEntry<'a> {
    /// Empty for the default partition.
    tag: &'a str,
    table_id: &'a str,
    rows: u64,
    segments: Vec<SegmentEntry<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SegmentEntry<'a> {
    segment: &'a str,
    dir: &'a str,
    rows_in: u64,
    deleted: u64,
    rows: u64,
    files: Vec<FileEntry<'a>>,
}

#[derive(Serialize)]
struct FileEntry<'a> {
    path: &'a str,
    bytes: u64,
    crc32c: String,
}

pub fn write_manifest(store: &impl Store, plan: &DumpPlan, opts: &DumpOptions, reports: &[SegmentReport]) -> Result<Written> {
    if reports.len() != plan.units.len() {
        return Err(Error::Other(format!(
            "manifest needs one report per unit: {} units, {} reports",
            plan.units.len(),
            reports.len()
        )));
    }
    let mut collections = Vec::new();
    for c in &plan.collections {
        let mut partitions = Vec::new();
        for p in &c.partitions {
            let segments: Vec<SegmentEntry> = plan
                .units
                .iter()
                .zip(reports)
                .filter(|(u, _)| u.collection == c.name && u.table_id == p.table_id)
                .map(|(u, r)| SegmentEntry {
                    segment: &u.segment_id,
                    dir: &u.output_dir,
                    rows_in: r.rows_in,
                    deleted: r.deleted,
                    rows: r.rows_out,
                    files: r
                        .files
                        .iter()
                        .map(|f| FileEntry { path: &f.path, bytes: f.bytes, crc32c: format!("{:08x}", f.crc32c) })
                        .collect(),
                })
                .collect();
            partitions.push(PartitionEntry {
                tag: &p.tag,
                table_id: &p.table_id,
                rows: segments.iter().map(|s| s.rows).sum(),
                segments,
            });
        }
        collections.push(CollectionEntry {
            name: &c.name,
            vector_type: c.vector.name(),
            dim: c.dim,
            metric: c.metric,
            engine_type: c.engine_type,
            index_params: &c.index_params,
            rows: partitions.iter().map(|p| p.rows).sum(),
            partitions,
        });
    }
    let doc = Manifest {
        format: FORMAT,
        id_field: &opts.id_field,
        vector_field: &opts.vector_field,
        rows: collections.iter().map(|c| c.rows).sum(),
        collections,
    };
    let text = serde_json::to_vec_pretty(&doc).map_err(|e| Error::Other(format!("manifest: {e}")))?;
    let w = store.create(Role::Target, paths::MANIFEST)?;
    w.write(&text)?;
    w.finish()
}
