//! A dump's file group read back: its rows in order (`loadMode: insert`, `verify --full`) or
//! the vectors of chosen rows (`repair`), from its npy pair or its `rows.parquet`, whatever store
//! holds it. Memory stays bounded: npy is read in ranges; Parquet through the store's ranged
//! reads one row group's column chunk at a time (arrow-rs reader over a [`ChunkReader`]).
use crate::prelude::*;
use alloc::rc::Rc;
use core::cell::RefCell;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type, UInt8Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection};
use parquet::arrow::ProjectionMask;
use parquet::file::reader::{ChunkReader, Length};

use crate::error::{Error, Result};
use crate::io::{read_exact, Reader, Role, Store};
use crate::load::{CollectionLoad, FileGroup};
use crate::meta::VectorKind;

/// Rows the Parquet reader decodes at a time.
const DECODE_ROWS: usize = 8192;

/// Where a group's rows are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GroupFiles {
    /// `<id field>.npy` and `<vector field>.npy`.
    Npy { ids: String, vectors: String },
    /// `rows.parquet` (`migration.format: parquet`).
    Parquet(String),
}

/// What a group's rows look like: how many, and their vectors.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub rows: u64,
    pub vector: VectorKind,
    pub dim: u32,
    pub id_field: String,
    pub vector_field: String,
}

impl Shape {
    /// The rows of group `g` of collection `c`.
    pub fn of(c: &CollectionLoad, g: &FileGroup) -> Self {
        Shape { rows: g.rows, vector: c.vector, dim: c.dim, id_field: c.id_field.clone(), vector_field: c.vector_field.clone() }
    }

    /// Bytes of one vector.
    pub fn width(&self) -> u64 {
        match self.vector {
            VectorKind::Float => self.dim as u64 * 4,
            VectorKind::Binary => self.dim as u64 / 8,
        }
    }
}

impl GroupFiles {
    /// The files of group `g` holding the fields `id_field` and `vector_field`.
    pub fn of(g: &FileGroup, id_field: &str, vector_field: &str) -> Result<Self> {
        let suffix = format!("/{}", crate::parquet::FILE_NAME);
        if let Some(p) = g.files.iter().find(|f| f.ends_with(&suffix)) {
            return Ok(GroupFiles::Parquet(p.clone()));
        }
        let npy = |field: &str| {
            let suffix = format!("/{field}.npy");
            g.files.iter().find(|f| f.ends_with(&suffix)).cloned().ok_or_else(|| {
                Error::invalid(g.dir.as_str(), None, format!("no {field}.npy and no {} in the group", crate::parquet::FILE_NAME))
            })
        };
        Ok(GroupFiles::Npy { ids: npy(id_field)?, vectors: npy(vector_field)? })
    }

    /// The file errors name: the Parquet file, or the vector file.
    pub fn path(&self) -> &str {
        match self {
            GroupFiles::Npy { vectors, .. } => vectors,
            GroupFiles::Parquet(p) => p,
        }
    }
}

/// A group's rows in order, from a given row on.
pub(crate) enum RowReader<R: Reader> {
    /// `left`: rows not yet read.
    Npy { ids: Column<R>, vectors: Option<Column<R>>, width: u64, left: u64 },
    Parquet(ParquetRows),
}

/// Opens the rows of `files` at row `from`; without `vectors`, only the keys are read.
pub(crate) fn open<S: Store>(store: &S, files: &GroupFiles, shape: &Shape, from: u64, vectors: bool) -> Result<RowReader<S::R>> {
    let width = shape.width();
    match files {
        GroupFiles::Npy { ids, vectors: vpath } => {
            let mut ids = column(store, ids, shape.rows)?;
            ids.skip(from * 8)?;
            let vectors = if vectors {
                let mut v = column(store, vpath, shape.rows)?;
                v.skip(from * width)?;
                Some(v)
            } else {
                None
            };
            Ok(RowReader::Npy { ids, vectors, width, left: shape.rows.saturating_sub(from) })
        }
        GroupFiles::Parquet(path) => {
            let file = ParquetFile::open(store, path, shape)?;
            Ok(RowReader::Parquet(file.rows(from, vectors)?))
        }
    }
}

impl<R: Reader + 'static> RowReader<R> {
    /// The next `n` rows, which the group must hold (else an error naming `files`).
    pub fn take(&mut self, n: u64, files: &GroupFiles, shape: &Shape) -> Result<(Vec<i64>, Vec<u8>)> {
        let (ids, vectors) = self.next(n)?;
        if ids.len() as u64 != n {
            return Err(Error::invalid(files.path(), None, format!("the file ends {} rows early (the manifest says {} rows)", n - ids.len() as u64, shape.rows)));
        }
        Ok((ids, vectors))
    }

    /// The next `n` rows (fewer at the end): their keys, and their vectors back to back (empty
    /// without vectors).
    pub fn next(&mut self, n: u64) -> Result<(Vec<i64>, Vec<u8>)> {
        match self {
            RowReader::Npy { ids, vectors, width, left } => {
                let n = n.min(*left);
                *left -= n;
                let keys = ids.take(n as usize * 8)?;
                let keys = keys.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
                let vecs = match vectors {
                    Some(v) => v.take((n * *width) as usize)?,
                    None => vec![],
                };
                Ok((keys, vecs))
            }
            RowReader::Parquet(p) => p.next(n as usize),
        }
    }
}

/// The vectors of rows `rows` (ascending, no repeats) of a group, back to back in that order.
pub(crate) fn vectors_at<S: Store>(store: &S, files: &GroupFiles, shape: &Shape, rows: &[u64]) -> Result<Vec<u8>> {
    debug_assert!(rows.windows(2).all(|w| w[0] < w[1]), "rows ascending and distinct");
    let width = shape.width();
    match files {
        GroupFiles::Npy { vectors, .. } => {
            let col = column(store, vectors, shape.rows)?;
            let mut out = Vec::with_capacity(rows.len() * width as usize);
            for &row in rows {
                let at = col.at + row * width;
                col.r.seek(at)?;
                out.extend_from_slice(&read_exact(&col.r, width as usize, &col.path, at)?);
            }
            Ok(out)
        }
        GroupFiles::Parquet(path) => ParquetFile::open(store, path, shape)?.vectors_at(rows),
    }
}

/// One npy file of a group, positioned at a row.
pub(crate) struct Column<R> {
    r: R,
    path: String,
    /// Where the next row starts (after the header: the first row).
    at: u64,
}

/// Opens the npy file `path` and reads past its header, checking it holds `rows` rows.
fn column<S: Store>(store: &S, path: &str, rows: u64) -> Result<Column<S::R>> {
    let r = store.open(Role::Target, path)?;
    let head = read_exact(&r, 10, path, 0)?;
    if &head[..6] != b"\x93NUMPY" {
        return Err(Error::invalid(path, Some(0), "not an npy file"));
    }
    let hlen = u16::from_le_bytes([head[8], head[9]]) as usize;
    let dict = read_exact(&r, hlen, path, 10)?;
    let text = String::from_utf8_lossy(&dict);
    let shape = text.split("'shape': (").nth(1).and_then(|t| t.split([',', ')']).next()).and_then(|n| n.trim().parse::<u64>().ok());
    if shape != Some(rows) {
        return Err(Error::invalid(path, Some(10), format!("header says shape {shape:?}, the manifest {rows} rows")));
    }
    Ok(Column { r, path: path.into(), at: 10 + hlen as u64 })
}

impl<R: Reader> Column<R> {
    fn take(&mut self, n: usize) -> Result<Vec<u8>> {
        let b = read_exact(&self.r, n, &self.path, self.at)?;
        self.at += n as u64;
        Ok(b)
    }

    fn skip(&mut self, n: u64) -> Result<()> {
        if n > 0 {
            self.at += n;
            self.r.seek(self.at)?;
        }
        Ok(())
    }
}

/// A store reader as parquet's [`ChunkReader`]: every range it asks for is one ranged read.
/// Written here because no crate adapts a synchronous, engine-side reader (object_store's
/// adapter is async and host-side). The store's own error is kept, typed, when a read fails.
struct Chunks<R> {
    r: Rc<R>,
    size: u64,
    path: Rc<str>,
    failed: Rc<RefCell<Option<Error>>>,
}

// SAFETY: the component is single-threaded, and natively a reader is used only on the thread
// that opened it; parquet asks for Send + Sync for readers shared across threads, which never
// happens here.
unsafe impl<R> Send for Chunks<R> {}
unsafe impl<R> Sync for Chunks<R> {}

impl<R: Reader> Chunks<R> {
    fn keep(&self, e: Error) -> parquet::errors::ParquetError {
        let text = format!("{e:?}");
        *self.failed.borrow_mut() = Some(e);
        parquet::errors::ParquetError::General(text)
    }
}

impl<R: Reader> Length for Chunks<R> {
    fn len(&self) -> u64 {
        self.size
    }
}

/// Reads on from where [`ChunkReader::get_read`] put the shared reader (parquet's contract:
/// like `File::try_clone`, readers share one position).
struct ChunkRead<R> {
    r: Rc<R>,
    failed: Rc<RefCell<Option<Error>>>,
}

impl<R: Reader> std::io::Read for ChunkRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let got = self.r.read(buf.len().min(u32::MAX as usize) as u32).map_err(|e| {
            let text = format!("{e:?}");
            *self.failed.borrow_mut() = Some(e);
            std::io::Error::other(text)
        })?;
        buf[..got.len()].copy_from_slice(&got);
        Ok(got.len())
    }
}

impl<R: Reader> ChunkReader for Chunks<R> {
    type T = ChunkRead<R>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<ChunkRead<R>> {
        self.r.seek(start).map_err(|e| self.keep(e))?;
        Ok(ChunkRead { r: self.r.clone(), failed: self.failed.clone() })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.r.seek(start).map_err(|e| self.keep(e))?;
        read_exact(&*self.r, length, &self.path, start).map(Bytes::from).map_err(|e| self.keep(e))
    }
}

/// An opened `rows.parquet`: its footer read and checked against the group.
struct ParquetFile<R: Reader + 'static> {
    builder: ParquetRecordBatchReaderBuilder<Chunks<R>>,
    failed: Rc<RefCell<Option<Error>>>,
    path: Rc<str>,
    shape: Shape,
}

impl<R: Reader + 'static> ParquetFile<R> {
    fn open<S: Store<R = R>>(store: &S, path: &str, shape: &Shape) -> Result<Self> {
        let r = store.open(Role::Target, path)?;
        let failed = Rc::new(RefCell::new(None));
        let path: Rc<str> = path.into();
        let chunks = Chunks { size: r.size(), r: Rc::new(r), path: path.clone(), failed: failed.clone() };
        let builder = ParquetRecordBatchReaderBuilder::try_new(chunks);
        let builder = match builder {
            Ok(b) => b,
            Err(e) => return Err(failed.borrow_mut().take().unwrap_or_else(|| Error::invalid(&*path, None, format!("not a readable Parquet file ({e})")))),
        };
        let rows = builder.metadata().file_metadata().num_rows();
        if rows != shape.rows as i64 {
            return Err(Error::invalid(&*path, None, format!("the file holds {rows} rows, the manifest {}", shape.rows)));
        }
        let schema = builder.schema().clone();
        let want = match shape.vector {
            VectorKind::Float => DataType::Float32,
            VectorKind::Binary => DataType::UInt8,
        };
        let field = |name: &str| schema.field_with_name(name).map(|f| f.data_type().clone()).ok();
        let vector_ok = matches!(field(&shape.vector_field), Some(DataType::List(item)) if *item.data_type() == want);
        if field(&shape.id_field) != Some(DataType::Int64) || !vector_ok || schema.fields().len() != 2 {
            return Err(Error::invalid(
                &*path,
                None,
                format!("expected columns {:?} int64 and {:?} list<{want}>, found {schema}", shape.id_field, shape.vector_field),
            ));
        }
        Ok(ParquetFile { builder, failed, path, shape: shape.clone() })
    }

    fn mask(&self, vectors: bool) -> ProjectionMask {
        let descr = self.builder.parquet_schema();
        let leaves: Vec<usize> = (0..descr.num_columns())
            .filter(|&i| {
                let name = descr.column(i).path().parts()[0].clone();
                name == self.shape.id_field || (vectors && name == self.shape.vector_field)
            })
            .collect();
        ProjectionMask::leaves(descr, leaves)
    }

    /// Its rows in order from `from`.
    fn rows(self, from: u64, vectors: bool) -> Result<ParquetRows> {
        let mask = self.mask(vectors);
        let ParquetFile { builder, failed, path, shape } = self;
        let batches = builder.with_projection(mask).with_batch_size(DECODE_ROWS).with_offset(from as usize).build();
        let batches = batches.map_err(|e| parquet_err(&failed, &path, e))?;
        Ok(ParquetRows { batches, failed, path, shape, vectors, ids: vec![], vecs: vec![] })
    }

    /// The vectors of `rows` (ascending, distinct), back to back.
    fn vectors_at(self, rows: &[u64]) -> Result<Vec<u8>> {
        let mut ranges: Vec<core::ops::Range<usize>> = Vec::new();
        for &row in rows {
            let row = row as usize;
            match ranges.last_mut() {
                Some(r) if r.end == row => r.end += 1,
                _ => ranges.push(row..row + 1),
            }
        }
        let total = self.shape.rows as usize;
        let selection = RowSelection::from_consecutive_ranges(ranges.into_iter(), total);
        let mask = self.mask(true);
        let ParquetFile { builder, failed, path, shape } = self;
        let batches = builder.with_projection(mask).with_batch_size(DECODE_ROWS).with_row_selection(selection).build();
        let batches = batches.map_err(|e| parquet_err(&failed, &path, e))?;
        let mut rows_of = ParquetRows { batches, failed, path, shape, vectors: true, ids: vec![], vecs: vec![] };
        let (got, vecs) = rows_of.next(rows.len())?;
        if got.len() != rows.len() {
            return Err(Error::invalid(&*rows_of.path, None, format!("{} of the {} rows asked for were read", got.len(), rows.len())));
        }
        Ok(vecs)
    }
}

/// The store's own error when a read failed under the Parquet reader, else the reader's.
fn parquet_err(failed: &RefCell<Option<Error>>, path: &str, e: impl core::fmt::Display) -> Error {
    failed.borrow_mut().take().unwrap_or_else(|| Error::invalid(path, None, format!("unreadable Parquet ({e})")))
}

/// Rows of a `rows.parquet` decoded in batches; rows decoded but not yet taken wait here.
pub(crate) struct ParquetRows {
    batches: ParquetRecordBatchReader,
    failed: Rc<RefCell<Option<Error>>>,
    path: Rc<str>,
    shape: Shape,
    vectors: bool,
    ids: Vec<i64>,
    vecs: Vec<u8>,
}

impl ParquetRows {
    /// The next `n` rows (fewer at the end of the file).
    fn next(&mut self, n: usize) -> Result<(Vec<i64>, Vec<u8>)> {
        while self.ids.len() < n {
            match self.batches.next() {
                None => break,
                Some(Err(e)) => return Err(parquet_err(&self.failed, &self.path, e)),
                Some(Ok(b)) => self.append(&b)?,
            }
        }
        let n = n.min(self.ids.len());
        let width = if self.vectors { self.shape.width() as usize } else { 0 };
        let rest_ids = self.ids.split_off(n);
        let rest_vecs = self.vecs.split_off(n * width);
        Ok((core::mem::replace(&mut self.ids, rest_ids), core::mem::replace(&mut self.vecs, rest_vecs)))
    }

    /// Appends a decoded batch, checking what the schema cannot say: no nulls, every vector of
    /// the dimension.
    fn append(&mut self, b: &RecordBatch) -> Result<()> {
        let path = &*self.path;
        let bad = |what: String| Error::invalid(path, None, what);
        let ids = b.column_by_name(&self.shape.id_field).ok_or_else(|| bad(format!("no column {:?}", self.shape.id_field)))?;
        if ids.null_count() > 0 {
            return Err(bad(format!("column {:?} holds nulls", self.shape.id_field)));
        }
        self.ids.extend_from_slice(ids.as_primitive::<Int64Type>().values());
        if !self.vectors {
            return Ok(());
        }
        let list = b.column_by_name(&self.shape.vector_field).ok_or_else(|| bad(format!("no column {:?}", self.shape.vector_field)))?;
        let list = list.as_list::<i32>();
        let items = match self.shape.vector {
            VectorKind::Float => self.shape.dim as usize,
            VectorKind::Binary => self.shape.dim as usize / 8,
        };
        let offsets = list.value_offsets();
        if list.null_count() > 0 || list.values().null_count() > 0 || offsets.windows(2).any(|w| (w[1] - w[0]) as usize != items) {
            return Err(bad(format!("column {:?} holds a null or a vector that is not {items} items long", self.shape.vector_field)));
        }
        let (start, end) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
        match self.shape.vector {
            VectorKind::Float => {
                let v = &list.values().as_primitive::<Float32Type>().values()[start..end];
                self.vecs.reserve(v.len() * 4);
                for f in v {
                    self.vecs.extend_from_slice(&f.to_le_bytes());
                }
            }
            VectorKind::Binary => self.vecs.extend_from_slice(&list.values().as_primitive::<UInt8Type>().values()[start..end]),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::memory::MemStore;
    use crate::npy::{header, Dtype};

    fn shape(rows: usize, vector: VectorKind, dim: u32) -> Shape {
        Shape { rows: rows as u64, vector, dim, id_field: "id".into(), vector_field: "data".into() }
    }

    /// The same rows as a Parquet file (rows.parquet) and as an npy pair, in one store whose
    /// reads return at most 1000 bytes a call.
    fn both(vector: VectorKind, dim: u32, rows: usize) -> (MemStore, Vec<i64>, Vec<u8>) {
        let (bytes, ids, vecs) = crate::parquet::tests::write(vector, dim, rows, 7_919);
        let store = MemStore { max_read: 1000, ..Default::default() };
        store.put(Role::Target, "p/rows.parquet", bytes);
        let mut id_file = header(Dtype::I8, &[rows as u64]);
        id_file.extend(ids.iter().flat_map(|i| i.to_le_bytes()));
        let (dtype, cols) = match vector {
            VectorKind::Float => (Dtype::F4, dim as u64),
            VectorKind::Binary => (Dtype::U1, dim as u64 / 8),
        };
        let mut vec_file = header(dtype, &[rows as u64, cols]);
        vec_file.extend_from_slice(&vecs);
        store.put(Role::Target, "n/id.npy", id_file);
        store.put(Role::Target, "n/data.npy", vec_file);
        (store, ids, vecs)
    }

    fn sources() -> [GroupFiles; 2] {
        [GroupFiles::Parquet("p/rows.parquet".into()), GroupFiles::Npy { ids: "n/id.npy".into(), vectors: "n/data.npy".into() }]
    }

    /// Read in uneven takes from any row on, across Parquet row groups (70 000 rows of 128 floats
    /// make two): exactly the rows written, from either format; keys alone without vectors.
    #[test]
    fn rows_come_back_in_order_from_any_row_in_either_format() {
        let (rows, dim) = (70_000, 128);
        let (store, ids, vecs) = both(VectorKind::Float, dim, rows);
        let w = dim as usize * 4;
        for files in sources() {
            for from in [0, 1, 64_526, 64_527, 69_999] {
                let mut r = open(&store, &files, &shape(rows, VectorKind::Float, dim), from as u64, true).unwrap();
                let (mut got_ids, mut got_vecs) = (vec![], vec![]);
                for n in [1, 10_000, 3, 100_000] {
                    let (i, v) = r.next(n).unwrap();
                    assert_eq!(v.len(), i.len() * w);
                    got_ids.extend(i);
                    got_vecs.extend(v);
                }
                assert_eq!(got_ids, ids[from..], "{files:?} from {from}");
                assert!(got_vecs == vecs[from * w..], "{files:?} from {from}");
            }
            let (keys, v) = open(&store, &files, &shape(rows, VectorKind::Float, dim), 5, false).unwrap().next(3).unwrap();
            assert_eq!((keys.as_slice(), v.len()), (&ids[5..8], 0));
        }
    }

    /// Chosen rows' vectors, in both formats, binary too: scattered, adjacent, at both ends.
    #[test]
    fn vectors_of_chosen_rows_come_back_in_row_order() {
        for (vector, dim) in [(VectorKind::Float, 128), (VectorKind::Binary, 256)] {
            let rows = 70_000;
            let (store, _, vecs) = both(vector, dim, rows);
            let s = shape(rows, vector, dim);
            let w = s.width() as usize;
            let want: [u64; 7] = [0, 1, 2, 5000, 64_526, 64_527, 69_999];
            for files in sources() {
                let got = vectors_at(&store, &files, &s, &want).unwrap();
                let expected: Vec<u8> = want.iter().flat_map(|&r| vecs[r as usize * w..(r as usize + 1) * w].to_vec()).collect();
                assert!(got == expected, "{vector:?} {files:?}");
            }
        }
    }

    /// A file that does not match its manifest or its collection is refused, naming the file.
    #[test]
    fn a_file_unlike_the_manifest_is_refused_naming_it() {
        let (store, _, _) = both(VectorKind::Float, 16, 100);
        let files = &sources()[0];
        let e = |s: Shape| open(&store, files, &s, 0, true).err().map(|e| format!("{e}")).unwrap_or_default();
        let rows = e(shape(99, VectorKind::Float, 16));
        assert!(rows.contains("p/rows.parquet") && rows.contains("holds 100 rows, the manifest 99"), "{rows}");
        let kind = e(shape(100, VectorKind::Binary, 16));
        assert!(kind.contains("p/rows.parquet") && kind.contains("list<UInt8>"), "{kind}");
        let field = e(Shape { id_field: "pk".into(), ..shape(100, VectorKind::Float, 16) });
        assert!(field.contains("\"pk\" int64"), "{field}");
        let dim = open(&store, files, &shape(100, VectorKind::Float, 8), 0, true).unwrap().next(10).err().map(|e| format!("{e}")).unwrap_or_default();
        assert!(dim.contains("not 8 items long"), "{dim}");
        store.put(Role::Target, "p/rows.parquet", b"PAR1 not really".to_vec());
        let junk = e(shape(100, VectorKind::Float, 16));
        assert!(junk.contains("p/rows.parquet") && junk.contains("not a readable Parquet file"), "{junk}");
    }
}
