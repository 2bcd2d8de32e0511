//! `loadMode: insert`: one collection's rows sent to Milvus over gRPC in batches, exactly once,
//! from the dump's files (npy or Parquet) in whatever store the host reads them from.
//!
//! Batches are deterministic: batch k of a file group holds its rows `k*N .. (k+1)*N`, with N
//! recorded in the group's insert journal the first time, so a re-run cuts the same batches.
//! Before each Insert the journal says the next batch is in doubt; after the reply, that it is
//! acknowledged. A re-run skips acknowledged batches and sends the one in doubt with Upsert
//! into the same partition (on 2.2, which has no Upsert: Delete of its keys there, then Insert):
//! Upsert deletes every stored copy of its keys there and inserts them again, so whether the lost Insert was applied fully, partly or not at all, one copy of
//! each row remains (repeated keys *within* a batch in doubt collapse to one: the source's own
//! repeats are kept by Insert, not by Upsert).
//!
//! ```text
//! _journal/<collection>-<scope hash>/<group dir>.insert.json
//!   {"dir": "c/_default/1700", "rows": 4000, "batchRows": 1000, "acked": 2000, "inDoubt": true, ...}
//! ```
//! The segments' own journal entries (shared with bulk import) record the group as `via:
//! insert`, in progress and then completed, so a bulk import never runs over rows an insert
//! load started, and the other way round.
use crate::prelude::*;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::imports::{check_files, is_refusal};
use crate::group_rows::{self, GroupFiles, Shape};
use crate::io::{read_exact, Level, Milvus, Report, Role, Rows, Store, Writer};
use crate::journal::{self, Import, Scope, SegmentJournal, State, Via};
use crate::load::{CollectionLoad, FileGroup, LoadReport, PartitionLoad};
use crate::meta::VectorKind;

const FORMAT: &str = "milvus-migration-rs/inserts/1";
/// Rows per batch at most, whatever the bytes (the server's per-request row handling).
const MAX_BATCH_ROWS: u64 = 100_000;

/// Where a group's inserts stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub format: String,
    pub target: String,
    pub collection: String,
    pub collection_id: i64,
    pub partition: String,
    pub dir: String,
    pub checksums: Vec<String>,
    pub rows: u64,
    pub batch_rows: u64,
    /// Rows acknowledged by the server: the batches before `acked / batch_rows`.
    pub acked: u64,
    /// The batch starting at `acked` was sent and no reply recorded.
    pub in_doubt: bool,
    /// Rows sent with Upsert after a lost reply, every attempt counted (their earlier copies,
    /// if any, are deleted but still counted by the server's row statistics until compaction).
    pub upserted: u64,
}

fn progress_path(scope: &Scope, dir: &str) -> String {
    format!("_journal/{}/{dir}.insert.json", scope.key())
}

fn read_progress(store: &impl Store, path: &str) -> Result<Option<Progress>> {
    let Some(size) = store.stat(Role::Target, path)? else { return Ok(None) };
    let r = store.open(Role::Target, path)?;
    let bytes = read_exact(&r, size as usize, path, 0)?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::invalid(path, None, format!("unreadable insert journal ({e})")))
}

fn write_progress(store: &impl Store, path: &str, p: &Progress) -> Result<()> {
    let w = store.create(Role::Target, path)?;
    w.write(&serde_json::to_vec_pretty(p).expect("progress serializes"))?;
    w.finish().map(|_| ())
}

/// Rows of a partition's groups sent again with Upsert (their replaced copies still count in
/// the server's row statistics until compaction).
pub fn upserted_rows(store: &impl Store, c: &CollectionLoad, collection_id: i64, p: &PartitionLoad) -> Result<u64> {
    let scope = Scope { target: c.target.clone(), collection: c.name.clone(), collection_id, partition: p.name.clone() };
    let mut n = 0;
    for g in &p.groups {
        n += read_progress(store, &progress_path(&scope, &g.dir))?.map_or(0, |pr| pr.upserted);
    }
    Ok(n)
}

/// Rows per batch for rows of `width` vector bytes: about `batch_bytes` a request.
pub fn batch_rows(batch_bytes: u64, width: u64) -> u64 {
    // 8 bytes of key and some framing per row.
    (batch_bytes / (width + 10)).clamp(1, MAX_BATCH_ROWS)
}

/// What the segments' journals say of a group.
enum Seen {
    Done,
    /// Nothing of it was sent, or an insert load of it is under way.
    Go,
}

struct Inserter<'a, S, M, R> {
    store: &'a S,
    milvus: &'a M,
    report: &'a R,
    c: &'a CollectionLoad,
    collection_id: i64,
    batch_bytes: u64,
    width: u64,
    out: LoadReport,
}

pub fn insert_collection(
    store: &impl Store,
    milvus: &impl Milvus,
    report: &impl Report,
    c: &CollectionLoad,
    collection_id: i64,
    batch_bytes: u64,
) -> Result<LoadReport> {
    let width = match c.vector {
        VectorKind::Float => c.dim as u64 * 4,
        VectorKind::Binary => c.dim as u64 / 8,
    };
    let mut run = Inserter {
        store,
        milvus,
        report,
        c,
        collection_id,
        batch_bytes,
        width,
        out: LoadReport { partition_rows: c.partitions.iter().map(|p| (p.name.clone(), 0)).collect(), ..Default::default() },
    };
    for p in &c.partitions {
        for g in &p.groups {
            match run.seen(p, g)? {
                Seen::Done => run.out.skipped += 1,
                Seen::Go => run.group(p, g)?,
            }
        }
    }
    Ok(run.out)
}

impl<S: Store, M: Milvus, R: Report> Inserter<'_, S, M, R> {
    fn scope(&self, p: &PartitionLoad) -> Scope {
        Scope { target: self.c.target.clone(), collection: self.c.name.clone(), collection_id: self.collection_id, partition: p.name.clone() }
    }

    fn segment_journal(&self, p: &PartitionLoad, m: &crate::load::GroupMember) -> Result<(String, SegmentJournal)> {
        let scope = self.scope(p);
        let path = journal::path(&scope, &m.segment_dir);
        let j = journal::read(self.store, &path, &scope)?
            .unwrap_or_else(|| SegmentJournal::new(&scope, &m.segment_id, m.segment_rows_in, m.segment_deleted, m.segment_rows));
        Ok((path, j))
    }

    /// Done when completed records (of either mode) cover every member's rows; refused when a
    /// bulk import of them is unfinished or the rows were sent in another split or pack.
    fn seen(&self, p: &PartitionLoad, g: &FileGroup) -> Result<Seen> {
        let mut done = 0;
        for m in &g.members {
            let (path, j) = self.segment_journal(p, m)?;
            let (first, end) = (m.first_row, m.first_row + m.rows);
            let overlapping: Vec<&Import> = j.imports.iter().filter(|i| i.state != State::Failed && i.overlaps(first, end)).collect();
            if overlapping.iter().all(|i| i.state == State::Completed) && !overlapping.is_empty() && j.covered(first, end) {
                done += 1;
                continue;
            }
            let ours = |i: &&&Import| i.via == Via::Insert && i.dir == g.dir && i.first_row == first && i.rows == m.rows;
            if let Some(other) = overlapping.iter().find(|i| !ours(i)) {
                let how = if other.via == Via::Import { "a bulk import (loadMode: import)" } else { "inserts of another split or pack" };
                return Err(Error::Unsupported(format!(
                    "segment {}: its rows {first}..{end} were sent to {:?} by {how} that did not finish ({}, journal {path}); \
                     sending them again could store them twice. Finish the load the way it started, or drop {:?} and load again",
                    m.segment_id, self.c.name, other.dir, self.c.name
                )));
            }
        }
        Ok(if done == g.members.len() { Seen::Done } else { Seen::Go })
    }

    /// Records `state` of the group in each member's journal.
    fn record(&self, p: &PartitionLoad, g: &FileGroup, state: State) -> Result<()> {
        for m in &g.members {
            let (path, mut j) = self.segment_journal(p, m)?;
            j.record(Import {
                dir: g.dir.clone(),
                first_row: m.first_row,
                rows: m.rows,
                files: g.files.clone(),
                checksums: g.checksums.clone(),
                task: -1,
                state,
                reported_rows: if state == State::Completed { m.rows } else { 0 },
                reason: String::new(),
                via: Via::Insert,
            });
            journal::write(self.store, &path, &j)?;
        }
        Ok(())
    }

    fn group(&mut self, p: &PartitionLoad, g: &FileGroup) -> Result<()> {
        let scope = self.scope(p);
        let path = progress_path(&scope, &g.dir);
        let mut pr = match read_progress(self.store, &path)? {
            Some(pr) if pr.checksums != g.checksums || pr.rows != g.rows => {
                return Err(Error::Unsupported(format!(
                    "{}: the dump changed since an earlier run inserted {} of its rows into {:?} (journal {path}); sending the \
                     new files could store rows twice or lose some. Load into a new collection (migration.rename), or drop it and load again",
                    g.label(),
                    pr.acked,
                    self.c.name
                )))
            }
            Some(pr) => pr,
            None => Progress {
                format: FORMAT.into(),
                target: scope.target.clone(),
                collection: scope.collection.clone(),
                collection_id: scope.collection_id,
                partition: scope.partition.clone(),
                dir: g.dir.clone(),
                checksums: g.checksums.clone(),
                rows: g.rows,
                batch_rows: batch_rows(self.batch_bytes, self.width),
                acked: 0,
                in_doubt: false,
                upserted: 0,
            },
        };
        check_files(self.store, g)?;
        // The intent first: a bulk import must not start on these rows from here on.
        self.record(p, g, State::Submitted)?;
        write_progress(self.store, &path, &pr)?;
        let files = GroupFiles::of(g, &self.c.id_field, &self.c.vector_field)?;
        let shape = Shape::of(self.c, g);
        // Past the acknowledged rows (batches are cut the same way every run).
        let mut source = group_rows::open(self.store, &files, &shape, pr.acked, true)?;
        let mut sent = 0;
        while pr.acked < g.rows {
            let n = pr.batch_rows.min(g.rows - pr.acked);
            let (ids, vectors) = source.take(n, &files, &shape)?;
            let rows = Rows {
                id_field: self.c.id_field.clone(),
                vector_field: self.c.vector_field.clone(),
                binary: self.c.vector == VectorKind::Binary,
                dim: self.c.dim,
                ids,
                vectors,
            };
            let resend = pr.in_doubt;
            let result = if resend {
                self.report.log(Level::Info, &format!("{}: rows {}..{} were sent before and no reply was recorded; sending them again with Upsert", g.label(), pr.acked, pr.acked + n));
                // Counted before it is sent: an Upsert whose reply is lost may have replaced
                // copies too, and the next run sends it again.
                pr.upserted += n;
                write_progress(self.store, &path, &pr)?;
                match self.milvus.upsert(&self.c.name, &p.name, &rows) {
                    // 2.2 has no Upsert: delete the batch's keys in the partition, then insert. A
                    // run stopped in between leaves the batch in doubt, and the next does both again.
                    Err(Error::Unsupported(why)) => {
                        self.report.log(Level::Info, &format!("{}: the server has no Upsert ({why}); deleting rows {}..{} and inserting them again", g.label(), pr.acked, pr.acked + n));
                        self.milvus.delete_ids(&self.c.name, &p.name, &self.c.id_field, &rows.ids)?;
                        self.milvus.insert(&self.c.name, &p.name, &rows)
                    }
                    r => r,
                }
            } else {
                pr.in_doubt = true;
                write_progress(self.store, &path, &pr)?;
                self.milvus.insert(&self.c.name, &p.name, &rows)
            };
            match result {
                Ok(_) => {
                    pr.acked += n;
                    pr.in_doubt = false;
                    write_progress(self.store, &path, &pr)?;
                    sent += n;
                    self.report.progress(n, n * (8 + self.width));
                }
                // The server answered no to a fresh Insert: nothing of the batch is stored. (A
                // refused Upsert leaves its batch in doubt: the lost Insert may have landed.)
                Err(e) if is_refusal(&e) && !resend => {
                    pr.in_doubt = false;
                    write_progress(self.store, &path, &pr)?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
        self.record(p, g, State::Completed)?;
        self.out.imported += 1;
        self.out.rows += sent;
        if let Some(r) = self.out.partition_rows.iter_mut().find(|(name, _)| *name == p.name) {
            r.1 += sent;
        }
        Ok(())
    }
}
