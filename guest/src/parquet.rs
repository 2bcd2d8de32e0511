//! One file group as one Parquet file (`migration.format: parquet`), streamed: rows arrive in
//! chunks and leave in row groups of about 32 MiB, so memory follows the row group, not the file.
//!
//! What Milvus (2.3.4 and later) imports, and pyarrow reads back: the id field as `int64`, the
//! vector as a plain `list<float32>` of dim items (binary: `list<uint8>` of dim/8 bytes), columns
//! named after the fields, no nulls. Written by arrow-rs `parquet`; uncompressed (vectors barely
//! compress) and without dictionaries (vectors repeat no values: smaller and faster without).
use crate::prelude::*;
use alloc::sync::Arc;
use core::cell::RefCell;

use arrow_array::{ArrayRef, Float32Array, Int64Array, ListArray, RecordBatch, UInt8Array};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};
use crate::io::{Writer, Written};
use crate::meta::VectorKind;

/// The row-group size pymilvus' BulkWriter uses, "an experience value that avoids high memory
/// usage of the parquet reader on the server side".
pub const ROW_GROUP_BYTES: u64 = 32 << 20;

/// The name of a file group's Parquet file in its directory.
pub const FILE_NAME: &str = "rows.parquet";

/// A store writer as `std::io::Write`, keeping the store's own error (typed) when a write fails.
struct Sink<W: Writer> {
    out: W,
    failed: RefCell<Option<Error>>,
}

// SAFETY: the component is single-threaded, and natively the writer is only used from the thread
// that made it; `ArrowWriter` asks for `Send` for writers that move across threads, which never
// happens here.
unsafe impl<W: Writer> Send for Sink<W> {}

impl<W: Writer> std::io::Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf).map(|()| buf.len()).map_err(|e| {
            let text = format!("{e:?}");
            *self.failed.borrow_mut() = Some(e);
            std::io::Error::other(text)
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Streams the rows of one file group into `<dir>/rows.parquet`.
pub struct ParquetGroup<W: Writer> {
    writer: ArrowWriter<Sink<W>>,
    schema: Arc<Schema>,
    vector: VectorKind,
    /// Bytes of one vector.
    row_bytes: usize,
    path: String,
}

impl<W: Writer> ParquetGroup<W> {
    /// Starts the file at `path` on `out`: the id column `id_field`, the vectors `vector_field`.
    pub fn new(out: W, path: &str, id_field: &str, vector_field: &str, vector: VectorKind, dim: u32) -> Result<Self> {
        let row_bytes = vector.row_bytes(dim).ok_or_else(|| Error::Unsupported(format!("{path}: a vector of dim {dim}")))? as usize;
        let item = match vector {
            VectorKind::Float => DataType::Float32,
            VectorKind::Binary => DataType::UInt8,
        };
        let list = DataType::List(Arc::new(Field::new("item", item, false)));
        let schema = Arc::new(Schema::new(vec![Field::new(id_field, DataType::Int64, false), Field::new(vector_field, list, false)]));
        let rows_per_group = (ROW_GROUP_BYTES / (row_bytes as u64 + 8)).max(1) as usize;
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(rows_per_group))
            .set_dictionary_enabled(false)
            .set_created_by(String::from("milvus-migration"))
            .build();
        let sink = Sink { out, failed: RefCell::new(None) };
        let writer = ArrowWriter::try_new(sink, schema.clone(), Some(props)).map_err(|e| Error::Other(format!("{path}: {e}")))?;
        Ok(ParquetGroup { writer, schema, vector, row_bytes, path: path.to_string() })
    }

    /// Appends rows: `ids` as little-endian int64, `vectors` the rows' vector bytes back to back.
    pub fn push(&mut self, ids: &[u8], vectors: &[u8]) -> Result<()> {
        let n = ids.len() / 8;
        if ids.len() % 8 != 0 || vectors.len() != n * self.row_bytes {
            return Err(Error::Other(format!("{}: {} id bytes and {} vector bytes are not whole rows", self.path, ids.len(), vectors.len())));
        }
        if n == 0 {
            return Ok(());
        }
        let keys = Int64Array::from_iter_values(ids.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))));
        // Built from whole buffers (not row by row): offsets every `width` items, no nulls.
        let (item, values, width): (DataType, ArrayRef, usize) = match self.vector {
            VectorKind::Float => {
                let floats: Vec<f32> = vectors.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                (DataType::Float32, Arc::new(Float32Array::from(floats)), self.row_bytes / 4)
            }
            VectorKind::Binary => (DataType::UInt8, Arc::new(UInt8Array::from(vectors.to_vec())), self.row_bytes),
        };
        let offsets = OffsetBuffer::from_lengths(core::iter::repeat_n(width, n));
        let lists: ArrayRef = Arc::new(ListArray::new(Arc::new(Field::new("item", item, false)), offsets, values, None));
        let batch = RecordBatch::try_new(self.schema.clone(), vec![Arc::new(keys), lists]).map_err(|e| Error::Other(format!("{}: {e}", self.path)))?;
        let r = self.writer.write(&batch);
        self.fail(r)
    }

    /// Writes the last row group and the footer; the file is then published like any other.
    pub fn finish(self) -> Result<Written> {
        let ParquetGroup { writer, path, .. } = self;
        let sink = match writer.into_inner() {
            Ok(sink) => sink,
            Err(e) => return Err(Error::Other(format!("{path}: {e}"))),
        };
        if let Some(e) = sink.failed.into_inner() {
            return Err(e);
        }
        sink.out.finish()
    }

    /// The store's own error when a write failed, else the writer's.
    fn fail(&self, r: parquet::errors::Result<()>) -> Result<()> {
        r.map_err(|e| self.writer.inner().failed.borrow_mut().take().unwrap_or_else(|| Error::Other(format!("{}: {e}", self.path))))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::io::memory::{MemStore, MemWriter};
    use crate::io::{Role, Store};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, UInt8Type};
    use arrow_array::Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    pub(crate) fn write(vector: VectorKind, dim: u32, rows: usize, chunk: usize) -> (Vec<u8>, Vec<i64>, Vec<u8>) {
        let store = MemStore::default();
        let w: MemWriter = store.create(Role::Target, "c/_default/1/rows.parquet").unwrap();
        let mut g = ParquetGroup::new(w, "c/_default/1/rows.parquet", "id", "data", vector, dim).unwrap();
        let row_bytes = vector.row_bytes(dim).unwrap() as usize;
        let ids: Vec<i64> = (0..rows as i64).map(|i| i * 7 - 3).collect();
        let vecs: Vec<u8> = match vector {
            VectorKind::Float => (0..rows * dim as usize).flat_map(|i| (i as f32 * 0.5).to_le_bytes()).collect(),
            VectorKind::Binary => (0..rows * row_bytes).map(|i| (i * 31 % 251) as u8).collect(),
        };
        for start in (0..rows).step_by(chunk) {
            let end = (start + chunk).min(rows);
            let idb: Vec<u8> = ids[start..end].iter().flat_map(|i| i.to_le_bytes()).collect();
            g.push(&idb, &vecs[start * row_bytes..end * row_bytes]).unwrap();
        }
        let written = g.finish().unwrap();
        let bytes = store.get(Role::Target, "c/_default/1/rows.parquet").unwrap();
        assert_eq!(written.bytes, bytes.len() as u64);
        (bytes, ids, vecs)
    }

    /// Reads the file back with arrow-rs' reader: the schema Milvus wants, every id and vector.
    pub(crate) fn read(bytes: Vec<u8>) -> (Vec<i64>, Vec<u8>, Vec<Field>) {
        let r = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap().build().unwrap();
        let (mut ids, mut vecs, mut schema) = (vec![], vec![], vec![]);
        for b in r {
            let b = b.unwrap();
            schema = b.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
            ids.extend(b.column(0).as_primitive::<arrow_array::types::Int64Type>().values().iter().copied());
            let list = b.column(1).as_list::<i32>();
            assert_eq!(list.null_count(), 0);
            match list.value_type() {
                DataType::Float32 => vecs.extend(list.values().as_primitive::<Float32Type>().values().iter().flat_map(|f| f.to_le_bytes())),
                _ => vecs.extend(list.values().as_primitive::<UInt8Type>().values().iter().copied()),
            }
        }
        (ids, vecs, schema)
    }

    /// Float rows as `list<float32>`, binary rows as `list<uint8>` of dim/8 bytes: every id and
    /// vector back exactly, with the schema Milvus wants (nothing nullable).
    #[test]
    fn rows_come_back_exactly_as_int64_and_a_list_of_non_null_items() {
        for (vector, dim, rows, chunk, item) in [(VectorKind::Float, 16, 1000, 333, DataType::Float32), (VectorKind::Binary, 64, 500, 128, DataType::UInt8)] {
            let (bytes, ids, vecs) = write(vector, dim, rows, chunk);
            let (got_ids, got_vecs, schema) = read(bytes);
            assert_eq!((got_ids, got_vecs), (ids, vecs), "{vector:?}");
            let item = Arc::new(Field::new("item", item, false));
            assert_eq!(schema, vec![Field::new("id", DataType::Int64, false), Field::new("data", DataType::List(item), false)]);
        }
    }

    /// Row groups follow the byte target, not the file: 32 MiB at 128 floats (520 bytes a row).
    #[test]
    fn row_groups_hold_about_32_mib() {
        let rows = 70_000;
        let (bytes, _, _) = write(VectorKind::Float, 128, rows, 10_000);
        let meta = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap().metadata().clone();
        let per_group = (ROW_GROUP_BYTES / 520) as i64;
        let groups: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(groups, vec![per_group, rows as i64 - per_group]);
        assert_eq!(meta.file_metadata().created_by(), Some("milvus-migration"));
    }

    #[test]
    fn rows_that_are_not_whole_are_refused() {
        let store = MemStore::default();
        let w = store.create(Role::Target, "x/rows.parquet").unwrap();
        let mut g = ParquetGroup::new(w, "x/rows.parquet", "id", "data", VectorKind::Float, 4).unwrap();
        let e = g.push(&[0u8; 16], &[0u8; 20]).unwrap_err();
        assert!(format!("{e:?}").contains("not whole rows"), "{e:?}");
    }
}
