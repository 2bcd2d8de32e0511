//! The imports of one collection's load, exactly once: what the journal says of each file group
//! (done, in flight, interrupted while submitting, or not yet imported), the imports in flight,
//! and the records written before and after each.
//!
//! A file group holds rows of one segment, or of several (a pack). Every segment keeps its own
//! journal entry with the row ranges imported, so a group is decided from its segments' entries:
//! all done, all new, or the same import seen part way through being recorded (a run killed
//! while writing the records of a pack's segments). Anything else means the dump's packing or
//! splitting changed while rows were only partly imported, and the load stops.
use crate::prelude::*;

use alloc::collections::{BTreeMap, VecDeque};

use crate::error::{Error, Result};
use crate::io::{ImportState, ImportTask, Level, Milvus, Report, Role, Store};
use crate::journal::{self, Import, Scope, SegmentJournal, State};
use crate::load::{CollectionLoad, FileGroup, GroupMember, LoadReport, PartitionLoad};

/// What to do with a file group, as the journal says.
pub enum Next {
    /// Its rows are in the target already.
    Skip,
    /// An earlier run's task is importing it (or has: waiting records how it ended).
    Wait(i64),
    Import,
}

/// What one segment's journal says of its rows in a group.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    /// Nothing of them was imported.
    Fresh,
    /// Completed imports of other groups cover them (the dump was split or packed otherwise).
    Covered,
    /// This very import (same files, same rows) is recorded, in this state, with this task.
    Same(State, i64),
}

/// An import in flight.
struct Waiting<'a> {
    p: &'a PartitionLoad,
    g: &'a FileGroup,
    task: i64,
}

/// One collection's load: the journals read so far and the imports in flight.
pub struct Run<'a, S, M, R> {
    store: &'a S,
    milvus: &'a M,
    report: &'a R,
    c: &'a CollectionLoad,
    collection_id: i64,
    /// Journal path -> entry, as last written.
    journals: BTreeMap<String, SegmentJournal>,
    waiting: VecDeque<Waiting<'a>>,
    pub failures: Vec<String>,
    pub out: LoadReport,
}

impl<'a, S: Store, M: Milvus, R: Report> Run<'a, S, M, R> {
    pub fn new(store: &'a S, milvus: &'a M, report: &'a R, c: &'a CollectionLoad, collection_id: i64) -> Self {
        Run {
            store,
            milvus,
            report,
            c,
            collection_id,
            journals: BTreeMap::new(),
            waiting: VecDeque::new(),
            failures: Vec::new(),
            out: LoadReport { partition_rows: c.partitions.iter().map(|p| (p.name.clone(), 0)).collect(), ..Default::default() },
        }
    }

    /// Imports every group of every partition the journal does not record as done, then waits
    /// for all of them.
    pub fn run(&mut self) -> Result<()> {
        let c = self.c;
        for p in &c.partitions {
            for g in &p.groups {
                match self.decide(p, g)? {
                    Next::Skip => self.out.skipped += 1,
                    Next::Wait(task) => self.wait(p, g, task)?,
                    Next::Import => {
                        check_files(self.store, g)?;
                        self.import(p, g)?;
                    }
                }
            }
        }
        while let Some(w) = self.waiting.pop_front() {
            self.finish(w)?;
        }
        Ok(())
    }

    fn scope(&self, p: &PartitionLoad) -> Scope {
        Scope { target: self.c.target.clone(), collection: self.c.name.clone(), collection_id: self.collection_id, partition: p.name.clone() }
    }

    /// The journal of segment `m` in this target (read once, then kept), and its path.
    fn journal(&mut self, p: &PartitionLoad, g: &FileGroup, m: &GroupMember) -> Result<(String, &mut SegmentJournal)> {
        let scope = self.scope(p);
        let path = journal::path(&scope, &m.segment_dir);
        if !self.journals.contains_key(&path) {
            let j = match journal::read(self.store, &path, &scope)? {
                Some(j) => j,
                None => {
                    let legacy = journal::legacy_path(&g.dir);
                    if self.store.stat(Role::Target, &legacy)?.is_some() {
                        return Err(Error::Unsupported(format!(
                            "segment {}: found journal entry {legacy}, written by an older version that did not record which Milvus, \
                             database and collection it imported into, so whether these rows are in {:?} cannot be told. Finish this \
                             load with the version that started it, or drop the collection and delete the dump's _journal directory \
                             to start over",
                            m.segment_id, self.c.name
                        )));
                    }
                    SegmentJournal::new(&scope, &m.segment_id, m.segment_rows_in, m.segment_deleted, m.segment_rows)
                }
            };
            self.journals.insert(path.clone(), j);
        }
        let j = self.journals.get_mut(&path).expect("just inserted");
        Ok((path, j))
    }

    /// How messages name the journal entries of `g`'s segments (the first few).
    fn journal_paths(&self, p: &PartitionLoad, g: &FileGroup) -> String {
        let scope = self.scope(p);
        let mut names: Vec<String> = g.members.iter().take(3).map(|m| journal::path(&scope, &m.segment_dir)).collect();
        if g.members.len() > 3 {
            names.push(format!("and {} more", g.members.len() - 3));
        }
        names.join(", ")
    }

    /// What segment `m`'s journal says of its rows in `g`; an error when they can be neither
    /// skipped nor imported safely.
    fn seen(&mut self, p: &PartitionLoad, g: &FileGroup, m: &GroupMember) -> Result<Seen> {
        let collection = self.c.name.clone();
        let (path, j) = self.journal(p, g, m)?;
        let j = j.clone();
        let (first, end) = (m.first_row, m.first_row + m.rows);
        let live: Vec<&Import> = j.imports.iter().filter(|i| i.state != State::Failed).collect();
        let changed = |why: String| {
            Error::Unsupported(format!(
                "segment {}: the dump changed since an earlier run imported rows of it into {collection:?} (journal {path}): {why}. \
                 Importing it again could duplicate rows or lose them. Load it into a new collection (migration.rename), or drop \
                 {collection:?} and load again",
                m.segment_id
            ))
        };
        let facts = (m.segment_rows_in, m.segment_deleted, m.segment_rows);
        if live.is_empty() && (j.rows_in, j.deleted, j.rows) != facts {
            // Nothing of the segment is in the target: the journal describes the dump as it is now.
            let cached = self.journals.get_mut(&path).expect("read above");
            (cached.rows_in, cached.deleted, cached.rows) = facts;
        } else if (j.rows_in, j.deleted, j.rows) != facts {
            return Err(changed(format!(
                "then it had {} rows, {} deleted, {} written; now {}, {}, {}",
                j.rows_in, j.deleted, j.rows, m.segment_rows_in, m.segment_deleted, m.segment_rows
            )));
        }
        let overlapping: Vec<&Import> = live.iter().copied().filter(|i| i.overlaps(first, end)).collect();
        if let Some(x) = overlapping.iter().find(|i| i.via == journal::Via::Insert && i.state != State::Completed) {
            return Err(Error::Unsupported(format!(
                "segment {}: an earlier load (loadMode: insert) was sending its rows {}..{} into {collection:?} and did not finish                  (journal {path}); a bulk import now could store them twice. Finish the load with loadMode: insert",
                m.segment_id,
                x.first_row,
                x.end()
            )));
        }
        if let Some(x) = overlapping.iter().find(|i| i.state == State::Mismatched) {
            return Err(Error::Unsupported(format!(
                "segment {}: an earlier import of its rows {}..{} (task {}) completed with {} rows where the dump has {} \
                 (journal {path}), so {collection:?} holds an unknown part of them: importing again would duplicate rows and \
                 skipping would lose them. Load into a new collection (migration.rename), or drop {collection:?} and load again",
                m.segment_id,
                x.first_row,
                x.end(),
                x.task,
                x.reported_rows,
                x.rows
            )));
        }
        if let Some(i) = overlapping.iter().find(|i| i.first_row == first && i.rows == m.rows && i.files == g.files) {
            if !i.checksums.is_empty() && i.checksums != g.checksums {
                return Err(changed(format!("its files now have other checksums than when task {} imported them", i.task)));
            }
            return Ok(Seen::Same(i.state, i.task));
        }
        if overlapping.is_empty() {
            return Ok(Seen::Fresh);
        }
        if overlapping.iter().all(|i| i.state == State::Completed) && j.covered(first, end) {
            // Imported before in another split or pack (migration.maxGroupMiB changed since).
            return Ok(Seen::Covered);
        }
        let earlier: Vec<String> = overlapping.iter().map(|i| format!("rows {}..{} as {} (task {}, {:?})", i.first_row, i.end(), i.dir, i.task, i.state)).collect();
        Err(Error::Unsupported(format!(
            "segment {}: its rows {first}..{end} (group {}) overlap what an earlier run imported in another split or pack: {} \
             (journal {path}). migration.maxGroupMiB or migration.packSegments changed while that import was unfinished; set it \
             back, dump again and let the load finish, then change it",
            m.segment_id,
            g.dir,
            earlier.join(", ")
        )))
    }

    pub fn decide(&mut self, p: &PartitionLoad, g: &FileGroup) -> Result<Next> {
        let mut seen = Vec::with_capacity(g.members.len());
        for m in &g.members {
            seen.push(self.seen(p, g, m)?);
        }
        let done = |s: &Seen| matches!(s, Seen::Covered | Seen::Same(State::Completed, _));
        if seen.iter().all(done) {
            return Ok(Next::Skip);
        }
        if seen.iter().all(|s| *s == Seen::Fresh) {
            return Ok(Next::Import);
        }
        if seen.contains(&Seen::Covered) {
            // Some segments' rows are in, others' not: this group cannot be imported whole.
            let (inn, out): (Vec<_>, Vec<_>) = g.members.iter().zip(&seen).partition(|(_, s)| done(s));
            let names = |v: Vec<(&GroupMember, &Seen)>| v.iter().map(|(m, _)| m.segment_id.clone()).collect::<Vec<_>>().join(", ");
            return Err(Error::Unsupported(format!(
                "{}: the rows of segments {} were imported by an earlier run in other groups, those of {} were not, so this group \
                 can be neither imported nor skipped. migration.maxGroupMiB or migration.packSegments changed while that load was \
                 unfinished; set it back, dump again and let the load finish",
                g.label(),
                names(inn),
                names(out)
            )));
        }
        // The same import, recorded for some of its segments only (a run stopped while writing
        // the records): it is as far as the furthest record says.
        let mut tasks: Vec<i64> = seen.iter().filter_map(|s| match s {
            Seen::Same(State::Submitted | State::Completed, t) => Some(*t),
            _ => None,
        }).collect();
        tasks.sort_unstable();
        tasks.dedup();
        match tasks.as_slice() {
            [task] => {
                self.report.log(Level::Info, &format!("{}: waiting on import task {task} from an earlier run", g.label()));
                if seen.iter().any(|s| !matches!(s, Seen::Same(State::Submitted | State::Completed, _))) {
                    self.record(p, g, *task, State::Submitted, 0, String::new())?;
                }
                Ok(Next::Wait(*task))
            }
            [] => match submitted_earlier(self.milvus, &self.c.name, g, &self.journal_paths(p, g))? {
                Some(task) => {
                    self.report.log(Level::Info, &format!("{}: an earlier run's import reached the server as task {task}; waiting on it", g.label()));
                    self.record(p, g, task, State::Submitted, 0, String::new())?;
                    Ok(Next::Wait(task))
                }
                None => Ok(Next::Import),
            },
            many => Err(Error::Unsupported(format!(
                "{}: the journal records different import tasks ({many:?}) for the same files; check {:?} and the journal",
                g.label(),
                self.c.name
            ))),
        }
    }

    /// Records the import of `g` in the journal of each of its segments.
    fn record(&mut self, p: &PartitionLoad, g: &FileGroup, task: i64, state: State, reported_rows: u64, reason: String) -> Result<()> {
        for m in &g.members {
            let import = Import {
                dir: g.dir.clone(),
                first_row: m.first_row,
                rows: m.rows,
                files: g.files.clone(),
                checksums: g.checksums.clone(),
                task,
                state,
                reported_rows,
                reason: reason.clone(),
                via: journal::Via::Import,
            };
            let (path, j) = self.journal(p, g, m)?;
            j.record(import);
            journal::write(self.store, &path, &self.journals[&path])?;
        }
        Ok(())
    }

    /// Submits the import of `g` once there is room in flight.
    fn import(&mut self, p: &'a PartitionLoad, g: &'a FileGroup) -> Result<()> {
        self.make_room()?;
        self.record(p, g, 0, State::Submitting, 0, String::new())?;
        match self.milvus.import_files(&self.c.name, &p.name, &g.files) {
            Ok(task) => {
                self.record(p, g, task, State::Submitted, 0, String::new())?;
                self.waiting.push_back(Waiting { p, g, task });
                Ok(())
            }
            // The server answered no: nothing was imported, and the next run submits again.
            // (A lost reply is in doubt: the intent stays, and the next run asks the server.)
            Err(e) if is_refusal(&e) => {
                self.record(p, g, 0, State::Failed, 0, format!("refused: {e}"))?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn wait(&mut self, p: &'a PartitionLoad, g: &'a FileGroup, task: i64) -> Result<()> {
        self.make_room()?;
        self.waiting.push_back(Waiting { p, g, task });
        Ok(())
    }

    /// Waits for the oldest imports until fewer than the bound are in flight.
    fn make_room(&mut self) -> Result<()> {
        let bound = self.c.imports_in_flight as usize;
        while bound > 0 && self.waiting.len() >= bound {
            let w = self.waiting.pop_front().expect("non-empty");
            self.finish(w)?;
        }
        Ok(())
    }

    /// Waits for an import to end and records how: a completion with another row count than the
    /// dump's (0 included) is not a success.
    fn finish(&mut self, w: Waiting<'a>) -> Result<()> {
        let Waiting { p, g, task } = w;
        let outcome = self.milvus.await_import(task)?;
        let (state, reason) = if !outcome.completed {
            self.failures.push(format!("{} (task {task}) failed on the server: {}", g.label(), outcome.reason));
            (State::Failed, outcome.reason.clone())
        } else if outcome.rows != g.rows {
            let why = format!("the server reports {} rows imported, the dump has {}", outcome.rows, g.rows);
            self.failures.push(format!("{} (task {task}): {why}; the collection now holds an unknown part of these rows", g.label()));
            (State::Mismatched, why)
        } else {
            (State::Completed, String::new())
        };
        self.record(p, g, task, state, outcome.rows, reason)?;
        if state == State::Completed {
            self.out.imported += 1;
            self.out.rows += g.rows;
            if let Some(pr) = self.out.partition_rows.iter_mut().find(|(n, _)| *n == p.name) {
                pr.1 += g.rows;
            }
            self.report.progress(g.rows, 0);
        }
        Ok(())
    }
}

/// The group's files must be what the manifest says (a re-dump that stopped half way may
/// have rewritten some): checked before any of their rows is sent, by either load mode.
pub(crate) fn check_files(store: &impl Store, g: &FileGroup) -> Result<()> {
    for (k, f) in g.files.iter().enumerate() {
        let w = store.checksum(Role::Target, f)?;
        let crc = format!("{:08x}", w.crc32c);
        let (size, want) = (g.sizes.get(k).copied(), g.checksums.get(k));
        if size.is_some_and(|s| s != w.bytes) || want.is_some_and(|c| *c != crc) {
            return Err(Error::invalid(
                f.as_str(),
                None,
                format!(
                    "{} bytes with CRC-32C {crc}, but the dump's manifest says {} bytes with CRC-32C {}: the file changed after \
                     the manifest was written (an interrupted or concurrent dump?). Run dump again; nothing more of this group is sent",
                    w.bytes,
                    size.map_or("?".into(), |s| s.to_string()),
                    want.map_or("?", |c| c.as_str())
                ),
            ));
        }
    }
    Ok(())
}

/// Whether an error from `import-files` is the server's answer (nothing was imported) rather
/// than a lost reply (the import may have been taken).
pub(crate) fn is_refusal(e: &Error) -> bool {
    !matches!(e, Error::Unavailable(_) | Error::Other(_))
}

/// The task of an import of `g` that an interrupted run submitted without recording its id: a
/// task the server remembers with exactly these files that did not fail. None when there is
/// none (the run stopped before the server took it, or the server failed it).
fn submitted_earlier(milvus: &impl Milvus, collection: &str, g: &FileGroup, journal_paths: &str) -> Result<Option<i64>> {
    let mut want = g.files.clone();
    want.sort();
    let tasks = milvus.list_imports(collection)?;
    let same = |t: &&ImportTask| {
        t.files.as_ref().is_some_and(|f| {
            let mut f = f.clone();
            f.sort();
            f == want
        })
    };
    if let Some(t) = tasks.iter().filter(same).filter(|t| t.state != ImportState::Failed).max_by_key(|t| t.id) {
        return Ok(Some(t.id));
    }
    if tasks.iter().any(|t| t.files.is_none()) {
        return Err(Error::Unsupported(format!(
            "{}: an earlier run was stopped while submitting its import, and this server does not say which \
             files its import tasks read, so whether that import ran cannot be told. Check the row count of {collection:?}; \
             if the group's {} rows are missing, delete its journal entries ({journal_paths}) and run load again",
            g.label(),
            g.rows,
        )));
    }
    Ok(None)
}
