//! The engine's view of its imports, as traits, so the pure logic runs natively in tests
//! (with [`memory`]) and in the component (with the WIT adapter in `lib.rs`).
use crate::prelude::*;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Source,
    Target,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: String,
    pub bytes: u64,
    pub crc32c: u32,
}

pub trait Reader {
    fn size(&self) -> u64;
    /// At most `max` bytes; empty at the end.
    fn read(&self, max: u32) -> Result<Vec<u8>>;
    fn seek(&self, offset: u64) -> Result<()>;
}

pub trait Writer {
    fn write(&self, bytes: &[u8]) -> Result<()>;
    fn finish(self) -> Result<Written>;
}

pub trait Store {
    type R: Reader + 'static;
    type W: Writer;
    /// Appends `len` bytes of `src` from `offset` to `dst` (bytes do not pass through the
    /// engine). With `finite_f32`, stops at the first NaN or infinite f32 and returns its offset
    /// in `src` (then `dst` must be dropped).
    fn append(&self, dst: &Self::W, src: &Self::R, offset: u64, len: u64, finite_f32: bool) -> Result<Option<u64>>;
    fn open(&self, role: Role, path: &str) -> Result<Self::R>;
    fn create(&self, role: Role, path: &str) -> Result<Self::W>;
    fn stat(&self, role: Role, path: &str) -> Result<Option<u64>>;
    fn list(&self, role: Role, prefix: &str) -> Result<Vec<String>>;
    /// Removes a file; a missing one is not an error.
    fn delete(&self, role: Role, path: &str) -> Result<()>;
    /// The size and CRC-32C of a whole file, computed by the store (bytes do not pass through
    /// the engine).
    fn checksum(&self, role: Role, path: &str) -> Result<Written>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

pub trait Report {
    fn log(&self, level: Level, message: &str);
    fn progress(&self, rows: u64, bytes: u64);
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    Int64,
    FloatVector,
    BinaryVector,
    Other(i32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInfo {
    pub name: String,
    pub field_type: FieldType,
    pub is_primary: bool,
    pub auto_id: bool,
    pub dim: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CollectionInfo {
    /// The server's id of the collection (a dropped and re-created collection gets a new one).
    pub id: i64,
    pub fields: Vec<FieldInfo>,
    pub partitions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCollection {
    pub name: String,
    pub description: String,
    pub id_field: String,
    pub vector_field: String,
    pub binary: bool,
    pub dim: u32,
    pub shards: u32,
    pub consistency: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexInfo {
    pub field: String,
    pub index_type: String,
    pub metric: String,
    pub params: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    pub completed: bool,
    pub rows: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportState {
    Pending,
    Running,
    Completed,
    Failed,
}

/// An import task the server remembers; `files` is none when the server does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportTask {
    pub id: i64,
    pub state: ImportState,
    pub files: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    pub id: i64,
    pub vector: Vec<u8>,
}

/// Rows to write: keys, and the vectors' bytes back to back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows {
    pub id_field: String,
    pub vector_field: String,
    pub binary: bool,
    pub dim: u32,
    pub ids: Vec<i64>,
    pub vectors: Vec<u8>,
}

/// The target Milvus (the `milvus` import).
pub trait Milvus {
    fn server_version(&self) -> Result<String>;
    fn describe_collection(&self, name: &str) -> Result<Option<CollectionInfo>>;
    fn create_collection(&self, c: &NewCollection) -> Result<()>;
    fn create_partition(&self, collection: &str, partition: &str) -> Result<()>;
    fn describe_indexes(&self, collection: &str) -> Result<Vec<IndexInfo>>;
    fn create_index(&self, collection: &str, index: &IndexInfo) -> Result<()>;
    fn load(&self, collection: &str) -> Result<()>;
    fn import_files(&self, collection: &str, partition: &str, files: &[String]) -> Result<i64>;
    fn await_import(&self, task: i64) -> Result<ImportOutcome>;
    fn list_imports(&self, collection: &str) -> Result<Vec<ImportTask>>;
    /// Never de-duplicates; an error other than a refusal leaves the rows in doubt.
    fn insert(&self, collection: &str, partition: &str, rows: &Rows) -> Result<u64>;
    /// Leaves one copy of each key in the partition.
    fn upsert(&self, collection: &str, partition: &str, rows: &Rows) -> Result<u64>;
    fn flush(&self, collection: &str) -> Result<()>;
    fn count_rows(&self, collection: &str, partition: Option<&str>) -> Result<u64>;
    /// Entities stored (the server's `row_count` statistics): every copy of a repeated key.
    fn stored_rows(&self, collection: &str, partition: Option<&str>) -> Result<u64>;
    fn get_entities(&self, collection: &str, id_field: &str, vector_field: &str, ids: &[i64]) -> Result<Vec<Entity>>;
    /// Stored copies of the keys `low..=high` (count(*)): every copy of a repeated key.
    fn count_in_range(&self, collection: &str, partition: Option<&str>, id_field: &str, low: i64, high: i64) -> Result<u64>;
    /// Stored copies of these keys (count(*)).
    fn count_ids(&self, collection: &str, partition: Option<&str>, id_field: &str, ids: &[i64]) -> Result<u64>;
    /// One entity per key in `low..=high`, at most `limit`; complete only when the range holds
    /// at most `limit` copies.
    fn query_range(&self, collection: &str, partition: Option<&str>, id_field: &str, vector_field: &str, low: i64, high: i64, limit: u32) -> Result<Vec<Entity>>;
    /// Deletes every copy of these keys in the partition.
    fn delete_ids(&self, collection: &str, partition: &str, id_field: &str, ids: &[i64]) -> Result<u64>;
}

/// Reads exactly `n` bytes, or fails naming `path` when the file ends first.
pub fn read_exact(r: &impl Reader, n: usize, path: &str, at: u64) -> Result<Vec<u8>> {
    let mut buf = r.read(n.min(u32::MAX as usize) as u32)?;
    while buf.len() < n {
        let more = r.read((n - buf.len()).min(u32::MAX as usize) as u32)?;
        if more.is_empty() {
            return Err(Error::invalid(
                path,
                Some(at + buf.len() as u64),
                format!("file ends early: expected {n} more bytes at offset {at}, got {}", buf.len()),
            ));
        }
        buf.extend_from_slice(&more);
    }
    Ok(buf)
}

#[cfg(any(test, feature = "memory"))]
pub mod memory {
    //! An in-memory store and report for unit tests and the fuzz targets (feature `memory`).
    //! Strict where a real host would refuse: an append outside the source file, or progress
    //! that overflows, panics.
    use super::*;
    use core::cell::{Cell, RefCell};
    use alloc::collections::BTreeMap;
    use alloc::rc::Rc;

    type Files = Rc<RefCell<BTreeMap<(u8, String), Vec<u8>>>>;

    #[derive(Default, Clone)]
    pub struct MemStore {
        pub files: Files,
        /// Largest read the store serves in one call (to exercise short reads).
        pub max_read: usize,
    }

    fn key(role: Role, path: &str) -> (u8, String) {
        (role as u8, path.to_string())
    }

    impl MemStore {
        pub fn put(&self, role: Role, path: &str, bytes: Vec<u8>) {
            self.files.borrow_mut().insert(key(role, path), bytes);
        }
        pub fn get(&self, role: Role, path: &str) -> Option<Vec<u8>> {
            self.files.borrow().get(&key(role, path)).cloned()
        }
        pub fn paths(&self, role: Role) -> Vec<String> {
            self.files.borrow().keys().filter(|k| k.0 == role as u8).map(|k| k.1.clone()).collect()
        }
    }

    #[derive(Debug)]
    pub struct MemReader {
        data: Vec<u8>,
        pos: Cell<usize>,
        max_read: usize,
    }

    impl MemReader {
        /// A reader over `data` serving at most `max_read` bytes a call (0: unlimited).
        pub fn new(data: Vec<u8>, max_read: usize) -> Self {
            MemReader { data, pos: Cell::new(0), max_read: if max_read == 0 { usize::MAX } else { max_read } }
        }
    }

    impl Reader for MemReader {
        fn size(&self) -> u64 {
            self.data.len() as u64
        }
        fn read(&self, max: u32) -> Result<Vec<u8>> {
            let p = self.pos.get();
            let n = (max as usize).min(self.max_read.max(1)).min(self.data.len() - p);
            self.pos.set(p + n);
            Ok(self.data[p..p + n].to_vec())
        }
        fn seek(&self, offset: u64) -> Result<()> {
            // Like a file: seeking past the end is allowed, reads there return nothing.
            self.pos.set(usize::try_from(offset).unwrap_or(usize::MAX).min(self.data.len()));
            Ok(())
        }
    }

    pub struct MemWriter {
        files: Files,
        key: (u8, String),
        buf: RefCell<Vec<u8>>,
    }

    impl Writer for MemWriter {
        fn write(&self, bytes: &[u8]) -> Result<()> {
            self.buf.borrow_mut().extend_from_slice(bytes);
            Ok(())
        }
        fn finish(self) -> Result<Written> {
            let bytes = self.buf.into_inner();
            let w = Written { path: self.key.1.clone(), bytes: bytes.len() as u64, crc32c: crc32c(&bytes) };
            self.files.borrow_mut().insert(self.key, bytes);
            Ok(w)
        }
    }

    impl Store for MemStore {
        type R = MemReader;
        type W = MemWriter;
        fn append(&self, dst: &MemWriter, src: &MemReader, offset: u64, len: u64, finite_f32: bool) -> Result<Option<u64>> {
            let end = offset.checked_add(len).expect("append range overflows u64");
            assert!(end <= src.data.len() as u64, "append {offset}+{len} past the end of a {}-byte file", src.data.len());
            let (a, b) = (offset as usize, end as usize);
            if finite_f32 {
                assert!(len % 4 == 0, "append of {len} bytes checked as f32 values");
                // f32::is_finite, independently of the engine's own bit test.
                let bad = src.data[a..b].chunks_exact(4).position(|c| !f32::from_le_bytes(c.try_into().expect("4 bytes")).is_finite());
                if let Some(i) = bad {
                    dst.write(&src.data[a..a + 4 * i])?;
                    src.pos.set(a + 4 * i);
                    return Ok(Some((a + 4 * i) as u64));
                }
            }
            dst.write(&src.data[a..b])?;
            src.pos.set(b);
            Ok(None)
        }
        fn open(&self, role: Role, path: &str) -> Result<MemReader> {
            let data = self.get(role, path).ok_or_else(|| Error::NotFound(path.to_string()))?;
            Ok(MemReader::new(data, self.max_read))
        }
        fn create(&self, role: Role, path: &str) -> Result<MemWriter> {
            Ok(MemWriter { files: self.files.clone(), key: key(role, path), buf: RefCell::new(Vec::new()) })
        }
        fn stat(&self, role: Role, path: &str) -> Result<Option<u64>> {
            Ok(self.get(role, path).map(|d| d.len() as u64))
        }
        fn delete(&self, role: Role, path: &str) -> Result<()> {
            self.files.borrow_mut().remove(&key(role, path));
            Ok(())
        }
        fn checksum(&self, role: Role, path: &str) -> Result<Written> {
            let data = self.get(role, path).ok_or_else(|| Error::NotFound(path.to_string()))?;
            Ok(Written { path: path.to_string(), bytes: data.len() as u64, crc32c: crc32c(&data) })
        }
        fn list(&self, role: Role, prefix: &str) -> Result<Vec<String>> {
            let dir = format!("{prefix}/");
            let mut names: Vec<String> = self
                .paths(role)
                .iter()
                .filter_map(|p| p.strip_prefix(&dir).map(|rest| rest.split('/').next().unwrap_or("").to_string()))
                .collect();
            names.dedup();
            Ok(names)
        }
    }

    /// CRC-32C bit by bit: the in-memory store's own, independent of the host's crate.
    pub fn crc32c(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[derive(Default)]
    pub struct MemReport {
        pub lines: RefCell<Vec<(Level, String)>>,
        pub rows: Cell<u64>,
        pub bytes: Cell<u64>,
    }

    impl Report for MemReport {
        fn log(&self, level: Level, message: &str) {
            self.lines.borrow_mut().push((level, message.to_string()));
        }
        fn progress(&self, rows: u64, bytes: u64) {
            self.rows.set(self.rows.get().checked_add(rows).expect("progress rows overflow"));
            self.bytes.set(self.bytes.get().checked_add(bytes).expect("progress bytes overflow"));
        }
    }
}
