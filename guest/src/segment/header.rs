//! `.rv` and `.uid` files: a little-endian u64 byte count, then exactly that many payload bytes
//! (spec: milvus1x-format.md §6.1, §6.2). Readers trust nothing: the count must fit the file and
//! divide into whole rows.
use crate::prelude::*;

use crate::error::{Error, Result};
use crate::io::{read_exact, Reader};

pub const HEADER_BYTES: u64 = 8;
/// Rows a 1.x segment can have: row offsets (`deleted_docs`, the segment's in-memory offsets)
/// are i32.
pub const MAX_SEGMENT_ROWS: u64 = 1 << 31;

/// A file whose header has been read and checked; the reader is positioned at the payload.
#[derive(Debug)]
pub struct CountedFile<R> {
    pub reader: R,
    pub path: String,
    /// Payload bytes, from the header.
    pub payload: u64,
}

impl<R: Reader> CountedFile<R> {
    /// Reads the header and checks it against the file length.
    pub fn open(reader: R, path: &str) -> Result<Self> {
        let size = reader.size();
        if size < HEADER_BYTES {
            return Err(Error::invalid(
                path,
                Some(0),
                format!("file is {size} bytes, shorter than its 8-byte byte-count header"),
            ));
        }
        let head = read_exact(&reader, HEADER_BYTES as usize, path, 0)?;
        let payload = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let expected = payload.checked_add(HEADER_BYTES);
        if expected != Some(size) {
            return Err(Error::invalid(
                path,
                Some(0),
                format!(
                    "header says {payload} payload bytes, so the file should be {} bytes, but it is {size} bytes{}",
                    expected.map_or("more than 2^64".to_string(), |e| e.to_string()),
                    if expected.is_some_and(|e| e > size) { " (truncated?)" } else { "" }
                ),
            ));
        }
        Ok(CountedFile { reader, path: path.to_string(), payload })
    }
}

impl<R> CountedFile<R> {
    /// Rows of `row_bytes` each; the payload must divide exactly, into at most
    /// [`MAX_SEGMENT_ROWS`] rows.
    pub fn rows(&self, row_bytes: u64, what: &str) -> Result<u64> {
        if self.payload % row_bytes != 0 {
            return Err(Error::invalid(
                &self.path,
                Some(0),
                format!("{} payload bytes are not a whole number of {what} of {row_bytes} bytes", self.payload),
            ));
        }
        let rows = self.payload / row_bytes;
        if rows > MAX_SEGMENT_ROWS {
            // A sparse or crafted file: refuse before anything is sized by the row count.
            return Err(Error::invalid(
                &self.path,
                Some(0),
                format!(
                    "header says {} payload bytes, {rows} {what}: more than a 1.x segment can hold \
                     (row offsets are 32-bit, so at most {MAX_SEGMENT_ROWS} rows)",
                    self.payload
                ),
            ));
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::memory::MemStore;
    use crate::io::{Role, Store};

    fn open(bytes: Vec<u8>) -> Result<CountedFile<crate::io::memory::MemReader>> {
        let s = MemStore::default();
        s.put(Role::Source, "f.uid", bytes);
        CountedFile::open(s.open(Role::Source, "f.uid")?, "t/s/f.uid")
    }

    fn counted(payload: &[u8], claimed: u64) -> Vec<u8> {
        let mut v = claimed.to_le_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn good_header() {
        let f = open(counted(&[0; 24], 24)).unwrap();
        assert_eq!(f.rows(8, "ids").unwrap(), 3);
    }

    #[test]
    fn truncated_file_names_file_and_sizes() {
        let err = open(counted(&[0; 16], 24)).unwrap_err().to_string();
        assert!(err.contains("t/s/f.uid") && err.contains("32 bytes") && err.contains("24 bytes"), "{err}");
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn huge_claim_does_not_overflow() {
        let err = open(counted(&[0; 8], u64::MAX)).unwrap_err().to_string();
        assert!(err.contains("2^64"), "{err}");
    }

    #[test]
    fn more_rows_than_a_segment_can_hold() {
        // The header agrees with the file size (a sparse file), but 2^37 ids is no 1.x segment.
        let f = CountedFile { reader: (), path: "t/s/s.uid".into(), payload: 1 << 40 };
        let err = f.rows(8, "8-byte ids").unwrap_err().to_string();
        assert!(err.contains("t/s/s.uid") && err.contains("137438953472 8-byte ids") && err.contains("at most 2147483648 rows"), "{err}");
        let f = CountedFile { reader: (), path: "t/s/s.uid".into(), payload: 8 << 31 };
        assert_eq!(f.rows(8, "ids").unwrap(), 1 << 31);
    }

    #[test]
    fn short_file_and_partial_rows() {
        assert!(open(vec![1, 2, 3]).unwrap_err().to_string().contains("shorter than"));
        let f = open(counted(&[0; 12], 12)).unwrap();
        assert!(f.rows(8, "ids").unwrap_err().to_string().contains("not a whole number"));
    }
}
