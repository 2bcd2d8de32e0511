//! The installation as the migration sees it: live collections, partitions and segments.
//!
//! Rules (spec: milvus1x-format.md §2-§4, §9):
//! * collection = `Tables` row with `owner_table = ''`; partition = row whose `owner_table` names
//!   a collection, tag in `partition_tag`; `state = 1` rows are dropped and skipped.
//! * live raw data = `TableFiles` rows with file_type RAW (1), TO_INDEX (2) or BACKUP (7); an
//!   INDEX (3) row is the index twin of a BACKUP row and is not read; NEW (0), TO_DELETE (4),
//!   NEW_MERGE (5) and NEW_INDEX (6) are garbage or in flight.
//! * binary vs float comes from metric_type (1, 2 float; 3-7 binary), never from engine_type.
use crate::prelude::*;

use alloc::collections::BTreeMap;

use super::rows::{FileRow, TableRow};
use crate::error::{Error, Result};

pub const FILE_RAW: i64 = 1;
pub const FILE_TO_INDEX: i64 = 2;
pub const FILE_INDEX: i64 = 3;
pub const FILE_BACKUP: i64 = 7;
const STATE_TO_DELETE: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorKind {
    Float,
    Binary,
}

impl VectorKind {
    /// From the 1.x metric_type: 1 L2, 2 IP are float; 3 HAMMING .. 7 SUPERSTRUCTURE are binary.
    pub fn from_metric(metric: i64) -> Option<Self> {
        match metric {
            1 | 2 => Some(VectorKind::Float),
            3..=7 => Some(VectorKind::Binary),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            VectorKind::Float => "float",
            VectorKind::Binary => "binary",
        }
    }

    /// Bytes of one row of vectors: 4 per component, or one per 8 bits.
    pub fn row_bytes(self, dim: u32) -> Option<u64> {
        match self {
            VectorKind::Float if dim > 0 => Some(dim as u64 * 4),
            VectorKind::Binary if dim > 0 && dim % 8 == 0 => Some(dim as u64 / 8),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub segment_id: String,
    pub file_id: String,
    /// file_type of the row the segment's numbers come from (its raw row when it has one).
    pub file_type: i64,
    pub file_size: i64,
    /// Live rows according to the meta.
    pub row_count: i64,
    pub engine_type: i64,
    pub has_index: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    /// Empty for the default partition.
    pub tag: String,
    /// The 1.x table id holding the files: the collection name for the default partition.
    pub table_id: String,
    pub segments: Vec<Segment>,
}

impl Partition {
    /// The segments' row counts added up (saturating: a corrupt meta can hold any i64).
    pub fn rows(&self) -> i64 {
        self.segments.iter().fold(0i64, |sum, s| sum.saturating_add(s.row_count))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    pub name: String,
    pub dim: u32,
    pub metric: i64,
    pub vector: VectorKind,
    pub engine_type: i64,
    pub index_params: String,
    pub flag: i64,
    pub index_file_size: i64,
    pub version: String,
    pub default: Partition,
    pub partitions: Vec<Partition>,
}

impl Collection {
    /// The default partition first, then the named ones.
    pub fn all_partitions(&self) -> impl Iterator<Item = &Partition> {
        core::iter::once(&self.default).chain(self.partitions.iter())
    }

    pub fn rows(&self) -> i64 {
        self.all_partitions().fold(0i64, |sum, p| sum.saturating_add(p.rows()))
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Installation {
    pub collections: Vec<Collection>,
    /// What was skipped or inferred, for the user.
    pub warnings: Vec<String>,
}

impl Installation {
    pub fn from_rows(tables: &[TableRow], files: &[FileRow]) -> Result<Self> {
        let mut warnings = Vec::new();
        let mut by_table: BTreeMap<&str, Vec<&FileRow>> = BTreeMap::new();
        for f in files {
            by_table.entry(f.table_id.as_str()).or_default().push(f);
        }
        let live = |t: &&TableRow| t.state != STATE_TO_DELETE;
        for t in tables.iter().filter(|t| !live(t)) {
            let what = if t.owner_table.is_empty() { "collection" } else { "partition" };
            warnings.push(format!("skipped dropped {what} {:?} (state=1)", t.table_id));
        }

        let mut collections = Vec::new();
        for t in tables.iter().filter(live).filter(|t| t.owner_table.is_empty()) {
            let vector = VectorKind::from_metric(t.metric_type).ok_or_else(|| {
                Error::Unsupported(format!(
                    "collection {:?} has metric_type {}, which is not a 1.x metric (1-7)",
                    t.table_id, t.metric_type
                ))
            })?;
            let dim = u32::try_from(t.dimension)
                .ok()
                .filter(|d| vector.row_bytes(*d).is_some())
                .ok_or_else(|| {
                    Error::invalid(
                        "meta table Tables",
                        None,
                        format!(
                            "collection {:?}: dimension {} is not valid for {} vectors{}",
                            t.table_id,
                            t.dimension,
                            vector.name(),
                            if vector == VectorKind::Binary { " (binary dimensions are bits, a multiple of 8)" } else { "" }
                        ),
                    )
                })?;
            let segments = live_segments(&t.table_id, by_table.get(t.table_id.as_str()), &mut warnings);
            let mut partitions = Vec::new();
            for p in tables.iter().filter(live).filter(|p| p.owner_table == t.table_id) {
                if p.dimension != t.dimension || p.metric_type != t.metric_type {
                    warnings.push(format!(
                        "partition {:?} of {:?} records dimension {} / metric {} but its collection has {} / {}; the collection's are used",
                        p.partition_tag, t.table_id, p.dimension, p.metric_type, t.dimension, t.metric_type
                    ));
                }
                partitions.push(Partition {
                    tag: p.partition_tag.clone(),
                    table_id: p.table_id.clone(),
                    segments: live_segments(&p.table_id, by_table.get(p.table_id.as_str()), &mut warnings),
                });
            }
            collections.push(Collection {
                name: t.table_id.clone(),
                dim,
                metric: t.metric_type,
                vector,
                engine_type: t.engine_type,
                index_params: t.index_params.clone(),
                flag: t.flag,
                index_file_size: t.index_file_size,
                version: t.version.clone(),
                default: Partition { tag: String::new(), table_id: t.table_id.clone(), segments },
                partitions,
            });
        }
        for p in tables.iter().filter(live).filter(|p| !p.owner_table.is_empty()) {
            if !collections.iter().any(|c| c.name == p.owner_table) {
                warnings.push(format!(
                    "skipped partition {:?} (table {}): its collection {:?} is missing or dropped",
                    p.partition_tag, p.table_id, p.owner_table
                ));
            }
        }
        Ok(Installation { collections, warnings })
    }
}

/// The live segments of one table, in the order they were created.
fn live_segments(table_id: &str, files: Option<&Vec<&FileRow>>, warnings: &mut Vec<String>) -> Vec<Segment> {
    let mut groups: BTreeMap<&str, Vec<&FileRow>> = BTreeMap::new();
    for f in files.into_iter().flatten() {
        if matches!(f.file_type, FILE_RAW | FILE_TO_INDEX | FILE_INDEX | FILE_BACKUP) {
            groups.entry(f.segment_id.as_str()).or_default().push(f);
        }
    }
    let mut segments: Vec<(i64, Segment)> = Vec::new();
    for (segment_id, rows) in groups {
        let has_index = rows.iter().any(|r| r.file_type == FILE_INDEX);
        let raw: Vec<&&FileRow> = rows.iter().filter(|r| r.file_type != FILE_INDEX).collect();
        let chosen = match raw.as_slice() {
            [one] => **one,
            [] => {
                warnings.push(format!(
                    "segment {segment_id} of table {table_id} has only an INDEX row; its raw files are read from the segment directory"
                ));
                rows[0]
            }
            many => {
                warnings.push(format!(
                    "segment {segment_id} of table {table_id} has {} raw rows; using the one whose file_id is the segment id",
                    many.len()
                ));
                many.iter().find(|r| r.file_id == segment_id).map(|r| **r).unwrap_or(*many[0])
            }
        };
        segments.push((
            chosen.created_on,
            Segment {
                segment_id: segment_id.to_string(),
                file_id: chosen.file_id.clone(),
                file_type: chosen.file_type,
                file_size: if chosen.file_type == FILE_INDEX { 0 } else { chosen.file_size },
                row_count: chosen.row_count,
                engine_type: chosen.engine_type,
                has_index,
            },
        ));
    }
    segments.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.segment_id.cmp(&b.1.segment_id)));
    segments.into_iter().map(|(_, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(id: &str, owner: &str, tag: &str, state: i64, metric: i64, dim: i64) -> TableRow {
        TableRow {
            table_id: id.into(),
            state,
            dimension: dim,
            created_on: 1,
            flag: 2,
            index_file_size: 1 << 30,
            engine_type: 1,
            index_params: "{}".into(),
            metric_type: metric,
            owner_table: owner.into(),
            partition_tag: tag.into(),
            version: "1.1.1".into(),
        }
    }

    fn file(table: &str, seg: &str, file_id: &str, ty: i64, rows: i64, created: i64) -> FileRow {
        FileRow {
            table_id: table.into(),
            segment_id: seg.into(),
            engine_type: 1,
            file_id: file_id.into(),
            file_type: ty,
            file_size: rows * 72,
            row_count: rows,
            created_on: created,
        }
    }

    #[test]
    fn partitions_dropped_tables_and_file_types() {
        let tables = vec![
            table("c", "", "", 0, 1, 16),
            table("1612530150221496000", "c", "tag one", 0, 1, 16),
            table("1612530150221497000", "c", "dropped", 1, 1, 16),
            table("gone", "", "", 1, 1, 16),
            table("b", "", "", 0, 4, 64),
        ];
        let files = vec![
            file("c", "s2", "s2", FILE_RAW, 10, 20),
            file("c", "s1", "s1", FILE_BACKUP, 5, 10),
            file("c", "s1", "i1", FILE_INDEX, 5, 11),
            file("c", "s3", "s3", 4, 9, 5),  // TO_DELETE
            file("c", "s4", "s4", 0, 9, 5),  // NEW
            file("c", "s5", "s5", 5, 9, 5),  // NEW_MERGE
            file("c", "s6", "s6", 6, 9, 5),  // NEW_INDEX
            file("c", "s7", "s7", FILE_TO_INDEX, 3, 30),
            file("1612530150221496000", "p1", "p1", FILE_RAW, 4, 1),
            file("1612530150221497000", "p2", "p2", FILE_RAW, 4, 1),
            file("gone", "g1", "g1", FILE_RAW, 4, 1),
        ];
        let inst = Installation::from_rows(&tables, &files).unwrap();
        assert_eq!(inst.collections.len(), 2);
        let c = &inst.collections[0];
        let ids: Vec<_> = c.default.segments.iter().map(|s| s.segment_id.as_str()).collect();
        assert_eq!(ids, ["s1", "s2", "s7"]);
        assert!(c.default.segments[0].has_index);
        assert_eq!(c.default.segments[0].file_type, FILE_BACKUP);
        assert_eq!(c.partitions.len(), 1);
        assert_eq!(c.partitions[0].tag, "tag one");
        assert_eq!(c.partitions[0].segments.len(), 1);
        assert_eq!(c.rows(), 22);
        assert_eq!(inst.collections[1].vector, VectorKind::Binary);
        assert!(inst.warnings.iter().any(|w| w.contains("\"gone\"")));
    }

    #[test]
    fn binary_dimension_must_be_whole_bytes() {
        let err = Installation::from_rows(&[table("b", "", "", 0, 3, 12)], &[]).unwrap_err().to_string();
        assert!(err.contains("multiple of 8"), "{err}");
    }

    #[test]
    fn unknown_metric_is_unsupported() {
        let err = Installation::from_rows(&[table("b", "", "", 0, 9, 8)], &[]).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)));
    }
}
