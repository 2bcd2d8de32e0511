//! Converting one 1.x segment into npy files, streaming.
//!
//! Order: find the files by extension (as Milvus does), check both counted headers against
//! each other and the file sizes, read `deleted_docs` into a bitset, then, knowing the number
//! of live rows, write both npy headers and stream `.rv` and `.uid` in step, chunk by chunk,
//! dropping deleted rows in place. Memory: one chunk of each file plus one bit per row.
use crate::prelude::*;

use core::cell::Cell;

use crate::bad_data::{first_non_finite, float_name, Dropped, Kind, Policy, Rejects};
use crate::error::{Error, Result};
use crate::io::{read_exact, Level, Reader, Report, Role, Store, Writer, Written};
use crate::meta::VectorKind;
use crate::npy::{self, Dtype};
use crate::parquet::ParquetGroup;
use crate::paths;
use crate::plan::{DumpOptions, FileFormat, SegmentUnit};
use crate::segment::deleted::{Expect, Layout};
use crate::segment::{CountedFile, DeletedSet};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SegmentReport {
    pub rows_in: u64,
    pub deleted: u64,
    pub rows_out: u64,
    pub bytes_in: u64,
    pub files: Vec<Written>,
    /// Rows the bad-data policy dropped (skipped or rejected), as segment row offsets.
    pub dropped_rows: Vec<u64>,
    /// Out-of-range deletions the policy ignored.
    pub ignored_deletes: u64,
    /// The reject file, when the policy wrote one.
    pub rejects: Option<Written>,
    /// Rows left out because a newer copy of their id is kept (keep-last); in `dropped_rows`.
    pub duplicates_dropped: u64,
}

const ID_BYTES: u64 = 8;

/// The single file in `names` ending in `ext`.
fn one_with_ext(names: &[String], ext: &str, dir: &str) -> Result<String> {
    let found: Vec<&String> = names.iter().filter(|n| n.ends_with(ext)).collect();
    match found.as_slice() {
        [one] => Ok(format!("{dir}/{one}")),
        [] => Err(Error::NotFound(format!(
            "no {ext} file in segment directory {dir} (it holds: {})",
            if names.is_empty() { "nothing".to_string() } else { names.join(", ") }
        ))),
        many => Err(Error::invalid(
            dir,
            None,
            format!("{} files end in {ext} ({}); expected exactly one", many.len(), names.join(", ")),
        )),
    }
}

/// Chunks with at most this many live runs have their vectors copied by the host.
const MAX_DIRECT_RUNS: usize = 64;

/// The maximal runs of live rows in `start..end`, as half-open ranges.
fn live_runs(deleted: &DeletedSet, start: u64, end: u64) -> Vec<(u64, u64)> {
    if !deleted.any_in(start, end) {
        return vec![(start, end)];
    }
    let mut runs = Vec::new();
    let mut r = start;
    while r < end {
        if deleted.contains(r) {
            r += 1;
            continue;
        }
        let s = r;
        while r < end && !deleted.contains(r) {
            r += 1;
        }
        runs.push((s, r));
    }
    runs
}

/// Moves the rows of `buf` (each `width` bytes) that are not deleted to its front; returns how
/// many were kept. `first` is the segment row number of `buf`'s first row.
fn compact(buf: &mut [u8], width: usize, rows: usize, first: u64, deleted: &DeletedSet) -> usize {
    let mut kept = 0;
    let mut i = 0;
    while i < rows {
        if deleted.contains(first + i as u64) {
            i += 1;
            continue;
        }
        let start = i;
        while i < rows && !deleted.contains(first + i as u64) {
            i += 1;
        }
        if kept != start {
            buf.copy_within(start * width..i * width, kept * width);
        }
        kept += i - start;
    }
    kept
}

/// A segment's source files, opened and checked: headers agree with the file sizes and the
/// dimension; deletions read. When `.uid` and `.rv` hold different numbers of rows, `rows` is
/// the smaller and `unpaired` says what is left over; the caller applies the bad-data policy.
pub struct SegmentSource<R> {
    pub uid: CountedFile<R>,
    pub rv: CountedFile<R>,
    pub deleted: DeletedSet,
    pub rows: u64,
    pub row_bytes: u64,
    pub unpaired: Option<Unpaired>,
}

/// Rows of one file with no partner in the other.
#[derive(Debug, Clone, PartialEq)]
pub struct Unpaired {
    /// The longer file.
    pub file: String,
    /// Its rows beyond the shorter file's.
    pub rows: u64,
    /// The message when the policy is `fail`.
    pub error: Error,
}

impl<R: crate::io::Reader> SegmentSource<R> {
    /// The id and vector bytes of row `row` (random access).
    pub fn row(&self, row: u64) -> Result<(i64, Vec<u8>)> {
        self.uid.reader.seek(8 + row * ID_BYTES)?;
        let id = read_exact(&self.uid.reader, ID_BYTES as usize, &self.uid.path, 8 + row * ID_BYTES)?;
        self.rv.reader.seek(8 + row * self.row_bytes)?;
        let v = read_exact(&self.rv.reader, self.row_bytes as usize, &self.rv.path, 8 + row * self.row_bytes)?;
        Ok((i64::from_le_bytes(id[..8].try_into().expect("8 bytes")), v))
    }
}

/// Opens the segment `segment_id` of 1.x table `table_id`; `what` names it in messages.
/// `expect` carries the meta's live row count, which decides between readings of an ambiguous
/// `deleted_docs` and below which the segment is an error (rows would be lost).
#[allow(clippy::too_many_arguments)]
pub fn open_segment<S: Store>(
    store: &S,
    report: &impl Report,
    table_id: &str,
    segment_id: &str,
    vector: VectorKind,
    dim: u32,
    what: &str,
    expect: Expect,
) -> Result<SegmentSource<S::R>> {
    let dir = paths::segment_dir(table_id, segment_id);
    let names = store.list(Role::Source, &dir)?;
    if names.is_empty() {
        return Err(Error::NotFound(format!("segment directory {dir} of {what} is missing or empty")));
    }
    let row_bytes = vector.row_bytes(dim).ok_or_else(|| {
        Error::invalid(dir.as_str(), None, format!("dimension {dim} is not valid for {} vectors", vector.name()))
    })?;
    let uid_path = one_with_ext(&names, ".uid", &dir)?;
    let rv_path = one_with_ext(&names, ".rv", &dir)?;
    let uid = CountedFile::open(store.open(Role::Source, &uid_path)?, &uid_path)?;
    let mut rows = uid.rows(ID_BYTES, "8-byte ids")?;
    let rv = CountedFile::open(store.open(Role::Source, &rv_path)?, &rv_path)?;
    let mut unpaired = None;
    if rv.payload != rows * row_bytes {
        let whole = rv.payload % row_bytes == 0;
        // As many rows as ids but of another width: the dimension is off, never a row count to
        // reconcile (the bad-data policy must not pair rows of the wrong width).
        let other_width = rows > 0 && rv.payload % rows == 0 && rv.payload / rows != row_bytes;
        let hint = if !whole {
            format!("; {} bytes is not a whole number of rows, so the dimension {dim} does not match the row width", rv.payload)
        } else if other_width {
            // As many rows as ids, but of another width: the meta's dimension is wrong.
            let width = rv.payload / rows;
            let actual = match vector {
                VectorKind::Float if width % 4 == 0 => format!(" (dim {})", width / 4),
                VectorKind::Binary => format!(" (dim {})", width * 8),
                _ => String::new(),
            };
            format!("; that is {rows} rows of {width} bytes{actual}, so the files do not have the meta's dimension {dim}")
        } else {
            format!(" (it holds {} rows)", rv.payload / row_bytes)
        };
        let error = Error::invalid(
            rv_path.as_str(),
            Some(0),
            format!(
                "expected {} bytes of vectors ({rows} rows from {uid_path} x {row_bytes} bytes per {dim}-dim {} row), found {}{hint}",
                rows * row_bytes,
                vector.name(),
                rv.payload
            ),
        );
        if !whole || other_width {
            return Err(error);
        }
        // Whole rows on both sides: row i pairs with row i; the longer file's tail is unpaired.
        let rv_rows = rv.payload / row_bytes;
        let (file, extra) = if rv_rows > rows { (rv_path.clone(), rv_rows - rows) } else { (uid_path.clone(), rows - rv_rows) };
        rows = rows.min(rv_rows);
        unpaired = Some(Unpaired { file, rows: extra, error });
    }
    let deleted_path = format!("{dir}/{}", paths::DELETED_DOCS);
    // The meta counts the unpaired tail as live too; the readings below see the paired rows.
    let extra = unpaired.as_ref().map_or(0, |u| u.rows);
    let paired_expect = Expect { meta_rows: expect.meta_rows.map(|m| m.saturating_sub(extra)), ..expect };
    let deleted = if names.iter().any(|n| n == paths::DELETED_DOCS) {
        let (set, layout) = DeletedSet::read(&store.open(Role::Source, &deleted_path)?, &deleted_path, rows, paired_expect)?;
        if layout != Layout::Counted && layout != Layout::Empty {
            report.log(Level::Warn, &format!("{deleted_path}: read as {layout:?}"));
        }
        set
    } else {
        let total = rows + extra;
        match expect.meta_rows {
            Some(meta) if meta > total => {
                return Err(Error::invalid(
                    uid_path.as_str(),
                    Some(0),
                    format!("the segment's files hold {total} rows but the meta's row_count says {meta} are live: rows are missing"),
                ))
            }
            Some(meta) if meta < total && expect.strict => {
                return Err(Error::NotFound(format!(
                    "{deleted_path} is missing, but the meta's row_count says {meta} of the segment's {total} rows are live: \
                     without it the {} deleted rows would come back (migration.badData: skip or reject dumps every row with a warning)",
                    total - meta
                )))
            }
            Some(meta) if meta < total => report.log(
                Level::Warn,
                &format!("{deleted_path} is missing: all {total} rows are dumped, although the meta's row_count says only {meta} are live"),
            ),
            _ => report.log(Level::Warn, &format!("{deleted_path} is missing: no rows of this segment are treated as deleted")),
        }
        DeletedSet::empty(rows)
    };
    Ok(SegmentSource { uid, rv, deleted, rows, row_bytes, unpaired })
}

/// A segment opened and its rows to leave out decided: deleted in 1.x, older copies of repeated
/// ids (keep-last), rows without a partner and deletions outside it (bad-data policy).
struct Prepared<'u, 's, S: Store> {
    unit: &'u SegmentUnit,
    where_: String,
    /// Paired rows in the files.
    rows: u64,
    /// Rows in the files, unpaired ones included.
    rows_in: u64,
    deleted: u64,
    bytes_in: u64,
    gone: DeletedSet,
    dropped_rows: Vec<u64>,
    rejects: Rejects<'s, S>,
}

impl<S: Store> Prepared<'_, '_, S> {
    fn live(&self) -> u64 {
        self.rows - self.gone.count()
    }

    fn row_bytes(&self) -> u64 {
        self.unit.vector.row_bytes(self.unit.dim).unwrap_or(1)
    }
}

fn unit_where(unit: &SegmentUnit) -> String {
    if unit.partition_tag.is_empty() {
        format!("collection {:?}", unit.collection)
    } else {
        format!("collection {:?} partition {:?}", unit.collection, unit.partition_tag)
    }
}

/// Opens a unit's segment (`report` hears its warnings).
fn open_unit<S: Store>(store: &S, report: &impl Report, unit: &SegmentUnit, opts: &DumpOptions) -> Result<SegmentSource<S::R>> {
    open_segment(store, report, &unit.table_id, &unit.segment_id, unit.vector, unit.dim, &unit_where(unit), unit_expect(unit, opts)).map_err(|e| match e {
        Error::NotFound(m) => Error::NotFound(format!("{m} (the meta lists segment {} with {} rows)", unit.segment_id, unit.rows)),
        e => e,
    })
}

fn prepare<'u, 's, S: Store>(store: &'s S, report: &impl Report, unit: &'u SegmentUnit, opts: &DumpOptions) -> Result<Prepared<'u, 's, S>> {
    let where_ = unit_where(unit);
    let src = open_unit(store, report, unit, opts)?;
    let policy = opts.bad_data;
    let mut rejects = Rejects::new(store, policy, unit.vector, &unit.output_dir);
    let deleted_path = format!("{}/{}", paths::segment_dir(&unit.table_id, &unit.segment_id), paths::DELETED_DOCS);
    if let Some(u) = &src.unpaired {
        if policy == Policy::Fail {
            return Err(with_hint(u.error.clone()));
        }
        drop_unpaired(&src, u, &mut rejects)?;
    }
    if let Some(e) = src.deleted.outside_error(&deleted_path) {
        if policy == Policy::Fail {
            return Err(with_hint(e));
        }
        for &(offset, _) in &src.deleted.outside_first {
            let reason = format!("deleted row offset {offset} is outside the segment, which has {} rows; ignored", src.rows);
            rejects.drop(Dropped { file: &deleted_path, row: offset as i64, id: None, vector: None, reason }, Kind::Deletion)?;
        }
        rejects.deletes = src.deleted.outside;
    }
    // Rows to leave out: the 1.x deletions, older copies of repeated ids (keep-last), then
    // whatever the bad-data policy drops.
    let mut gone = src.deleted.clone();
    let mut dropped_rows = Vec::new();
    for &r in unit.drop_rows.iter().filter(|&&r| r < src.rows && !src.deleted.contains(r)) {
        let (id, v) = src.row(r)?;
        let reason = format!("id {id} appears again in a newer row, which is kept (migration.duplicateIds: keep-last)");
        rejects.drop(Dropped { file: &src.uid.path, row: r as i64, id: Some(id), vector: Some(&v), reason }, Kind::Duplicate)?;
        gone.add(r);
        dropped_rows.push(r);
    }
    let unpaired = src.unpaired.as_ref().map_or(0, |u| u.rows);
    Ok(Prepared {
        unit,
        where_,
        rows: src.rows,
        rows_in: src.rows + unpaired,
        deleted: src.deleted.count(),
        bytes_in: 2 * 8 + src.uid.payload + src.rv.payload,
        gone,
        dropped_rows,
        rejects,
    })
}

/// Passes progress on, but not the log: a segment opened again must not warn twice.
struct Quiet<'a, R>(&'a R);

impl<R: Report> Report for Quiet<'_, R> {
    fn log(&self, _: Level, _: &str) {}
    fn progress(&self, rows: u64, bytes: u64) {
        self.0.progress(rows, bytes);
    }
}

/// Converts one segment into its own file group(s) under `unit.output_dir`.
pub fn dump_segment<S: Store>(store: &S, report: &impl Report, unit: &SegmentUnit, opts: &DumpOptions) -> Result<SegmentReport> {
    let (mut reports, files) = dump_units(store, report, core::slice::from_ref(unit), &unit.output_dir, opts)?;
    let mut r = reports.pop().expect("one report per unit");
    r.files = files;
    Ok(r)
}

/// Converts a pack: the live rows of `units` (small segments of one partition), one segment
/// after the other, into shared file groups under `output_dir`. Returns a report per segment
/// (without files) and the pack's files.
pub fn dump_pack<S: Store>(store: &S, report: &impl Report, units: &[SegmentUnit], output_dir: &str, opts: &DumpOptions) -> Result<(Vec<SegmentReport>, Vec<Written>)> {
    if units.is_empty() || units.iter().any(|u| (&u.collection, &u.table_id, u.vector, u.dim) != (&units[0].collection, &units[0].table_id, units[0].vector, units[0].dim)) {
        return Err(Error::Other(format!("pack {output_dir}: its segments must be one or more of one partition")));
    }
    dump_units(store, report, units, output_dir, opts)
}

/// Every unit of `plan`, one after the other (tests and single-process embedders; the native
/// host runs each unit in an instance of its own). Returns a report per unit, in order, and
/// each pack's files.
pub fn dump_plan<S: Store>(store: &S, report: &impl Report, plan: &crate::plan::DumpPlan, opts: &DumpOptions) -> Result<(Vec<SegmentReport>, Vec<Vec<Written>>)> {
    let packed = plan.packed();
    let mut reports: Vec<SegmentReport> = Vec::with_capacity(plan.units.len());
    for (u, packed) in plan.units.iter().zip(&packed) {
        reports.push(if *packed { SegmentReport::default() } else { dump_segment(store, report, u, opts)? });
    }
    let mut pack_files = Vec::new();
    for p in &plan.packs {
        let units: Vec<SegmentUnit> = p.units.iter().map(|&k| plan.units[k as usize].clone()).collect();
        let (members, files) = dump_pack(store, report, &units, &p.output_dir, opts)?;
        for (&k, r) in p.units.iter().zip(members) {
            reports[k as usize] = r;
        }
        pack_files.push(files);
    }
    Ok((reports, pack_files))
}

/// The live rows of `units`, in order, into file groups under `output_dir`. Memory: a chunk,
/// plus a bit per row of each segment; each segment's files are open only while it streams.
fn dump_units<S: Store>(store: &S, report: &impl Report, units: &[SegmentUnit], output_dir: &str, opts: &DumpOptions) -> Result<(Vec<SegmentReport>, Vec<Written>)> {
    let mut preps = Vec::with_capacity(units.len());
    for u in units {
        preps.push(prepare(store, report, u, opts)?);
    }
    let progress = Attempts { report, this: Cell::new((0, 0)), shown: Cell::new((0, 0)) };
    let mut retried = false;
    let files = loop {
        match write_live(store, &progress, &preps, output_dir, opts)? {
            Ok(files) => break files,
            Err((m, row)) if opts.bad_data == Policy::Fail || retried => {
                let src = open_unit(store, &Quiet(report), preps[m].unit, opts)?;
                return Err(row.error(&src)?);
            }
            Err(_) => {
                // The first bad row aborts the attempt (its writers are dropped and the files it
                // had finished deleted, so nothing is left); find every bad row of every
                // segment, then write again without them.
                retried = true;
                progress.this.set((0, 0));
                for p in &mut preps {
                    let src = open_unit(store, &Quiet(report), p.unit, opts)?;
                    let bad = find_non_finite(&src, &p.gone)?;
                    for &r in &bad {
                        let (id, v) = src.row(r)?;
                        let reason = BadRow { row: r, value: first_non_finite(&v).unwrap_or(0) }.reason(&v);
                        p.rejects.drop(Dropped { file: &src.rv.path, row: r as i64, id: Some(id), vector: Some(&v), reason }, Kind::Row)?;
                        p.gone.add(r);
                    }
                    p.dropped_rows.extend(bad);
                }
            }
        }
    };
    let mut reports = Vec::with_capacity(preps.len());
    for mut p in preps {
        p.dropped_rows.sort_unstable();
        let (live, unit, where_) = (p.live(), p.unit, &p.where_);
        if live + p.dropped_rows.len() as u64 != unit.rows {
            report.log(
                Level::Warn,
                &format!(
                    "segment {} of {where_}: {} live rows in the files ({} - {} deleted), the meta says {}",
                    unit.segment_id,
                    live + p.dropped_rows.len() as u64,
                    p.rows,
                    p.deleted,
                    unit.rows
                ),
            );
        }
        if p.rejects.rows + p.rejects.deletes > 0 {
            report.log(
                Level::Warn,
                &format!(
                    "segment {} of {where_}: {} row(s) and {} deletion(s) dropped (migration.badData: {})",
                    unit.segment_id,
                    p.rejects.rows,
                    p.rejects.deletes,
                    opts.bad_data.name()
                ),
            );
        }
        reports.push(SegmentReport {
            rows_in: p.rows_in,
            deleted: p.deleted,
            rows_out: live,
            bytes_in: p.bytes_in,
            files: vec![],
            dropped_rows: core::mem::take(&mut p.dropped_rows),
            ignored_deletes: p.rejects.deletes,
            duplicates_dropped: p.rejects.duplicates,
            rejects: p.rejects.finish()?,
        });
    }
    Ok((reports, files))
}

/// What a unit's `deleted_docs` is checked against: its meta row count, strictly under `fail`.
pub fn unit_expect(unit: &SegmentUnit, opts: &DumpOptions) -> Expect {
    Expect { meta_rows: Some(unit.rows), strict: opts.bad_data == Policy::Fail }
}

/// The policy's hint, added to a `fail` message.
fn with_hint(e: Error) -> Error {
    match e {
        Error::InvalidInput { file, offset, reason } => Error::InvalidInput {
            file,
            offset,
            reason: format!("{reason} (migration.badData: skip or reject drops such rows and carries on)"),
        },
        e => e,
    }
}

/// Counts (and rejects) the tail of the longer of `.uid`/`.rv`.
fn drop_unpaired<S: Store>(src: &SegmentSource<S::R>, u: &Unpaired, rejects: &mut Rejects<S>) -> Result<()> {
    let ids = u.file == src.uid.path;
    for k in 0..u.rows {
        let r = src.rows + k;
        let (id, vector) = if ids {
            src.uid.reader.seek(8 + r * ID_BYTES)?;
            let b = read_exact(&src.uid.reader, ID_BYTES as usize, &src.uid.path, 8 + r * ID_BYTES)?;
            (Some(i64::from_le_bytes(b[..8].try_into().expect("8 bytes"))), None)
        } else {
            src.rv.reader.seek(8 + r * src.row_bytes)?;
            (None, Some(read_exact(&src.rv.reader, src.row_bytes as usize, &src.rv.path, 8 + r * src.row_bytes)?))
        };
        let other = if ids { &src.rv.path } else { &src.uid.path };
        let reason = format!("row {r} of {} has no partner: {other} holds only {} rows", u.file, src.rows);
        rejects.drop(Dropped { file: &u.file, row: r as i64, id, vector: vector.as_deref(), reason }, Kind::Row)?;
    }
    Ok(())
}

/// A live row with a NaN or infinite component (Milvus 2.x refuses such vectors).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BadRow {
    pub row: u64,
    /// Index of the first bad component.
    pub value: usize,
}

impl BadRow {
    fn reason(&self, vector: &[u8]) -> String {
        let v = &vector[self.value * 4..self.value * 4 + 4];
        format!("component {} of the vector is {}; Milvus 2.x accepts only finite floats", self.value, float_name(v.try_into().expect("4 bytes")))
    }

    fn error<R: crate::io::Reader>(&self, src: &SegmentSource<R>) -> Result<Error> {
        let (id, v) = src.row(self.row)?;
        let at = 8 + self.row * src.row_bytes + 4 * self.value as u64;
        Ok(with_hint(Error::invalid(src.rv.path.as_str(), Some(at), format!("row {} (id {id}): {}", self.row, self.reason(&v)))))
    }
}

/// Every live row (not in `gone`) with a non-finite component, in one pass over `.rv`.
fn find_non_finite<R: crate::io::Reader>(src: &SegmentSource<R>, gone: &DeletedSet) -> Result<Vec<u64>> {
    let rb = src.row_bytes;
    let chunk_rows = ((1u64 << 20) / rb).max(1);
    let mut out = Vec::new();
    let mut row = 0;
    while row < src.rows {
        let n = chunk_rows.min(src.rows - row);
        src.rv.reader.seek(8 + row * rb)?;
        let buf = read_exact(&src.rv.reader, (n * rb) as usize, &src.rv.path, 8 + row * rb)?;
        for (i, v) in buf.chunks_exact(rb as usize).enumerate() {
            if !gone.contains(row + i as u64) && first_non_finite(v).is_some() {
                out.push(row + i as u64);
            }
        }
        row += n;
    }
    Ok(out)
}

/// Progress across write attempts: an attempt aborted by a bad row has already reported its
/// first chunks, which the retry writes again, so only what goes beyond the furthest attempt
/// so far is passed on (each row and byte is counted once).
struct Attempts<'a, R> {
    report: &'a R,
    /// Rows and bytes the current attempt has reported.
    this: Cell<(u64, u64)>,
    /// Rows and bytes passed on.
    shown: Cell<(u64, u64)>,
}

impl<R: Report> Report for Attempts<'_, R> {
    fn log(&self, level: Level, message: &str) {
        self.report.log(level, message);
    }
    fn progress(&self, rows: u64, bytes: u64) {
        let ((r, b), (sr, sb)) = (self.this.get(), self.shown.get());
        let (r, b) = (r + rows, b + bytes);
        self.this.set((r, b));
        if r > sr || b > sb {
            self.report.progress(r.saturating_sub(sr), b.saturating_sub(sb));
            self.shown.set((r.max(sr), b.max(sb)));
        }
    }
}

/// Streams the live rows of every prepared segment, in order, into the npy files of file
/// groups under `dir`. The outer error is a failure; the inner one the first live row with a
/// non-finite float (and its segment), in which case nothing was published.
#[allow(clippy::type_complexity)]
fn write_live<S: Store>(
    store: &S,
    report: &impl Report,
    preps: &[Prepared<'_, '_, S>],
    dir: &str,
    opts: &DumpOptions,
) -> Result<core::result::Result<Vec<Written>, (usize, BadRow)>> {
    let live: u64 = preps.iter().map(Prepared::live).sum();
    if live == 0 {
        let bytes: u64 = preps.iter().map(|p| p.bytes_in).sum();
        if let [p] = preps {
            report.log(Level::Info, &format!("segment {} of {} has no live rows; nothing written", p.unit.segment_id, p.where_));
        }
        report.progress(0, bytes);
        return Ok(Ok(vec![]));
    }
    let first = preps[0].unit;
    let mut out = GroupWriter::start(store, FileGroups::new(live, preps[0].row_bytes(), opts.max_group_bytes, dir), first, opts)?;
    for (m, p) in preps.iter().enumerate() {
        let src = open_unit(store, &Quiet(report), p.unit, opts)?;
        if let Err(bad) = out.stream(report, &src, &p.gone, p.unit.vector == VectorKind::Float)? {
            out.abandon()?;
            return Ok(Err((m, bad)));
        }
    }
    Ok(Ok(out.finish()?))
}

/// The npy files of a stream of live rows cut into file groups: the group being written, and
/// the files of the groups finished.
struct GroupWriter<'a, S: Store> {
    store: &'a S,
    groups: FileGroups<'a>,
    opts: &'a DumpOptions,
    vector: VectorKind,
    dim: u32,
    row_bytes: u64,
    part: u64,
    in_part: u64,
    /// The files of the current group.
    out: Out<S::W>,
    files: Vec<Written>,
}

/// A file group's files as they are written: `<vector>.npy` and `<id>.npy`, or one
/// `rows.parquet` (`migration.format: parquet`).
enum Out<W: crate::io::Writer> {
    Npy { vectors: W, ids: W },
    Parquet(ParquetGroup<W>),
}

impl<W: crate::io::Writer> Out<W> {
    /// Closes the group's files into `files`: vectors first, ids last, so that a reader that
    /// finds id.npy knows its sibling is complete.
    fn finish(self, files: &mut Vec<Written>) -> Result<()> {
        match self {
            Out::Npy { vectors, ids } => {
                files.push(vectors.finish()?);
                files.push(ids.finish()?);
            }
            Out::Parquet(p) => files.push(p.finish()?),
        }
        Ok(())
    }
}

impl<'a, S: Store> GroupWriter<'a, S> {
    fn start(store: &'a S, groups: FileGroups<'a>, unit: &SegmentUnit, opts: &'a DumpOptions) -> Result<Self> {
        let row_bytes = unit.vector.row_bytes(unit.dim).unwrap_or(1);
        let out = Self::open(store, &groups, 0, unit.vector, unit.dim, row_bytes, opts)?;
        Ok(GroupWriter { store, groups, opts, vector: unit.vector, dim: unit.dim, row_bytes, part: 0, in_part: 0, out, files: vec![] })
    }

    fn open(store: &S, groups: &FileGroups, k: u64, vector: VectorKind, dim: u32, row_bytes: u64, opts: &DumpOptions) -> Result<Out<S::W>> {
        let (dir, n) = (groups.dir(k), groups.rows(k));
        if opts.format == FileFormat::Parquet {
            let path = format!("{dir}/{}", crate::parquet::FILE_NAME);
            let out = store.create(Role::Target, &path)?;
            return Ok(Out::Parquet(ParquetGroup::new(out, &path, &opts.id_field, &opts.vector_field, vector, dim)?));
        }
        let vec_out = store.create(Role::Target, &paths::npy_file(&dir, &opts.vector_field))?;
        let id_out = store.create(Role::Target, &paths::npy_file(&dir, &opts.id_field))?;
        let header = match vector {
            VectorKind::Float => npy::header(Dtype::F4, &[n, dim as u64]),
            VectorKind::Binary => npy::header(Dtype::U1, &[n, row_bytes]),
        };
        vec_out.write(&header)?;
        id_out.write(&npy::header(Dtype::I8, &[n]))?;
        Ok(Out::Npy { vectors: vec_out, ids: id_out })
    }

    /// Room left in the current group.
    fn room(&self) -> u64 {
        self.groups.rows(self.part) - self.in_part
    }

    /// Counts `n` rows written; moves to the next group when this one is full.
    fn advance(&mut self, n: u64) -> Result<()> {
        self.in_part += n;
        if self.in_part == self.groups.rows(self.part) && self.part + 1 < self.groups.count {
            let next = Self::open(self.store, &self.groups, self.part + 1, self.vector, self.dim, self.row_bytes, self.opts)?;
            core::mem::replace(&mut self.out, next).finish(&mut self.files)?;
            (self.part, self.in_part) = (self.part + 1, 0);
        }
        Ok(())
    }

    /// Streams the live rows (not in `gone`) of one segment, `.rv` and `.uid` in step, chunk by
    /// chunk; `check` looks for non-finite floats.
    fn stream(&mut self, report: &impl Report, src: &SegmentSource<S::R>, gone: &DeletedSet, check: bool) -> Result<core::result::Result<(), BadRow>> {
        let (uid, rv, rows, row_bytes) = (&src.uid, &src.rv, src.rows, src.row_bytes);
        uid.reader.seek(8)?;
        rv.reader.seek(8)?;
        let chunk_rows = (self.opts.read_chunk as u64 / row_bytes).max(1);
        let mut row = 0u64;
        while row < rows {
            let n = chunk_rows.min(rows - row);
            let mut ids = read_exact(&uid.reader, (n * ID_BYTES) as usize, &uid.path, 8 + row * ID_BYTES)?;
            let runs = live_runs(gone, row, row + n);
            // Few long runs into npy: the host copies (and checks) the vector bytes itself. Many
            // short ones, or Parquet: they pass through here, checked and compacted.
            let direct = runs.len() <= MAX_DIRECT_RUNS && matches!(self.out, Out::Npy { .. });
            let mut vecs = Vec::new();
            if !direct {
                rv.reader.seek(8 + row * row_bytes)?;
                vecs = read_exact(&rv.reader, (n * row_bytes) as usize, &rv.path, 8 + row * row_bytes)?;
                if check {
                    if let Some(bad) = first_live_non_finite(&vecs, row, row_bytes, gone) {
                        return Ok(Err(bad));
                    }
                }
            }
            // One run that is not the whole chunk (its first rows deleted) needs compacting too.
            if runs.len() != 1 || runs[0] != (row, row + n) {
                if !direct {
                    compact(&mut vecs, row_bytes as usize, n as usize, row, gone);
                }
                compact(&mut ids, ID_BYTES as usize, n as usize, row, gone);
            }
            let mut off = 0u64; // live rows of this chunk done
            for (start, end) in runs {
                let mut s = start;
                while s < end {
                    let take = (end - s).min(self.room());
                    let id_bytes = &ids[(off * ID_BYTES) as usize..((off + take) * ID_BYTES) as usize];
                    match &mut self.out {
                        Out::Npy { vectors, ids: id_out } => {
                            if direct {
                                if let Some(at) = self.store.append(vectors, &rv.reader, 8 + s * row_bytes, take * row_bytes, check)? {
                                    let r = (at - 8) / row_bytes;
                                    return Ok(Err(BadRow { row: r, value: ((at - 8 - r * row_bytes) / 4) as usize }));
                                }
                            } else {
                                vectors.write(&vecs[(off * row_bytes) as usize..((off + take) * row_bytes) as usize])?;
                            }
                            id_out.write(id_bytes)?;
                        }
                        Out::Parquet(p) => p.push(id_bytes, &vecs[(off * row_bytes) as usize..((off + take) * row_bytes) as usize])?,
                    }
                    (s, off) = (s + take, off + take);
                    self.advance(take)?;
                }
            }
            report.progress(off, n * (row_bytes + ID_BYTES));
            row += n;
        }
        Ok(Ok(()))
    }

    fn finish(mut self) -> Result<Vec<Written>> {
        debug_assert_eq!((self.part + 1, self.in_part), (self.groups.count, self.groups.rows(self.part)));
        self.out.finish(&mut self.files)?;
        Ok(self.files)
    }

    /// Ends a write attempt at a bad row: the groups already finished are deleted (the retry
    /// may cut the rows into other groups, or into one plain file, and must not find them);
    /// the current one is dropped, which aborts it.
    fn abandon(self) -> Result<()> {
        for f in &self.files {
            self.store.delete(Role::Target, &f.path)?;
        }
        Ok(())
    }
}

/// The first live row of `vecs` (rows from `first`) with a non-finite component.
fn first_live_non_finite(vecs: &[u8], first: u64, row_bytes: u64, gone: &DeletedSet) -> Option<BadRow> {
    let mut from = 0usize;
    while let Some(i) = first_non_finite(&vecs[from..]) {
        let byte = from + 4 * i;
        let r = byte as u64 / row_bytes;
        if !gone.contains(first + r) {
            return Some(BadRow { row: first + r, value: ((byte as u64 - r * row_bytes) / 4) as usize });
        }
        from = ((r + 1) * row_bytes) as usize;
        if from >= vecs.len() {
            break;
        }
    }
    None
}

/// How a segment's live rows are cut into file groups (one import each) so that no group
/// exceeds the target's limits. One group keeps the plain layout `<dir>/<field>.npy`; several
/// go to `<dir>/part-0000/`, `<dir>/part-0001/`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileGroups<'a> {
    pub live: u64,
    pub per_group: u64,
    pub count: u64,
    dir: &'a str,
}

impl<'a> FileGroups<'a> {
    /// `max_group_bytes` bounds the npy payload of one group (0: no bound).
    pub fn new(live: u64, row_bytes: u64, max_group_bytes: u64, dir: &'a str) -> Self {
        let per_group = if max_group_bytes == 0 { u64::MAX } else { (max_group_bytes / (row_bytes + ID_BYTES)).max(1) };
        FileGroups { live, per_group, count: live.div_ceil(per_group).max(1), dir }
    }

    pub fn rows(&self, k: u64) -> u64 {
        let start = k.saturating_mul(self.per_group).min(self.live);
        (self.live - start).min(self.per_group)
    }

    pub fn dir(&self, k: u64) -> String {
        if self.count == 1 {
            self.dir.to_string()
        } else {
            format!("{}/part-{k:04}", self.dir)
        }
    }
}

#[cfg(test)]
#[path = "dump_tests.rs"]
mod tests;
