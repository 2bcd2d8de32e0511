//! Verifying a loaded collection against the 1.x source: exact counts per partition, vectors of
//! sampled live rows byte for byte (read from the .rv/.uid files, not from the dump), and absence
//! of sampled deleted rows.
use crate::prelude::*;

use alloc::collections::BTreeMap;

use crate::dump::{open_segment, SegmentSource};
use crate::error::Result;
use crate::duplicates::each_live_id;
use crate::io::{IndexInfo, Level, Milvus, Report, Store};
use crate::segment::deleted::Expect;
use crate::load::CollectionLoad;
use crate::meta::VectorKind;

/// Live rows sampled per segment (first, middle, last, ...).
const LIVE_SAMPLES: usize = 5;
/// Live rows sampled per segment of a pack (its first and last): a group of hundreds of small
/// segments is still checked segment by segment, in one query.
const PACKED_SAMPLES: usize = 2;
/// Ids asked for in one query.
const QUERY_IDS: usize = 1000;
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
pub(crate) fn ensure_loaded(milvus: &impl Milvus, report: &impl Report, c: &CollectionLoad) -> Result<()> {
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

/// The rows of segment `src` that the dump wrote (not deleted, not dropped), numbered as in its
/// npy files: the segment rows at dumped positions `wanted` (ascending).
fn dumped_rows<R: crate::io::Reader>(src: &SegmentSource<R>, dropped: &[u64], wanted: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(wanted.len());
    let mut next = wanted.iter().peekable();
    let mut k = 0u64;
    for r in 0..src.rows {
        if src.deleted.contains(r) || dropped.binary_search(&r).is_ok() {
            continue;
        }
        while next.peek() == Some(&&k) {
            out.push(r);
            next.next();
        }
        if next.peek().is_none() {
            break;
        }
        k += 1;
    }
    out
}

/// Every live (dumped) copy of `ids` in the collection's source segments: id -> vectors. Only
/// asked for the few sampled ids whose check did not pass at first sight (a repeated id under
/// keep-all, an id deleted and inserted again in 1.x).
fn live_copies(store: &impl Store, report: &impl Report, c: &CollectionLoad, ids: &[i64]) -> Result<BTreeMap<i64, Vec<Vec<u8>>>> {
    let mut out: BTreeMap<i64, Vec<Vec<u8>>> = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut seen = alloc::collections::BTreeSet::new();
    for p in &c.partitions {
        for g in p.groups.iter().flat_map(|g| &g.members).filter(|g| seen.insert((p.table_id.clone(), g.segment_id.clone()))) {
            let what = format!("collection {:?} partition {:?}", c.name, p.name);
            let expect = Expect { meta_rows: g.meta_rows, strict: false };
            let src = open_segment(store, report, &p.table_id, &g.segment_id, c.vector, c.dim, &what, expect)?;
            let mut rows = Vec::new();
            each_live_id(&src, |r, id| {
                if ids.contains(&id) && g.dropped_rows.binary_search(&r).is_err() {
                    rows.push((r, id));
                }
            })?;
            for (r, id) in rows {
                out.entry(id).or_default().push(src.row(r)?.1);
            }
        }
    }
    Ok(out)
}

pub fn verify_collection(store: &impl Store, milvus: &impl Milvus, report: &impl Report, c: &CollectionLoad) -> Result<VerifyReport> {
    // Row count statistics count every stored entity, also a primary key imported twice, which
    // count(*) and queries on 2.3 resolve to one; a flush makes them current.
    milvus.flush(&c.name)?;
    ensure_loaded(milvus, report, c)?;
    let mut out = VerifyReport { expected_rows: c.rows(), actual_rows: milvus.count_rows(&c.name, None)?, partitions: vec![] };
    let mut suspects = Vec::new();
    let collection_id = match c.load_mode {
        crate::load::LoadMode::Insert { .. } => milvus.describe_collection(&c.name)?.map(|i| i.id),
        crate::load::LoadMode::Import => None,
    };
    for (pi, p) in c.partitions.iter().enumerate() {
        let mut check = PartitionCheck {
            name: p.name.clone(),
            expected_rows: p.rows,
            // A filter over every key, not an empty one: milvus-lite applies an unfiltered
            // count(*) to the whole collection whatever partition it names.
            actual_rows: milvus.count_in_range(&c.name, Some(&p.name), &c.id_field, i64::MIN, i64::MAX)?,
            ..Default::default()
        };
        if check.actual_rows != check.expected_rows {
            check.problems.push(format!("{} rows in Milvus, {} live rows in the source", check.actual_rows, check.expected_rows));
        }
        let stored = milvus.stored_rows(&c.name, Some(&p.name))?;
        // Rows an insert load sent again with Upsert replaced their earlier copies, which the
        // statistics still count until compaction: up to that many more are expected.
        let upserted = match collection_id {
            Some(id) => crate::inserts::upserted_rows(store, c, id, p)?,
            None => 0,
        };
        if upserted > 0 && (check.expected_rows..=check.expected_rows + upserted).contains(&stored) {
            report.log(
                Level::Info,
                &format!("partition {:?}: {stored} entities stored, of which up to {upserted} replaced by Upsert (counted until compaction)", p.name),
            );
        } else if stored != check.expected_rows {
            let why = if stored > check.expected_rows { ": primary keys stored more than once (imported twice?), or rows deleted or upserted in 2.x" } else { "" };
            check.problems.push(format!(
                "Milvus stores {stored} entities (row_count statistics after a flush), {} live rows in the source{why}",
                check.expected_rows
            ));
        }
        if let Some(meta) = p.meta_rows {
            if check.actual_rows < meta {
                check.problems.push(format!(
                    "{} rows in Milvus, but the 1.x meta's row_count says at least {meta} rows of this partition are live",
                    check.actual_rows
                ));
            }
        }
        // The groups of a split segment follow each other, as do the segments of a pack: each
        // segment is opened once in a row, and its deleted rows are sampled the first time.
        let mut opened: Option<(&str, SegmentSource<_>)> = None;
        let mut first_seen = alloc::collections::BTreeSet::new();
        for g in &p.groups {
            let per_segment = if g.members.len() == 1 { LIVE_SAMPLES } else { PACKED_SAMPLES };
            // (segment, row, id, vector) of every sampled row of the group.
            let mut rows = Vec::new();
            for m in &g.members {
                if opened.as_ref().is_none_or(|(id, _)| *id != m.segment_id) {
                    let what = format!("collection {:?} partition {:?}", c.name, p.name);
                    let expect = Expect { meta_rows: m.meta_rows, strict: false };
                    opened = Some((&m.segment_id, open_segment(store, report, &p.table_id, &m.segment_id, c.vector, c.dim, &what, expect)?));
                }
                let src = &opened.as_ref().expect("opened above").1;
                // Samples in every file group: a split segment is checked part by part.
                let mut wanted: Vec<u64> = spread(m.rows, per_segment, |_| true).into_iter().map(|k| m.first_row + k).collect();
                wanted.sort_unstable();
                let live = dumped_rows(src, &m.dropped_rows, &wanted);
                let dead: Vec<u64> = if first_seen.insert(m.segment_id.as_str()) { src.deleted.iter().take(DELETED_SAMPLES).collect() } else { vec![] };
                for &r in live.iter().chain(&dead) {
                    let (id, bytes) = src.row(r)?;
                    rows.push((m.segment_id.as_str(), r, src.deleted.contains(r), id, bytes));
                }
            }
            for batch in rows.chunks(QUERY_IDS) {
                let ids: Vec<i64> = batch.iter().map(|x| x.3).collect();
                let found = milvus.get_entities(&c.name, &c.id_field, &c.vector_field, &ids)?;
                for (segment, r, deleted, id, bytes) in batch {
                    let same = found.iter().any(|e| e.id == *id && e.vector == *bytes);
                    let present: Vec<Vec<u8>> = found.iter().filter(|e| e.id == *id).map(|e| e.vector.clone()).collect();
                    let suspect = Suspect { partition: pi, segment: segment.to_string(), row: *r, id: *id, deleted: *deleted, found: present };
                    if *deleted {
                        check.deleted_checked += 1;
                        if same {
                            suspects.push(suspect);
                        }
                    } else {
                        check.sampled += 1;
                        if !same {
                            suspects.push(suspect);
                        }
                    }
                }
            }
        }
        out.partitions.push(check);
    }
    // A check that fails at first sight can still be right: an id deleted in 1.x and inserted
    // again (live in another row), or a repeated id under keep-all (Milvus shows one copy).
    let ids: Vec<i64> = suspects.iter().map(|s| s.id).collect();
    let copies = live_copies(store, report, c, &ids)?;
    for s in suspects {
        let live = copies.get(&s.id).map(Vec::as_slice).unwrap_or(&[]);
        let problem = if s.deleted {
            // Present with this vector: fine only when a live copy has it too.
            (!live.iter().any(|v| s.found.contains(v))).then(|| format!("segment {} row {}: deleted row (id {}) is present", s.segment, s.row, s.id))
        } else if s.found.is_empty() {
            Some(format!("segment {} row {} (id {}): it is missing", s.segment, s.row, s.id))
        } else {
            // Milvus shows another vector: fine when it is another live copy of the same id.
            (!s.found.iter().all(|v| live.contains(v)))
                .then(|| format!("segment {} row {} (id {}): its vector differs from the source", s.segment, s.row, s.id))
        };
        if let Some(problem) = problem {
            out.partitions[s.partition].problems.push(problem);
        }
    }
    Ok(out)
}

/// A sampled row whose first check did not pass.
struct Suspect {
    partition: usize,
    segment: String,
    row: u64,
    id: i64,
    deleted: bool,
    /// The vectors Milvus returned for the id.
    found: Vec<Vec<u8>>,
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
