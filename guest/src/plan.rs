//! What a dump will do: one unit of work per live segment, computed before anything is written.
use crate::prelude::*;

use crate::error::{Error, Result};
use crate::meta::{Collection, Installation, VectorKind};
use crate::paths;

#[derive(Debug, Clone, PartialEq)]
pub struct DumpOptions {
    /// Only these collections; empty means all.
    pub collections: Vec<String>,
    pub id_field: String,
    pub vector_field: String,
    pub read_chunk: u32,
    /// Largest npy payload of one file group (one import); 0 for no limit.
    pub max_group_bytes: u64,
    /// What to do with rows Milvus 2.x would refuse or that cannot be paired.
    pub bad_data: crate::bad_data::Policy,
    /// Keep only the newest copy of a repeated primary key.
    pub keep_last: bool,
    /// Write the live rows of small segments of a partition into shared file groups.
    pub pack: bool,
    /// How each file group is written (`migration.format`).
    pub format: FileFormat,
}

/// `migration.format`: the files of a file group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileFormat {
    /// `<vector>.npy` and `<id>.npy`.
    #[default]
    Numpy,
    /// One `rows.parquet` (Milvus 2.3.4 and later import it).
    Parquet,
}

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions { collections: vec![], id_field: "id".into(), vector_field: "data".into(), read_chunk: 1 << 20, max_group_bytes: 0, bad_data: Default::default(), keep_last: false, pack: true, format: FileFormat::Numpy }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SegmentUnit {
    pub collection: String,
    pub partition_tag: String,
    pub table_id: String,
    pub segment_id: String,
    pub vector: VectorKind,
    pub dim: u32,
    pub rows: u64,
    pub file_size: u64,
    pub output_dir: String,
    /// Rows whose primary key has a newer copy that is kept (keep-last).
    pub drop_rows: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartitionPlan {
    pub tag: String,
    pub table_id: String,
    pub segments: u32,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CollectionPlan {
    pub name: String,
    pub vector: VectorKind,
    pub dim: u32,
    pub metric: u32,
    pub engine_type: u32,
    pub index_params: String,
    pub partitions: Vec<PartitionPlan>,
}

/// Small segments of one partition whose live rows are written into shared file groups, so
/// that the number of imports follows the bytes, not the segment count (Milvus handles import
/// tasks one after another, with a fixed cost each).
#[derive(Debug, Clone, PartialEq)]
pub struct PackPlan {
    /// Where the pack's files go: `<collection>/<partition dir>/pack-<first segment id>-<last segment id>`.
    pub output_dir: String,
    /// Its segments, as indices into `DumpPlan::units`, in order (their rows follow each other).
    pub units: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DumpPlan {
    pub collections: Vec<CollectionPlan>,
    pub units: Vec<SegmentUnit>,
    /// Units dumped together into shared file groups; a unit in no pack is dumped alone.
    pub packs: Vec<PackPlan>,
    pub warnings: Vec<String>,
}

impl DumpPlan {
    /// Whether unit `k` belongs to a pack.
    pub fn packed(&self) -> Vec<bool> {
        let mut packed = vec![false; self.units.len()];
        for p in &self.packs {
            for &k in &p.units {
                packed[k as usize] = true;
            }
        }
        packed
    }
}

/// Groups the segments `units[from..]` (one partition's) into packs: a segment whose live rows
/// fill half a file group or more stays alone (splitting as before); the others are packed in
/// order while the estimate (the meta's row count) fits `max_group_bytes` (0: no bound).
fn pack_partition(units: &[SegmentUnit], from: usize, max_group_bytes: u64, packs: &mut Vec<PackPlan>) {
    let limit = if max_group_bytes == 0 { u64::MAX } else { max_group_bytes };
    let bytes = |u: &SegmentUnit| u.rows.saturating_mul(u.vector.row_bytes(u.dim).unwrap_or(1) + 8);
    let mut current: Vec<u32> = Vec::new();
    let mut filled = 0u64;
    let close = |current: &mut Vec<u32>, packs: &mut Vec<PackPlan>| {
        if current.len() > 1 {
            // Named by its first and last segment: another packing makes other names, so a
            // re-dump never rewrites the files of an earlier pack under the same name.
            let (first, last) = (&units[current[0] as usize], &units[current[current.len() - 1] as usize]);
            let dir = first.output_dir.rsplit_once('/').map_or("", |d| d.0);
            packs.push(PackPlan { output_dir: format!("{dir}/pack-{}-{}", first.segment_id, last.segment_id), units: core::mem::take(current) });
        }
        current.clear();
    };
    for (k, u) in units.iter().enumerate().skip(from) {
        let b = bytes(u);
        if b >= limit / 2 && limit != u64::MAX {
            continue;
        }
        if filled.saturating_add(b) > limit {
            close(&mut current, packs);
            filled = 0;
        }
        current.push(k as u32);
        filled = filled.saturating_add(b);
    }
    close(&mut current, packs);
}

fn check_options(opts: &DumpOptions) -> Result<()> {
    for (key, name) in [("id field", &opts.id_field), ("vector field", &opts.vector_field)] {
        let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(Error::invalid("dump options", None, format!("{key} {name:?} is not a valid 2.x field name")));
        }
    }
    if opts.id_field == opts.vector_field {
        return Err(Error::invalid("dump options", None, "id and vector fields must have different names"));
    }
    Ok(())
}

pub fn plan_dump(inst: Installation, opts: &DumpOptions) -> Result<DumpPlan> {
    check_options(opts)?;
    let known: Vec<&str> = inst.collections.iter().map(|c| c.name.as_str()).collect();
    crate::names::check_selection(&opts.collections, &known, "the 1.x meta")?;
    let chosen = |c: &Collection| opts.collections.is_empty() || opts.collections.contains(&c.name);
    let mut plan = DumpPlan { collections: vec![], units: vec![], packs: vec![], warnings: inst.warnings };
    for c in inst.collections.iter().filter(|c| chosen(c)) {
        let mut partitions = Vec::new();
        for p in c.all_partitions() {
            let dir_id = (!p.tag.is_empty()).then_some(p.table_id.as_str());
            let from = plan.units.len();
            for s in &p.segments {
                plan.units.push(SegmentUnit {
                    collection: c.name.clone(),
                    partition_tag: p.tag.clone(),
                    table_id: p.table_id.clone(),
                    segment_id: s.segment_id.clone(),
                    vector: c.vector,
                    dim: c.dim,
                    rows: s.row_count.max(0) as u64,
                    file_size: s.file_size.max(0) as u64,
                    output_dir: paths::output_dir(&c.name, dir_id, &s.segment_id),
                    drop_rows: vec![],
                });
            }
            if opts.pack {
                pack_partition(&plan.units, from, opts.max_group_bytes, &mut plan.packs);
            }
            partitions.push(PartitionPlan {
                tag: p.tag.clone(),
                table_id: p.table_id.clone(),
                segments: p.segments.len() as u32,
                rows: p.rows().max(0) as u64,
            });
        }
        plan.collections.push(CollectionPlan {
            name: c.name.clone(),
            vector: c.vector,
            dim: c.dim,
            metric: c.metric as u32,
            engine_type: c.engine_type.max(0) as u32,
            index_params: c.index_params.clone(),
            partitions,
        });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::json::from_json;

    const META: &str = r#"{"format":"milvus-migration-rs/meta/1","rows":3,"collections":[
      {"collection":"a","metric":1,"rows":1,"dim":4,"segments":[{"collection":"a","segment":"s1","dim":4,"rows":1,"fileSize":24}],
       "partitions":[{"tag":"x y","tableId":"161","rows":2,"segments":[{"collection":"a","segment":"s2","dim":4,"rows":2,"fileSize":48}]}]},
      {"collection":"b","metric":3,"rows":0,"dim":8,"segments":[]}]}"#;

    #[test]
    fn units_per_segment_with_partition_dirs_by_id() {
        let plan = plan_dump(from_json(META, "m").unwrap(), &DumpOptions::default()).unwrap();
        let dirs: Vec<_> = plan.units.iter().map(|u| u.output_dir.as_str()).collect();
        assert_eq!(dirs, ["a/_default/s1", "a/161/s2"]);
        assert_eq!(plan.units[1].partition_tag, "x y");
        assert_eq!(plan.units[1].table_id, "161");
        assert_eq!(plan.collections.len(), 2);
        assert_eq!(plan.collections[0].partitions[1].rows, 2);
    }

    #[test]
    fn filter_and_unknown_names() {
        let opts = DumpOptions { collections: vec!["b".into()], ..Default::default() };
        let plan = plan_dump(from_json(META, "m").unwrap(), &opts).unwrap();
        assert_eq!(plan.collections.len(), 1);
        assert!(plan.units.is_empty());
        let opts = DumpOptions { collections: vec!["zz".into()], ..Default::default() };
        let err = plan_dump(from_json(META, "m").unwrap(), &opts).unwrap_err().to_string();
        assert!(err.contains("\"zz\"") && err.contains("a, b"), "{err}");
    }

    #[test]
    fn bad_field_names() {
        let opts = DumpOptions { vector_field: "1x".into(), ..Default::default() };
        assert!(plan_dump(from_json(META, "m").unwrap(), &opts).is_err());
    }
}
