//! Converting one 1.x segment into npy files, streaming.
//!
//! Order: find the files by extension (as Milvus does), check both counted headers against
//! each other and the file sizes, read `deleted_docs` into a bitset, then, knowing the number
//! of live rows, write both npy headers and stream `.rv` and `.uid` in step, chunk by chunk,
//! dropping deleted rows in place. Memory: one chunk of each file plus one bit per row.

use crate::error::{Error, Result};
use crate::io::{read_exact, Level, Report, Role, Store, Writer, Written};
use crate::meta::VectorKind;
use crate::npy::{self, Dtype};
use crate::paths;
use crate::plan::{DumpOptions, SegmentUnit};
use crate::segment::deleted::Layout;
use crate::segment::{CountedFile, DeletedSet};

#[derive(Debug, Clone, PartialEq)]
pub struct SegmentReport {
    pub rows_in: u64,
    pub deleted: u64,
    pub rows_out: u64,
    pub bytes_in: u64,
    pub files: Vec<Written>,
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

/// A segment's source files, opened and checked: headers agree with each other, with the
/// file sizes and with the dimension; deletions read.
pub struct SegmentSource<R> {
    pub uid: CountedFile<R>,
    pub rv: CountedFile<R>,
    pub deleted: DeletedSet,
    pub rows: u64,
    pub row_bytes: u64,
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
pub fn open_segment<S: Store>(
    store: &S,
    report: &impl Report,
    table_id: &str,
    segment_id: &str,
    vector: VectorKind,
    dim: u32,
    what: &str,
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
    let rows = uid.rows(ID_BYTES, "8-byte ids")?;
    let rv = CountedFile::open(store.open(Role::Source, &rv_path)?, &rv_path)?;
    if rv.payload != rows * row_bytes {
        let hint = if rv.payload % row_bytes != 0 {
            format!("; {} bytes is not a whole number of rows, so the dimension {dim} does not match the row width", rv.payload)
        } else {
            format!(" (it holds {} rows)", rv.payload / row_bytes)
        };
        return Err(Error::invalid(
            rv_path.as_str(),
            Some(0),
            format!(
                "expected {} bytes of vectors ({rows} rows from {uid_path} x {row_bytes} bytes per {dim}-dim {} row), found {}{hint}",
                rows * row_bytes,
                vector.name(),
                rv.payload
            ),
        ));
    }
    let deleted_path = format!("{dir}/{}", paths::DELETED_DOCS);
    let deleted = if names.iter().any(|n| n == paths::DELETED_DOCS) {
        let (set, layout) = DeletedSet::read(&store.open(Role::Source, &deleted_path)?, &deleted_path, rows)?;
        if layout != Layout::Counted && layout != Layout::Empty {
            report.log(Level::Warn, &format!("{deleted_path}: read as {layout:?}"));
        }
        set
    } else {
        report.log(Level::Warn, &format!("{deleted_path} is missing: no rows of this segment are treated as deleted"));
        DeletedSet::empty(rows)
    };
    Ok(SegmentSource { uid, rv, deleted, rows, row_bytes })
}

pub fn dump_segment<S: Store>(
    store: &S,
    report: &impl Report,
    unit: &SegmentUnit,
    opts: &DumpOptions,
) -> Result<SegmentReport> {
    let where_ = if unit.partition_tag.is_empty() {
        format!("collection {:?}", unit.collection)
    } else {
        format!("collection {:?} partition {:?}", unit.collection, unit.partition_tag)
    };
    let src = open_segment(store, report, &unit.table_id, &unit.segment_id, unit.vector, unit.dim, &where_).map_err(|e| match e {
        Error::NotFound(m) => Error::NotFound(format!("{m} (the meta lists segment {} with {} rows)", unit.segment_id, unit.rows)),
        e => e,
    })?;
    let SegmentSource { uid, rv, deleted, rows, row_bytes } = src;
    let (uid_path, rv_path) = (uid.path.clone(), rv.path.clone());
    let live = rows - deleted.count();
    if live != unit.rows {
        report.log(
            Level::Warn,
            &format!(
                "segment {} of {where_}: {live} live rows in the files ({rows} - {} deleted), the meta says {}",
                unit.segment_id,
                deleted.count(),
                unit.rows
            ),
        );
    }
    let bytes_in = 2 * 8 + rows * (row_bytes + ID_BYTES);
    let mut result = SegmentReport { rows_in: rows, deleted: deleted.count(), rows_out: live, bytes_in, files: vec![] };
    if live == 0 {
        report.log(Level::Info, &format!("segment {} of {where_} has no live rows; nothing written", unit.segment_id));
        report.progress(0, bytes_in);
        return Ok(result);
    }

    let groups = FileGroups::new(live, row_bytes, opts.max_group_bytes, &unit.output_dir);
    let open = |k: u64| -> Result<(S::W, S::W)> {
        let (dir, n) = (groups.dir(k), groups.rows(k));
        let vec_out = store.create(Role::Target, &paths::npy_file(&dir, &opts.vector_field))?;
        let id_out = store.create(Role::Target, &paths::npy_file(&dir, &opts.id_field))?;
        let header = match unit.vector {
            VectorKind::Float => npy::header(Dtype::F4, &[n, unit.dim as u64]),
            VectorKind::Binary => npy::header(Dtype::U1, &[n, row_bytes]),
        };
        vec_out.write(&header)?;
        id_out.write(&npy::header(Dtype::I8, &[n]))?;
        Ok((vec_out, id_out))
    };
    let (mut part, mut in_part) = (0u64, 0u64);
    let mut out = open(0)?;

    let chunk_rows = (opts.read_chunk as u64 / row_bytes).max(1);
    let mut row = 0u64;
    let mut written = 0u64;
    while row < rows {
        let n = chunk_rows.min(rows - row);
        let mut ids = read_exact(&uid.reader, (n * ID_BYTES) as usize, &uid_path, 8 + row * ID_BYTES)?;
        let runs = live_runs(&deleted, row, row + n);
        // Few long runs: the host copies the vector bytes itself. Many short ones: they pass
        // through here, compacted, in one write per chunk.
        let direct = runs.len() <= MAX_DIRECT_RUNS;
        let mut vecs = Vec::new();
        if !direct {
            vecs = read_exact(&rv.reader, (n * row_bytes) as usize, &rv_path, 8 + row * row_bytes)?;
            if runs.len() != 1 {
                compact(&mut vecs, row_bytes as usize, n as usize, row, &deleted);
            }
        }
        if runs.len() != 1 || runs[0] != (row, row + n) {
            compact(&mut ids, ID_BYTES as usize, n as usize, row, &deleted);
        }
        let mut off = 0u64; // live rows of this chunk done
        for (start, end) in runs {
            let mut s = start;
            while s < end {
                let take = (end - s).min(groups.rows(part) - in_part);
                if direct {
                    store.append(&out.0, &rv.reader, 8 + s * row_bytes, take * row_bytes)?;
                } else {
                    out.0.write(&vecs[(off * row_bytes) as usize..((off + take) * row_bytes) as usize])?;
                }
                out.1.write(&ids[(off * ID_BYTES) as usize..((off + take) * ID_BYTES) as usize])?;
                (s, off, in_part) = (s + take, off + take, in_part + take);
                if in_part == groups.rows(part) && part + 1 < groups.count {
                    // Vectors first, ids last: a reader that finds id.npy knows its sibling is complete.
                    let (v, i) = std::mem::replace(&mut out, open(part + 1)?);
                    result.files.push(v.finish()?);
                    result.files.push(i.finish()?);
                    (part, in_part) = (part + 1, 0);
                }
            }
        }
        written += off;
        report.progress(off, n * (row_bytes + ID_BYTES));
        row += n;
    }
    debug_assert_eq!(written, live);
    result.files.push(out.0.finish()?);
    result.files.push(out.1.finish()?);
    Ok(result)
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
mod tests {
    use super::*;
    use crate::io::memory::{MemReport, MemStore};

    fn counted(payload: Vec<u8>) -> Vec<u8> {
        let mut v = (payload.len() as u64).to_le_bytes().to_vec();
        v.extend(payload);
        v
    }

    /// A float segment of `rows` rows, dim 2, row i = [i, -i], id = 1000 + i.
    fn segment(store: &MemStore, rows: u64, deleted: &[i32]) {
        let vecs: Vec<u8> = (0..rows).flat_map(|i| [i as f32, -(i as f32)]).flat_map(f32::to_le_bytes).collect();
        let ids: Vec<u8> = (0..rows).flat_map(|i| (1000 + i as i64).to_le_bytes()).collect();
        store.put(Role::Source, "t/s/s.rv", counted(vecs));
        store.put(Role::Source, "t/s/s.uid", counted(ids));
        store.put(Role::Source, "t/s/bloom_filter", vec![1, 2, 3]);
        store.put(Role::Source, "t/s/deleted_docs", counted(deleted.iter().flat_map(|d| d.to_le_bytes()).collect()));
    }

    fn unit(rows: u64) -> SegmentUnit {
        SegmentUnit {
            collection: "c".into(),
            partition_tag: String::new(),
            table_id: "t".into(),
            segment_id: "s".into(),
            vector: VectorKind::Float,
            dim: 2,
            rows,
            file_size: 0,
            output_dir: "c/_default/s".into(),
        }
    }

    fn body(store: &MemStore, path: &str) -> Vec<u8> {
        let b = store.get(Role::Target, path).expect(path);
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        b[10 + hlen..].to_vec()
    }

    #[test]
    fn drops_deleted_rows_across_chunks() {
        let store = MemStore { max_read: 7, ..Default::default() };
        segment(&store, 10, &[7, 2, 7, 9, 0]);
        let opts = DumpOptions { read_chunk: 24, ..Default::default() }; // 3 rows per chunk
        let report = MemReport::default();
        let r = dump_segment(&store, &report, &unit(6), &opts).unwrap();
        assert_eq!((r.rows_in, r.deleted, r.rows_out), (10, 4, 6));
        let ids: Vec<i64> =
            body(&store, "c/_default/s/id.npy").chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(ids, [1001, 1003, 1004, 1005, 1006, 1008]);
        let v: Vec<f32> =
            body(&store, "c/_default/s/data.npy").chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(v, [1., -1., 3., -3., 4., -4., 5., -5., 6., -6., 8., -8.]);
        assert_eq!(report.rows.get(), 6);
        let header = store.get(Role::Target, "c/_default/s/data.npy").unwrap();
        assert!(std::str::from_utf8(&header[10..70]).unwrap().contains("'shape': (6, 2), }"));
    }

    #[test]
    fn live_runs_and_the_pass_through_path() {
        let mut del = DeletedSet::empty(10);
        assert_eq!(live_runs(&del, 0, 10), [(0, 10)]);
        let store = MemStore::default();
        // Every other row deleted: more runs than MAX_DIRECT_RUNS, so rows pass through the engine.
        let rows = 2 * MAX_DIRECT_RUNS as u64 + 10;
        let deleted: Vec<i32> = (0..rows as i32).filter(|r| r % 2 == 1).collect();
        segment(&store, rows, &deleted);
        let r = dump_segment(&store, &MemReport::default(), &unit(rows / 2), &DumpOptions::default()).unwrap();
        assert_eq!(r.rows_out, rows / 2);
        let ids: Vec<i64> =
            body(&store, "c/_default/s/id.npy").chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(ids, (0..rows as i64).filter(|r| r % 2 == 0).map(|r| 1000 + r).collect::<Vec<_>>());
        let v: Vec<f32> = body(&store, "c/_default/s/data.npy").chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(v[2..4], [2.0, -2.0]);
        del = DeletedSet::read(&{
            store.put(Role::Source, "x", vec![8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0]);
            store.open(Role::Source, "x").unwrap()
        }, "x", 10).unwrap().0;
        assert_eq!(live_runs(&del, 0, 10), [(0, 1), (2, 5), (6, 10)]);
    }

    #[test]
    fn large_segments_are_split_into_groups() {
        let store = MemStore::default();
        segment(&store, 10, &[7, 2]);
        // 16 bytes per row (8 vector + 8 id): 48 bytes -> 3 rows per group -> 3 + 3 + 2.
        let opts = DumpOptions { read_chunk: 16, max_group_bytes: 48, ..Default::default() };
        let r = dump_segment(&store, &MemReport::default(), &unit(8), &opts).unwrap();
        let dirs: Vec<_> = r.files.iter().map(|f| f.path.rsplit_once('/').unwrap().0.to_string()).collect();
        assert_eq!(dirs, ["c/_default/s/part-0000", "c/_default/s/part-0000", "c/_default/s/part-0001", "c/_default/s/part-0001", "c/_default/s/part-0002", "c/_default/s/part-0002"]);
        let ids: Vec<i64> = (0..3)
            .flat_map(|k| body(&store, &format!("c/_default/s/part-{k:04}/id.npy")))
            .collect::<Vec<u8>>()
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(ids, [1000, 1001, 1003, 1004, 1005, 1006, 1008, 1009]);
        let last = store.get(Role::Target, "c/_default/s/part-0002/data.npy").unwrap();
        assert!(std::str::from_utf8(&last[10..70]).unwrap().contains("'shape': (2, 2), }"));
        let g = FileGroups::new(8, 8, 48, "d");
        assert_eq!((g.count, g.rows(0), g.rows(2)), (3, 3, 2));
        assert_eq!(FileGroups::new(8, 8, 0, "d").dir(0), "d");
    }

    #[test]
    fn all_deleted_writes_nothing() {
        let store = MemStore::default();
        segment(&store, 2, &[1, 0]);
        let r = dump_segment(&store, &MemReport::default(), &unit(0), &DumpOptions::default()).unwrap();
        assert_eq!(r.rows_out, 0);
        assert!(r.files.is_empty());
        assert!(store.paths(Role::Target).is_empty());
    }

    #[test]
    fn id_and_vector_counts_must_agree() {
        let store = MemStore::default();
        segment(&store, 3, &[]);
        store.put(Role::Source, "t/s/s.uid", counted(vec![0; 16]));
        let err = dump_segment(&store, &MemReport::default(), &unit(3), &DumpOptions::default()).unwrap_err().to_string();
        assert!(err.contains("t/s/s.rv") && err.contains("expected 16 bytes") && err.contains("found 24"), "{err}");
        assert!(store.paths(Role::Target).is_empty());
    }

    #[test]
    fn wrong_dimension_is_named() {
        let store = MemStore::default();
        segment(&store, 3, &[]);
        let mut u = unit(3);
        u.dim = 5;
        let err = dump_segment(&store, &MemReport::default(), &u, &DumpOptions::default()).unwrap_err().to_string();
        assert!(err.contains("dimension 5 does not match"), "{err}");
    }

    #[test]
    fn missing_uid_and_missing_dir() {
        let store = MemStore::default();
        segment(&store, 3, &[]);
        store.files.borrow_mut().retain(|k, _| !k.1.ends_with(".uid"));
        let err = dump_segment(&store, &MemReport::default(), &unit(3), &DumpOptions::default()).unwrap_err().to_string();
        assert!(err.contains("no .uid file in segment directory t/s"), "{err}");
        let err = dump_segment(&MemStore::default(), &MemReport::default(), &unit(3), &DumpOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("segment directory t/s of collection \"c\" is missing"), "{err}");
    }

    #[test]
    fn binary_rows_are_dim_over_8_bytes() {
        let store = MemStore::default();
        store.put(Role::Source, "t/s/s.rv", counted(vec![0xAA, 0x01, 0xBB, 0x02, 0xCC, 0x03]));
        store.put(Role::Source, "t/s/s.uid", counted((0..3i64).flat_map(i64::to_le_bytes).collect()));
        store.put(Role::Source, "t/s/deleted_docs", counted(1i32.to_le_bytes().to_vec()));
        let mut u = unit(2);
        u.vector = VectorKind::Binary;
        u.dim = 16;
        let r = dump_segment(&store, &MemReport::default(), &u, &DumpOptions::default()).unwrap();
        assert_eq!(r.rows_out, 2);
        assert_eq!(body(&store, "c/_default/s/data.npy"), [0xAA, 0x01, 0xCC, 0x03]);
        let header = store.get(Role::Target, "c/_default/s/data.npy").unwrap();
        assert!(std::str::from_utf8(&header[10..70]).unwrap().starts_with("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }"));
    }
}
