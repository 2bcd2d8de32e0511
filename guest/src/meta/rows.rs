//! Typed rows of the 1.x meta tables, decoded from untyped SQL values.
//!
//! SQLite and MySQL give different types for the same column (MySQL VARCHAR ids, SMALLINT
//! dimension; SQLite may hand back text for a numeric-looking TEXT column), so every column is
//! converted leniently here, and a value that cannot be converted names its table, row and column.
use crate::prelude::*;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// The tables a 1.x meta database must have.
pub const REQUIRED_TABLES: [&str; 2] = ["Tables", "TableFiles"];
/// Tables of the 0.11 snapshot meta, which is a different format.
const SNAPSHOT_TABLES: [&str; 3] = ["Collection", "SegmentCommit", "CollectionCommit"];

pub const TABLES_QUERY: &str = "SELECT table_id, state, dimension, created_on, flag, index_file_size, \
     engine_type, index_params, metric_type, owner_table, partition_tag, version FROM Tables";
pub const FILES_QUERY: &str = "SELECT table_id, segment_id, engine_type, file_id, file_type, file_size, \
     row_count, created_on FROM TableFiles";

/// Refuses databases that are not a 0.9-1.1 meta, saying what they look like instead.
pub fn check_tables(present: &[String]) -> Result<()> {
    let missing: Vec<&str> = REQUIRED_TABLES.iter().copied().filter(|t| !present.iter().any(|p| p == t)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let hint = if SNAPSHOT_TABLES.iter().any(|t| present.iter().any(|p| p == t)) {
        " (it looks like the 0.11 snapshot meta, which is not supported)".to_string()
    } else if present.is_empty() {
        " (the database has no tables)".to_string()
    } else {
        format!(" (its tables are: {})", present.join(", "))
    };
    Err(Error::invalid(
        "meta database",
        None,
        format!("not a Milvus 0.9-1.x meta database: table {} missing{hint}", missing.join(" and ")),
    ))
}

/// One `Tables` row: a collection (owner_table = '') or a partition.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    pub table_id: String,
    pub state: i64,
    pub dimension: i64,
    pub created_on: i64,
    pub flag: i64,
    pub index_file_size: i64,
    pub engine_type: i64,
    pub index_params: String,
    pub metric_type: i64,
    pub owner_table: String,
    pub partition_tag: String,
    pub version: String,
}

/// One `TableFiles` row.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRow {
    pub table_id: String,
    pub segment_id: String,
    pub engine_type: i64,
    pub file_id: String,
    pub file_type: i64,
    pub file_size: i64,
    pub row_count: i64,
    pub created_on: i64,
}

struct Cells<'a> {
    table: &'static str,
    row: usize,
    cells: &'a [SqlValue],
    columns: &'static [&'static str],
}

impl Cells<'_> {
    fn at(&self, i: usize) -> Result<&SqlValue> {
        self.cells.get(i).ok_or_else(|| self.bad(i, "column missing from the result"))
    }

    fn bad(&self, i: usize, why: &str) -> Error {
        Error::invalid(
            format!("meta table {}", self.table),
            Some(self.row as u64),
            format!("column {}: {why}", self.columns.get(i).unwrap_or(&"?")),
        )
    }

    fn int(&self, i: usize) -> Result<i64> {
        match self.at(i)? {
            SqlValue::Int(v) => Ok(*v),
            SqlValue::Real(v) if *v as i64 as f64 == *v => Ok(*v as i64), // a whole number (no `fract` without std)
            SqlValue::Text(s) => s.trim().parse().map_err(|_| self.bad(i, &format!("expected an integer, got {s:?}"))),
            SqlValue::Null => Err(self.bad(i, "expected an integer, got NULL")),
            other => Err(self.bad(i, &format!("expected an integer, got {other:?}"))),
        }
    }

    fn text(&self, i: usize) -> Result<String> {
        match self.at(i)? {
            SqlValue::Text(s) => Ok(s.clone()),
            SqlValue::Int(v) => Ok(v.to_string()),
            SqlValue::Null => Ok(String::new()),
            SqlValue::Blob(b) => String::from_utf8(b.clone()).map_err(|_| self.bad(i, "text is not UTF-8")),
            SqlValue::Real(v) => Err(self.bad(i, &format!("expected text, got {v}"))),
        }
    }
}

const TABLE_COLUMNS: &[&str] = &[
    "table_id", "state", "dimension", "created_on", "flag", "index_file_size", "engine_type",
    "index_params", "metric_type", "owner_table", "partition_tag", "version",
];
const FILE_COLUMNS: &[&str] =
    &["table_id", "segment_id", "engine_type", "file_id", "file_type", "file_size", "row_count", "created_on"];

pub fn table_rows(rows: &[Vec<SqlValue>]) -> Result<Vec<TableRow>> {
    rows.iter()
        .enumerate()
        .map(|(row, cells)| {
            let c = Cells { table: "Tables", row, cells, columns: TABLE_COLUMNS };
            Ok(TableRow {
                table_id: c.text(0)?,
                state: c.int(1)?,
                dimension: c.int(2)?,
                created_on: c.int(3)?,
                flag: c.int(4)?,
                index_file_size: c.int(5)?,
                engine_type: c.int(6)?,
                index_params: c.text(7)?,
                metric_type: c.int(8)?,
                owner_table: c.text(9)?,
                partition_tag: c.text(10)?,
                version: c.text(11)?,
            })
        })
        .collect()
}

pub fn file_rows(rows: &[Vec<SqlValue>]) -> Result<Vec<FileRow>> {
    rows.iter()
        .enumerate()
        .map(|(row, cells)| {
            let c = Cells { table: "TableFiles", row, cells, columns: FILE_COLUMNS };
            Ok(FileRow {
                table_id: c.text(0)?,
                segment_id: c.text(1)?,
                engine_type: c.int(2)?,
                file_id: c.text(3)?,
                file_type: c.int(4)?,
                file_size: c.int(5)?,
                row_count: c.int(6)?,
                created_on: c.int(7)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_style_values_convert() {
        let row = vec![
            SqlValue::Text("c".into()),
            SqlValue::Int(0),
            SqlValue::Int(16),
            SqlValue::Int(1),
            SqlValue::Int(2),
            SqlValue::Int(1 << 30),
            SqlValue::Int(1),
            SqlValue::Text("{}".into()),
            SqlValue::Text("1".into()),
            SqlValue::Text(String::new()),
            SqlValue::Text(String::new()),
            SqlValue::Null,
        ];
        let t = table_rows(&[row]).unwrap();
        assert_eq!(t[0].metric_type, 1);
        assert_eq!(t[0].version, "");
    }

    #[test]
    fn bad_integer_names_table_row_and_column() {
        let mut row = vec![SqlValue::Text("x".into()); 8];
        row[4] = SqlValue::Text("raw".into());
        let err = file_rows(&[row]).unwrap_err().to_string();
        assert!(err.contains("TableFiles") && err.contains("segment_id") == false && err.contains("engine_type"), "{err}");
    }

    #[test]
    fn refuses_unrelated_and_snapshot_databases() {
        let e = check_tables(&["users".into()]).unwrap_err().to_string();
        assert!(e.contains("not a Milvus 0.9-1.x meta database") && e.contains("users"), "{e}");
        let e = check_tables(&["Collection".into(), "SegmentCommit".into()]).unwrap_err().to_string();
        assert!(e.contains("0.11"), "{e}");
        check_tables(&["Environment".into(), "Tables".into(), "TableFiles".into(), "Fields".into()]).unwrap();
    }
}
