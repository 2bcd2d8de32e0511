//! The load journal, in the target store next to the dump: one small file per segment and
//! target, so a re-run knows which rows of each segment were already imported where, and never
//! imports them twice.
//!
//! ```text
//! _journal/<collection>-<scope hash>/<segment dir>.json
//!   {"collectionId": 4461, "partition": "_default", "segment": "1700", "rows": 4,
//!    "imports": [{"dir": "c/_default/1700", "firstRow": 0, "rows": 4, "task": 7, "state": "completed", ...}]}
//! ```
//! The scope is the target: the database, the collection *as created there* (its id: a dropped
//! and re-created collection, or the same name on another server, is a new target) and the
//! partition. Loading one dump into a second collection, database or server therefore starts a
//! journal of its own. The endpoint is recorded but not part of the key: one server has many
//! addresses (a proxy, a DNS name, a port-forward), and reaching it through another must not
//! import again.
//!
//! Each import records the rows of the segment it covers (`firstRow`, `rows` among the rows the
//! dump wrote), not just its directory: after `migration.maxGroupMiB` changed and the dump was
//! re-run, the segment's new `part-*` groups are compared by rows with what was imported.
//!
//! An import is written three times: before it is submitted (`submitting`, the intent: a run
//! killed right after submitting asks the server whether the task exists instead of submitting
//! again), once the server has given the task id (`submitted`), and when the task ends.
use crate::prelude::*;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::{read_exact, Reader, Role, Store, Writer};

const DIR: &str = "_journal";
pub const FORMAT: &str = "milvus-migration-rs/journal/2";
const MAX_ENTRY_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Submitting,
    Submitted,
    Completed,
    /// The server failed the task; its rows are not in the collection, so it is imported again.
    Failed,
    /// The server completed the task with another row count than the dump has: the collection
    /// holds an unknown part of these rows, so neither skipping nor importing again is safe.
    Mismatched,
}

/// Where a segment's rows are imported to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The database (and, for the record only, the endpoint): `load-options.target`.
    pub target: String,
    pub collection: String,
    /// The collection's id on the server.
    pub collection_id: i64,
    pub partition: String,
}

impl Scope {
    /// `<collection>-<16 hex digits>`: readable, and distinct per target.
    pub(crate) fn key(&self) -> String {
        let text = format!("{}\0{}\0{}\0{}", self.database(), self.collection, self.collection_id, self.partition);
        format!("{}-{:016x}", self.collection, fnv1a(text.as_bytes()))
    }
}

impl Scope {
    /// The database part of `target` (`endpoint/database`, or a database alone).
    pub fn database(&self) -> &str {
        self.target.rsplit_once('/').map_or(self.target.as_str(), |(_, db)| db)
    }
}

/// FNV-1a, 64 bits: a stable name for a scope (not a security boundary; the entry repeats the
/// scope in full and is checked on read). Hand-written: eight lines against a crate.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// One import of rows of a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Import {
    /// The file group's directory.
    pub dir: String,
    /// The rows it covers: `first_row .. first_row + rows` among the segment's dumped rows.
    pub first_row: u64,
    pub rows: u64,
    pub files: Vec<String>,
    /// The files' CRC-32C from the manifest when the import was submitted.
    pub checksums: Vec<String>,
    pub task: i64,
    pub state: State,
    /// Rows the server reported when the task ended.
    #[serde(default)]
    pub reported_rows: u64,
    #[serde(default)]
    pub reason: String,
    /// How the rows were sent: bulk import (absent in older entries) or `insert` batches, whose
    /// progress the group's insert journal records.
    #[serde(default, skip_serializing_if = "Via::is_import")]
    pub via: Via,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    #[default]
    Import,
    Insert,
}

impl Via {
    fn is_import(&self) -> bool {
        *self == Via::Import
    }
}

impl Import {
    pub fn end(&self) -> u64 {
        self.first_row + self.rows
    }

    pub fn overlaps(&self, first: u64, end: u64) -> bool {
        self.first_row < end && first < self.end()
    }
}

/// Everything imported of one segment into one scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentJournal {
    pub format: String,
    pub target: String,
    pub collection: String,
    pub collection_id: i64,
    pub partition: String,
    pub segment: String,
    /// The segment as dumped when it was first imported: rows read, deleted, written. A
    /// re-dump that changed them no longer matches the rows recorded below.
    pub rows_in: u64,
    pub deleted: u64,
    pub rows: u64,
    pub imports: Vec<Import>,
}

impl SegmentJournal {
    pub fn new(scope: &Scope, segment: &str, rows_in: u64, deleted: u64, rows: u64) -> Self {
        SegmentJournal {
            format: FORMAT.into(),
            target: scope.target.clone(),
            collection: scope.collection.clone(),
            collection_id: scope.collection_id,
            partition: scope.partition.clone(),
            segment: segment.into(),
            rows_in,
            deleted,
            rows,
            imports: vec![],
        }
    }

    /// Records `import`, replacing the record of the same directory and rows.
    pub fn record(&mut self, import: Import) {
        match self.imports.iter_mut().find(|i| i.dir == import.dir && i.first_row == import.first_row && i.rows == import.rows) {
            Some(i) => *i = import,
            None => self.imports.push(import),
        }
    }

    /// Whether completed imports cover every row of `first .. end`.
    pub fn covered(&self, first: u64, end: u64) -> bool {
        let mut done: Vec<(u64, u64)> =
            self.imports.iter().filter(|i| i.state == State::Completed).map(|i| (i.first_row, i.end())).collect();
        done.sort_unstable();
        let mut at = first;
        for (s, e) in done {
            if s <= at && e > at {
                at = e;
            }
        }
        at >= end
    }
}

/// The journal path of segment dump directory `segment_dir` in `scope`.
pub fn path(scope: &Scope, segment_dir: &str) -> String {
    format!("{DIR}/{}/{segment_dir}.json", scope.key())
}

/// Where versions before 0.2 of the component kept the entry of a group (keyed by directory
/// only, without the target).
pub fn legacy_path(group_dir: &str) -> String {
    format!("{DIR}/{group_dir}.json")
}

pub fn read(store: &impl Store, path: &str, scope: &Scope) -> Result<Option<SegmentJournal>> {
    let Some(size) = store.stat(Role::Target, path)? else { return Ok(None) };
    if size > MAX_ENTRY_BYTES {
        return Err(Error::invalid(path, None, format!("{size} bytes is too large for a journal entry")));
    }
    let r = store.open(Role::Target, path)?;
    let bytes = read_exact(&r, r.size() as usize, path, 0)?;
    let j: SegmentJournal = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid(path, None, format!("unreadable journal entry ({e}); delete it only if you know the imports it lists did not run")))?;
    let recorded = Scope { target: j.target.clone(), ..scope.clone() };
    if recorded.database() != scope.database() || j.collection != scope.collection || j.collection_id != scope.collection_id || j.partition != scope.partition {
        return Err(Error::invalid(
            path,
            None,
            format!(
                "journal entry of {}/{} (collection id {}) partition {:?} found where {}/{} (collection id {}) partition {:?} was expected",
                j.target, j.collection, j.collection_id, j.partition, scope.target, scope.collection, scope.collection_id, scope.partition
            ),
        ));
    }
    Ok(Some(j))
}

pub fn write(store: &impl Store, path: &str, journal: &SegmentJournal) -> Result<()> {
    let w = store.create(Role::Target, path)?;
    w.write(&serde_json::to_vec_pretty(journal).expect("journal serializes"))?;
    w.finish().map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(first_row: u64, rows: u64, state: State) -> Import {
        Import { dir: format!("d{first_row}"), first_row, rows, files: vec![], checksums: vec![], task: 1, state, reported_rows: 0, reason: String::new(), via: Via::Import }
    }

    #[test]
    fn scopes_differ_by_every_part_and_coverage_joins_ranges() {
        let s = Scope { target: "h:19530/default".into(), collection: "c".into(), collection_id: 7, partition: "_default".into() };
        let keys: Vec<String> = [
            s.clone(),
            Scope { target: "h:19530/other_db".into(), ..s.clone() },
            Scope { collection_id: 8, ..s.clone() },
            Scope { partition: "p".into(), ..s.clone() },
            Scope { collection: "c2".into(), ..s.clone() },
        ]
        .iter()
        .map(Scope::key)
        .collect();
        assert!(keys[0].starts_with("c-"));
        // The same server through another address is the same target.
        assert_eq!(Scope { target: "proxy:4000/default".into(), ..s.clone() }.key(), keys[0]);
        for i in 0..keys.len() {
            for j in i + 1..keys.len() {
                assert_ne!(keys[i], keys[j]);
            }
        }
        let mut j = SegmentJournal::new(&s, "1", 10, 0, 10);
        j.record(import(0, 4, State::Completed));
        j.record(import(4, 3, State::Failed));
        assert!(j.covered(0, 4) && j.covered(1, 3) && !j.covered(0, 5));
        j.record(import(4, 6, State::Completed));
        assert!(j.covered(0, 10) && j.covered(3, 8));
    }
}
