//! Verifying a loaded collection against the 1.x source: exact counts per partition, vectors of
//! sampled live rows byte for byte (read from the .rv/.uid files, not from the dump), and absence
//! of sampled deleted rows.

use crate::dump::open_segment;
use crate::error::Result;
use crate::io::{IndexInfo, Level, Milvus, Report, Store};
use crate::load::CollectionLoad;
use crate::meta::VectorKind;

/// Live rows sampled per segment (first, middle, last, ...).
const LIVE_SAMPLES: usize = 5;
/// Deleted rows checked per segment.
const DELETED_SAMPLES: usize = 5;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PartitionCheck {
    pub name: String,
    pub expected_rows: u64,
    pub actual_rows: u64,
    pub sampled: u32,
    pub deleted_checked: u32,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct VerifyReport {
    pub expected_rows: u64,
    pub actual_rows: u64,
    pub partitions: Vec<PartitionCheck>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.expected_rows == self.actual_rows && self.partitions.iter().all(|p| p.problems.is_empty() && p.expected_rows == p.actual_rows)
    }
}

/// The 2.x metric for a 1.x metric_type, for the FLAT index that loading needs.
pub fn metric_name(metric: u32) -> &'static str {
    match metric {
        1 => "L2",
        2 => "IP",
        3 => "HAMMING",
        // TANIMOTO is not in 2.3+; on binary vectors it ranks like JACCARD.
        4 | 5 => "JACCARD",
        6 => "SUBSTRUCTURE",
        7 => "SUPERSTRUCTURE",
        _ => "L2",
    }
}

/// Loading needs an index: a FLAT one (exact search, no parameters) when the collection has none.
fn ensure_loaded(milvus: &impl Milvus, report: &impl Report, c: &CollectionLoad) -> Result<()> {
    if milvus.describe_indexes(&c.name)?.iter().all(|i| i.field != c.vector_field) {
        let index = IndexInfo {
            field: c.vector_field.clone(),
            index_type: if c.vector == VectorKind::Binary { "BIN_FLAT" } else { "FLAT" }.into(),
            metric: metric_name(c.metric).into(),
            params: "{}".into(),
        };
        report.log(Level::Info, &format!("{:?} has no index; creating {} ({}) to load it", c.name, index.index_type, index.metric));
        milvus.create_index(&c.name, &index)?;
    }
    milvus.load(&c.name)
}

/// Up to `n` row offsets spread over `rows` (first, last and evenly between) that `keep` accepts.
fn spread(rows: u64, n: usize, keep: impl Fn(u64) -> bool) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    if rows == 0 {
        return out;
    }
    for i in 0..n as u64 {
        let start = if n == 1 { 0 } else { i * (rows - 1) / (n as u64 - 1) };
        if let Some(r) = (start..rows).chain(0..start).find(|r| keep(*r)) {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

pub fn verify_collection(store: &impl Store, milvus: &impl Milvus, report: &impl Report, c: &CollectionLoad) -> Result<VerifyReport> {
    ensure_loaded(milvus, report, c)?;
    let mut out = VerifyReport { expected_rows: c.rows(), actual_rows: milvus.count_rows(&c.name, None)?, partitions: vec![] };
    for p in &c.partitions {
        let mut check = PartitionCheck {
            name: p.name.clone(),
            expected_rows: p.rows,
            actual_rows: milvus.count_rows(&c.name, Some(&p.name))?,
            ..Default::default()
        };
        if check.actual_rows != check.expected_rows {
            check.problems.push(format!("{} rows in Milvus, {} live rows in the source", check.actual_rows, check.expected_rows));
        }
        for g in &p.groups {
            let what = format!("collection {:?} partition {:?}", c.name, p.name);
            let src = open_segment(store, report, &p.table_id, &g.segment_id, c.vector, c.dim, &what)?;
            let live = spread(src.rows, LIVE_SAMPLES, |r| !src.deleted.contains(r) && g.dropped_rows.binary_search(&r).is_err());
            let dead: Vec<u64> = src.deleted.iter().take(DELETED_SAMPLES).collect();
            let mut rows = Vec::new();
            for &r in live.iter().chain(&dead) {
                rows.push((r, src.row(r)?));
            }
            let ids: Vec<i64> = rows.iter().map(|(_, (id, _))| *id).collect();
            let found = milvus.get_entities(&c.name, &c.id_field, &c.vector_field, &ids)?;
            for (r, (id, bytes)) in &rows {
                let same = found.iter().any(|e| e.id == *id && &e.vector == bytes);
                if src.deleted.contains(*r) {
                    check.deleted_checked += 1;
                    if same {
                        check.problems.push(format!("segment {} row {r}: deleted row (id {id}) is present", g.segment_id));
                    }
                } else {
                    check.sampled += 1;
                    if !same {
                        let why = if found.iter().any(|e| e.id == *id) { "its vector differs from the source" } else { "it is missing" };
                        check.problems.push(format!("segment {} row {r} (id {id}): {why}", g.segment_id));
                    }
                }
            }
        }
        out.partitions.push(check);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_picks_first_middle_last_among_kept() {
        assert_eq!(spread(10, 3, |_| true), [0, 4, 9]);
        assert_eq!(spread(10, 3, |r| r % 2 == 1), [1, 5, 9]);
        assert_eq!(spread(1, 5, |_| true), [0]);
        assert!(spread(4, 3, |_| false).is_empty());
    }
}
