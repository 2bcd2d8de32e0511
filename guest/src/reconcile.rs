//! `verify --full` and `repair`: every primary key of each partition reconciled against the
//! dump, in key ranges so memory stays bounded whatever the collection's size.
//!
//! The dump side: one pass over the partition's id files samples the keys and cuts the key
//! space into buckets of about [`BUCKET_ROWS`] rows; a second pass writes, per row, a 24-byte
//! record (key, a hash of its vector, where it is) into the bucket's scratch file under
//! `_verify/` (a partition that fits one bucket stays in memory). Each bucket is then sorted and
//! compared with the Milvus side of its key range.
//!
//! The Milvus side: count(*) of a key range counts every stored copy, a query returns one
//! entity per key and is complete only when the range holds at most the query window's copies
//! (more copies, and 2.3 returns fewer keys than it holds). A bucket is queried in windows of
//! dump keys and counted once; only when its count differs from the keys returned is each window
//! counted, and halved until its copies fit a query. Where a count exceeds the keys its query
//! returned, the repeated keys are found by halving the key list with count(*) `id in [...]`.
use crate::prelude::*;

use crate::error::{Error, Result};
use crate::group_rows::{self, GroupFiles, Shape};
use crate::io::{Level, Milvus, Reader, Report, Role, Rows, Store, Writer};
use crate::load::{CollectionLoad, PartitionLoad};
use crate::meta::VectorKind;

/// Dump rows per key-range bucket: 24 bytes each in memory while the bucket is compared.
const BUCKET_ROWS: u64 = 1 << 18;
/// Keys sampled to cut the buckets.
const SAMPLE: u64 = 1 << 14;
/// Rows read from the dump at a time.
const READ_ROWS: u64 = 1 << 13;
/// The server's query window (offset + limit) on 2.3-2.6.
const MAX_QUERY: u64 = 16_384;
/// Bytes of vectors one query may return.
const QUERY_BYTES: u64 = 8 << 20;
/// Keys per count(*) `id in [...]` when looking for repeated keys.
const COUNT_IDS: usize = 4096;
/// Bytes written to a bucket file at a time.
const FLUSH_BYTES: usize = 64 << 10;
/// Scratch files written at once. A store buffers each open file up to a part (8 MiB) before it
/// uploads, so open files cost host memory: with more buckets than this, the dump is read once per
/// group of buckets instead (reading is cheap next to the queries), and memory stays bounded.
const OPEN_WRITERS: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub max_listed: u32,
    pub repair: bool,
    pub delete_extra: bool,
    pub batch_rows: u32,
}

/// Keys of one kind of finding: how many, and the first of them in key order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Finding {
    pub count: u64,
    pub first: Vec<i64>,
}

impl Finding {
    fn add(&mut self, id: i64, max: u32) {
        self.count += 1;
        if self.first.len() < max as usize {
            self.first.push(id);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionReconcile {
    pub name: String,
    pub expected_rows: u64,
    pub milvus_rows: u64,
    pub missing: Finding,
    pub duplicated: Finding,
    pub extra: Finding,
    pub differing: Finding,
    pub repaired: u64,
    pub deleted: u64,
}

impl PartitionReconcile {
    pub fn clean(&self) -> bool {
        self.missing.count + self.duplicated.count + self.extra.count + self.differing.count == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReconcileReport {
    pub partitions: Vec<PartitionReconcile>,
    pub rows_elsewhere: u64,
}

impl ReconcileReport {
    pub fn clean(&self) -> bool {
        self.rows_elsewhere == 0 && self.partitions.iter().all(PartitionReconcile::clean)
    }
}

/// One dump row: its key, a hash of its vector's bytes, and where it is (file, row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rec {
    id: i64,
    hash: u64,
    file: u32,
    row: u32,
}

const REC_BYTES: usize = 24;

impl Rec {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.hash.to_le_bytes());
        out.extend_from_slice(&self.file.to_le_bytes());
        out.extend_from_slice(&self.row.to_le_bytes());
    }
    fn get(b: &[u8]) -> Rec {
        let eight = |at: usize| -> [u8; 8] { b[at..at + 8].try_into().expect("fixed width") };
        let four = |at: usize| -> [u8; 4] { b[at..at + 4].try_into().expect("fixed width") };
        Rec { id: i64::from_le_bytes(eight(0)), hash: u64::from_le_bytes(eight(8)), file: u32::from_le_bytes(four(16)), row: u32::from_le_bytes(four(20)) }
    }
}

fn hash(vector: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(vector)
}

/// The files of one file group, and its rows.
struct DumpFile {
    files: GroupFiles,
    shape: Shape,
}

/// The buckets' lower bounds (after the first, which starts at i64::MIN), from a systematic
/// sample of the partition's keys: about `rows / bucket_rows` buckets of similar size.
fn bounds(mut sample: Vec<i64>, rows: u64, bucket_rows: u64) -> Vec<i64> {
    let buckets = rows.div_ceil(bucket_rows);
    if buckets <= 1 || sample.is_empty() {
        return vec![];
    }
    sample.sort_unstable();
    let mut out: Vec<i64> = (1..buckets).map(|k| sample[(k * sample.len() as u64 / buckets) as usize]).collect();
    out.dedup();
    out.retain(|b| *b != i64::MIN);
    out
}

/// The key range of bucket `k` of those `bounds` cut.
fn bucket_range(bounds: &[i64], k: usize) -> (i64, i64) {
    let low = if k == 0 { i64::MIN } else { bounds[k - 1] };
    let high = if k == bounds.len() { i64::MAX } else { bounds[k] - 1 };
    (low, high)
}

/// Sizes the unit tests shrink to reach the paths of a large collection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    pub bucket_rows: u64,
    /// Scratch files open at once.
    pub open_writers: usize,
    /// Keys per query at most (the window, or fewer for wide vectors).
    pub max_query: u64,
}

pub fn reconcile_collection(store: &impl Store, milvus: &impl Milvus, report: &impl Report, c: &CollectionLoad, o: &Options) -> Result<ReconcileReport> {
    reconcile_tuned(store, milvus, report, c, o, Tuning { bucket_rows: BUCKET_ROWS, open_writers: OPEN_WRITERS, max_query: MAX_QUERY })
}

pub(crate) fn reconcile_tuned(store: &impl Store, milvus: &impl Milvus, report: &impl Report, c: &CollectionLoad, o: &Options, t: Tuning) -> Result<ReconcileReport> {
    milvus.flush(&c.name)?;
    crate::verify::ensure_loaded(milvus, report, c)?;
    let width = match c.vector {
        VectorKind::Float => c.dim as u64 * 4,
        VectorKind::Binary => c.dim as u64 / 8,
    };
    let mut out = ReconcileReport::default();
    let mut in_partitions = 0;
    for (pi, p) in c.partitions.iter().enumerate() {
        let limit = (QUERY_BYTES / (width + 8)).clamp(1, t.max_query) as u32;
        let mut run = Run { store, milvus, report, c, p, o, width, limit, bucket_rows: t.bucket_rows, open_writers: t.open_writers.max(1), files: vec![], out: Default::default() };
        run.partition(pi)?;
        in_partitions += run.out.milvus_rows;
        out.partitions.push(run.out);
    }
    let all = milvus.count_rows(&c.name, None)?;
    out.rows_elsewhere = all.saturating_sub(in_partitions);
    Ok(out)
}

struct Run<'a, S, M, R> {
    store: &'a S,
    milvus: &'a M,
    report: &'a R,
    c: &'a CollectionLoad,
    p: &'a PartitionLoad,
    o: &'a Options,
    width: u64,
    /// Keys per query.
    limit: u32,
    bucket_rows: u64,
    open_writers: usize,
    files: Vec<DumpFile>,
    out: PartitionReconcile,
}

/// What the repair does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fix {
    /// Upsert its one dump row.
    Upsert,
    /// Delete every stored copy and insert each of the dump's copies (a key the source repeats).
    Rewrite,
    /// Delete it (`delete-extra`).
    Delete,
}

impl<S: Store, M: Milvus, R: Report> Run<'_, S, M, R> {
    fn partition(&mut self, pi: usize) -> Result<()> {
        let (c, p) = (self.c, self.p);
        self.out.name = p.name.clone();
        for g in &p.groups {
            self.files.push(DumpFile { files: GroupFiles::of(g, &c.id_field, &c.vector_field)?, shape: Shape::of(c, g) });
        }
        self.out.expected_rows = self.files.iter().map(|f| f.shape.rows).sum();
        self.out.milvus_rows = self.milvus.count_in_range(&c.name, Some(&p.name), &c.id_field, i64::MIN, i64::MAX)?;
        let rows = self.out.expected_rows;
        // Pass 1: a systematic sample of the keys, to cut the buckets.
        let bounds = if rows > self.bucket_rows {
            let step = (rows / SAMPLE).max(1);
            let mut sample = Vec::new();
            let mut k = 0u64;
            for f in 0..self.files.len() {
                self.each_row(f, false, |id, _| {
                    if k % step == 0 {
                        sample.push(id);
                    }
                    k += 1;
                })?;
            }
            bounds(sample, rows, self.bucket_rows)
        } else {
            vec![]
        };
        let buckets = bounds.len() + 1;
        if buckets == 1 {
            let mut recs = Vec::with_capacity(rows as usize);
            for f in 0..self.files.len() {
                self.each_row(f, true, |id, (hash, row)| recs.push(Rec { id, hash, file: f as u32, row }))?;
            }
            return self.bucket(i64::MIN, i64::MAX, recs);
        }
        // Pass 2: every row's record into its bucket's scratch file, a group of files at a time.
        let path = |k: usize| format!("_verify/{}/{pi}/{k}.bin", c.name);
        self.report.log(Level::Info, &format!("partition {:?}: {rows} rows compared in {buckets} key ranges", p.name));
        for first in (0..buckets).step_by(self.open_writers) {
            let group = first..(first + self.open_writers).min(buckets);
            let mut writers = Vec::with_capacity(group.len());
            for k in group.clone() {
                writers.push((self.store.create(Role::Target, &path(k))?, Vec::new()));
            }
            for f in 0..self.files.len() {
                let mut failed = None;
                self.each_row(f, true, |id, (hash, row)| {
                    let k = bounds.partition_point(|b| *b <= id);
                    if !group.contains(&k) {
                        return;
                    }
                    let (w, buf) = &mut writers[k - first];
                    Rec { id, hash, file: f as u32, row }.put(buf);
                    if buf.len() >= FLUSH_BYTES && failed.is_none() {
                        failed = w.write(buf).err();
                        buf.clear();
                    }
                })?;
                if let Some(e) = failed {
                    return Err(e);
                }
            }
            for (w, buf) in writers.iter_mut() {
                w.write(buf)?;
                buf.clear();
            }
            for (w, _) in writers {
                w.finish()?;
            }
        }
        for k in 0..buckets {
            let r = self.store.open(Role::Target, &path(k))?;
            let size = r.size() as usize;
            let bytes = crate::io::read_exact(&r, size, &path(k), 0)?;
            let recs: Vec<Rec> = bytes.chunks_exact(REC_BYTES).map(Rec::get).collect();
            drop(bytes);
            let (low, high) = bucket_range(&bounds, k);
            self.bucket(low, high, recs)?;
            self.store.delete(Role::Target, &path(k))?;
        }
        Ok(())
    }

    /// Calls `each(id, (vector hash, row))` for every row of file `f`; with `vectors` false, the
    /// vectors are not read (the hash is 0).
    fn each_row(&self, f: usize, vectors: bool, mut each: impl FnMut(i64, (u64, u32))) -> Result<()> {
        let file = &self.files[f];
        let mut source = group_rows::open(self.store, &file.files, &file.shape, 0, vectors)?;
        let mut row = 0u64;
        while row < file.shape.rows {
            let n = READ_ROWS.min(file.shape.rows - row);
            let (keys, vs) = source.take(n, &file.files, &file.shape)?;
            for (i, id) in keys.into_iter().enumerate() {
                let h = if vectors { hash(&vs[i * self.width as usize..(i + 1) * self.width as usize]) } else { 0 };
                each(id, (h, (row + i as u64) as u32));
            }
            row += n;
        }
        Ok(())
    }

    /// Compares one bucket: the dump's records of keys `low..=high` with Milvus'.
    ///
    /// Each count(*) or query is a round trip (a host may make it wait for the server's clock:
    /// about 0.2 s at Strong consistency on 2.3.5), so the usual case takes one count for the
    /// bucket and one query per window of dump
    /// keys: when the bucket's stored copies equal the keys those queries returned, and none
    /// filled its window, every query was complete and no key is stored twice. Otherwise each
    /// window is counted and halved on its own ([`Self::walk`]).
    fn bucket(&mut self, low: i64, high: i64, mut recs: Vec<Rec>) -> Result<()> {
        recs.sort_unstable();
        let (c, p) = (self.c, self.p);
        let copies = self.milvus.count_in_range(&c.name, Some(&p.name), &c.id_field, low, high)?;
        // Windows of about 3/4 of a query's keys (room for keys the dump does not hold), never
        // splitting one key's records.
        let per = (self.limit as usize * 3 / 4).max(1);
        let mut windows: Vec<(i64, i64, core::ops::Range<usize>)> = Vec::new();
        let (mut from, mut i) = (low, 0);
        while i < recs.len() || windows.is_empty() {
            let mut j = (i + per).min(recs.len());
            while j < recs.len() && recs[j].id == recs[j - 1].id {
                j += 1;
            }
            let to = if j == recs.len() { high } else { recs[j].id - 1 };
            windows.push((from, to, i..j));
            if j == recs.len() {
                break;
            }
            (from, i) = (recs[j].id, j);
        }
        let mut found = Vec::with_capacity(windows.len());
        let (mut keys, mut complete) = (0u64, true);
        for (from, to, _) in &windows {
            let f = if copies == 0 { vec![] } else { self.query(*from, *to)? };
            keys += f.len() as u64;
            complete &= f.len() < self.limit as usize;
            found.push(f);
        }
        for ((from, to, r), f) in windows.into_iter().zip(found) {
            if complete && keys == copies {
                self.report.progress(r.len() as u64, 0);
                self.compare(&recs[r], &f, f.len() as u64)?;
            } else {
                self.walk(from, to, &recs[r])?;
            }
        }
        Ok(())
    }

    /// One entity per key of `low..=high` as (key, vector hash), in key order.
    fn query(&self, low: i64, high: i64) -> Result<Vec<(i64, u64)>> {
        let (c, p) = (self.c, self.p);
        let mut found: Vec<(i64, u64)> = self
            .milvus
            .query_range(&c.name, Some(&p.name), &c.id_field, &c.vector_field, low, high, self.limit)?
            .into_iter()
            .map(|e| (e.id, hash(&e.vector)))
            .collect();
        found.sort_unstable_by_key(|e| e.0);
        found.dedup_by_key(|e| e.0);
        Ok(found)
    }

    /// Halves `low..=high` until its stored copies fit one query, then compares.
    fn walk(&mut self, low: i64, high: i64, recs: &[Rec]) -> Result<()> {
        let (c, p) = (self.c, self.p);
        let copies = self.milvus.count_in_range(&c.name, Some(&p.name), &c.id_field, low, high)?;
        if copies > self.limit as u64 && low < high {
            let mid = ((low as i128 + high as i128).div_euclid(2)) as i64;
            let split = recs.partition_point(|r| r.id <= mid);
            self.walk(low, mid, &recs[..split])?;
            return self.walk(mid + 1, high, &recs[split..]);
        }
        let found = if copies == 0 { vec![] } else { self.query(low, high)? };
        self.report.progress(recs.len() as u64, 0);
        self.compare(recs, &found, copies)
    }

    fn compare(&mut self, recs: &[Rec], found: &[(i64, u64)], copies: u64) -> Result<()> {
        let (c, p, max) = (self.c, self.p, self.o.max_listed);
        let mut fixes: Vec<(i64, Fix)> = Vec::new();
        // Keys stored once as far as the query can tell (to search for repeats among).
        let mut singles: Vec<i64> = Vec::new();
        // Copies accounted for: one per key the query returned, exact for keys the source repeats.
        let mut accounted = found.len() as u64;
        let (mut i, mut j) = (0, 0);
        while i < recs.len() || j < found.len() {
            let next_rec = recs.get(i).map(|r| r.id);
            let next_found = found.get(j).map(|e| e.0);
            match (next_rec, next_found) {
                (Some(a), b) if b.is_none_or(|b| a < b) => {
                    let n = recs[i..].iter().take_while(|r| r.id == a).count();
                    self.out.missing.add(a, max);
                    fixes.push((a, if n > 1 { Fix::Rewrite } else { Fix::Upsert }));
                    i += n;
                }
                (a, Some(b)) if a.is_none_or(|a| b < a) => {
                    self.out.extra.add(b, max);
                    singles.push(b);
                    if self.o.delete_extra {
                        fixes.push((b, Fix::Delete));
                    }
                    j += 1;
                }
                (Some(a), Some(_)) => {
                    let n = recs[i..].iter().take_while(|r| r.id == a).count();
                    let mine = &recs[i..i + n];
                    let h = found[j].1;
                    let differs = !mine.iter().any(|r| r.hash == h);
                    if n > 1 {
                        // The source repeats it (duplicateIds: keep-all): as many copies as it holds.
                        let stored = self.milvus.count_ids(&c.name, Some(&p.name), &c.id_field, &[a])?;
                        accounted += stored - 1;
                        if stored < n as u64 {
                            self.out.missing.add(a, max);
                        } else if stored > n as u64 {
                            self.out.duplicated.add(a, max);
                        }
                        if differs {
                            self.out.differing.add(a, max);
                        }
                        if stored != n as u64 || differs {
                            fixes.push((a, Fix::Rewrite));
                        }
                    } else {
                        singles.push(a);
                        if differs {
                            self.out.differing.add(a, max);
                            fixes.push((a, Fix::Upsert));
                        }
                    }
                    i += n;
                    j += 1;
                }
                _ => unreachable!("one side has a next key"),
            }
        }
        if copies > accounted {
            let mut repeated = Vec::new();
            self.repeated(&singles, copies - accounted, &mut repeated)?;
            repeated.sort_unstable();
            for id in repeated {
                // A key not in the dump is extra however often it is stored.
                if recs.binary_search_by_key(&id, |r| r.id).is_ok() {
                    self.out.duplicated.add(id, max);
                    if !fixes.iter().any(|(f, _)| *f == id) {
                        fixes.push((id, Fix::Upsert));
                    }
                }
            }
        }
        if self.o.repair && !fixes.is_empty() {
            self.repair(recs, &fixes)?;
        }
        Ok(())
    }

    /// The keys among `ids` stored more than once, `excess` extra copies in all: halves the list
    /// with count(*) until each repeated key stands alone.
    fn repeated(&self, ids: &[i64], excess: u64, out: &mut Vec<i64>) -> Result<()> {
        if excess == 0 || ids.is_empty() {
            return Ok(());
        }
        if ids.len() > COUNT_IDS {
            let mut left = excess;
            for chunk in ids.chunks(COUNT_IDS) {
                let n = self.count(chunk)?.saturating_sub(chunk.len() as u64);
                self.repeated(chunk, n, out)?;
                left = left.saturating_sub(n);
                if left == 0 {
                    break;
                }
            }
            return Ok(());
        }
        if ids.len() == 1 {
            out.push(ids[0]);
            return Ok(());
        }
        let (a, b) = ids.split_at(ids.len() / 2);
        let in_a = self.count(a)?.saturating_sub(a.len() as u64);
        self.repeated(a, in_a, out)?;
        self.repeated(b, excess.saturating_sub(in_a), out)
    }

    fn count(&self, ids: &[i64]) -> Result<u64> {
        self.milvus.count_ids(&self.c.name, Some(&self.p.name), &self.c.id_field, ids)
    }

    /// Writes the dump's rows of the keys to fix, deletes the extra ones (`delete-extra`).
    fn repair(&mut self, recs: &[Rec], fixes: &[(i64, Fix)]) -> Result<()> {
        let (c, p) = (self.c, self.p);
        let of = |want: Fix| fixes.iter().filter(move |(_, f)| *f == want).map(|(id, _)| *id);
        let deletes: Vec<i64> = of(Fix::Delete).collect();
        let rewrites: Vec<i64> = of(Fix::Rewrite).collect();
        for chunk in deletes.chunks(COUNT_IDS).chain(rewrites.chunks(COUNT_IDS)) {
            self.milvus.delete_ids(&c.name, &p.name, &c.id_field, chunk)?;
        }
        self.out.deleted += deletes.len() as u64;
        let rows_of = |ids: Vec<i64>| -> Vec<Rec> {
            let mut out: Vec<Rec> = Vec::new();
            for id in ids {
                let at = recs.partition_point(|r| r.id < id);
                out.extend(recs[at..].iter().take_while(|r| r.id == id));
            }
            out
        };
        let upserts = rows_of(of(Fix::Upsert).collect());
        let inserts = rows_of(rewrites.clone());
        let batch = self.o.batch_rows.max(1) as usize;
        for chunk in upserts.chunks(batch) {
            let rows = self.rows(chunk)?;
            self.milvus.upsert(&c.name, &p.name, &rows)?;
        }
        for chunk in inserts.chunks(batch) {
            let rows = self.rows(chunk)?;
            self.milvus.insert(&c.name, &p.name, &rows)?;
        }
        let fixed = upserts.iter().map(|r| r.id).chain(rewrites.iter().copied()).collect::<alloc::collections::BTreeSet<_>>().len();
        self.out.repaired += fixed as u64;
        self.report.log(Level::Info, &format!("partition {:?}: repaired {fixed} key(s), deleted {}", p.name, deletes.len()));
        Ok(())
    }

    /// The dump's rows at `recs`, read back from their files (and checked against their hashes).
    fn rows(&self, recs: &[Rec]) -> Result<Rows> {
        // Each file read once, its rows in file order; the rows then go out in `recs`' order.
        let mut wanted: alloc::collections::BTreeMap<u32, Vec<u64>> = Default::default();
        for r in recs {
            wanted.entry(r.file).or_default().push(r.row as u64);
        }
        let mut found: alloc::collections::BTreeMap<(u32, u64), Vec<u8>> = Default::default();
        for (f, mut rows) in wanted {
            rows.sort_unstable();
            rows.dedup();
            let file = &self.files[f as usize];
            let vecs = group_rows::vectors_at(self.store, &file.files, &file.shape, &rows)?;
            for (row, v) in rows.iter().zip(vecs.chunks_exact(self.width as usize)) {
                found.insert((f, *row), v.to_vec());
            }
        }
        let mut ids = Vec::with_capacity(recs.len());
        let mut vectors = Vec::with_capacity(recs.len() * self.width as usize);
        for r in recs {
            let v = &found[&(r.file, r.row as u64)];
            if hash(v) != r.hash {
                return Err(Error::invalid(
                    self.files[r.file as usize].files.path(),
                    None,
                    format!("row {}: the file changed while it was compared (its vector no longer matches)", r.row),
                ));
            }
            ids.push(r.id);
            vectors.extend_from_slice(v);
        }
        Ok(Rows {
            id_field: self.c.id_field.clone(),
            vector_field: self.c.vector_field.clone(),
            binary: self.c.vector == VectorKind::Binary,
            dim: self.c.dim,
            ids,
            vectors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_key_once() {
        let b = bounds((0..1000).rev().collect(), 3 * BUCKET_ROWS, BUCKET_ROWS);
        assert_eq!(b, [333, 666]);
        assert_eq!(bucket_range(&b, 0), (i64::MIN, 332));
        assert_eq!(bucket_range(&b, 1), (333, 665));
        assert_eq!(bucket_range(&b, 2), (666, i64::MAX));
        assert!(bounds(vec![5; 100], 3 * BUCKET_ROWS, BUCKET_ROWS) == [5]);
        assert!(bounds(vec![1, 2], 10, BUCKET_ROWS).is_empty());
    }

    #[test]
    fn records_round_trip() {
        let r = Rec { id: -7, hash: u64::MAX - 3, file: 9, row: 123_456 };
        let mut b = Vec::new();
        r.put(&mut b);
        assert_eq!(b.len(), REC_BYTES);
        assert_eq!(Rec::get(&b), r);
    }
}
