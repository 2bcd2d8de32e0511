//! `deleted_docs`: i32 row offsets of deleted rows (spec: milvus1x-format.md §6.3).
//!
//! Unsorted across delete batches and possibly repeated before 1.1.1, so it is read into a set
//! (a bitset: one bit per row, however many offsets the file lists). Two layouts exist: the
//! usual u64 byte-count header then the offsets, and an older header-less list of offsets.
//! Bytes after the counted payload (possible in 1.1.1+, which rewrites without truncating) are
//! ignored. An offset outside the segment is corruption: the reader collects such offsets and
//! the caller decides (migration.badData).

use crate::error::{Error, Result};
use crate::io::{read_exact, Reader};

/// Offsets read per call.
const CHUNK_OFFSETS: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedSet {
    bits: Vec<u64>,
    rows: u64,
    count: u64,
    /// Offsets outside the segment: how many, and the first few with their byte offsets.
    pub outside: u64,
    pub outside_first: Vec<(i32, u64)>,
}

/// Out-of-range offsets kept for messages and reject files (the fuzz target checks against it).
pub const OUTSIDE_KEPT: usize = 1000;

/// How the file was laid out, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Empty,
    Counted,
    /// A counted payload followed by this many stale bytes.
    CountedWithTrailing(u64),
    HeaderLess,
}

impl DeletedSet {
    pub fn empty(rows: u64) -> Self {
        DeletedSet { bits: vec![0; rows.div_ceil(64) as usize], rows, count: 0, outside: 0, outside_first: vec![] }
    }

    /// Distinct deleted rows.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn contains(&self, row: u64) -> bool {
        row < self.rows && self.bits[(row / 64) as usize] & (1 << (row % 64)) != 0
    }

    /// The deleted rows, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.bits.iter().enumerate().flat_map(|(w, &word)| {
            (0..64u64).filter(move |b| word & (1 << b) != 0).map(move |b| w as u64 * 64 + b)
        })
    }

    /// Whether any row in `start..end` is deleted (cheap skip for runs with no deletions).
    pub fn any_in(&self, start: u64, end: u64) -> bool {
        let mut r = start;
        while r < end {
            let word = self.bits[(r / 64) as usize] >> (r % 64);
            let span = (64 - r % 64).min(end - r);
            let mask = if span == 64 { u64::MAX } else { (1u64 << span) - 1 };
            if word & mask != 0 {
                return true;
            }
            r += span;
        }
        false
    }

    /// Marks `row` deleted (also used for rows dropped by the bad-data policy).
    pub fn add(&mut self, row: u64) {
        let (w, b) = ((row / 64) as usize, row % 64);
        if row < self.rows && self.bits[w] & (1 << b) == 0 {
            self.bits[w] |= 1 << b;
            self.count += 1;
        }
    }

    fn insert(&mut self, offset: i32, at: u64) {
        if offset < 0 || offset as u64 >= self.rows {
            self.outside += 1;
            if self.outside_first.len() < OUTSIDE_KEPT {
                self.outside_first.push((offset, at));
            }
            return;
        }
        self.add(offset as u64);
    }

    /// The error for the first out-of-range offset, if any.
    pub fn outside_error(&self, path: &str) -> Option<Error> {
        let &(offset, at) = self.outside_first.first()?;
        let more = if self.outside > 1 { format!(" ({} such offsets in all)", self.outside) } else { String::new() };
        Some(Error::invalid(path, Some(at), format!("deleted row offset {offset} is outside the segment, which has {} rows{more}", self.rows)))
    }

    /// Reads a whole `deleted_docs` file for a segment of `rows` rows.
    pub fn read(reader: &impl Reader, path: &str, rows: u64) -> Result<(Self, Layout)> {
        let mut set = DeletedSet::empty(rows);
        let size = reader.size();
        if size == 0 {
            return Ok((set, Layout::Empty));
        }
        let (layout, start, payload) = if size >= 8 {
            let head = read_exact(reader, 8, path, 0)?;
            let claimed = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
            if claimed == size - 8 && claimed % 4 == 0 {
                (Layout::Counted, 8, claimed)
            } else if size % 4 == 0 {
                (Layout::HeaderLess, 0, size)
            } else if claimed % 4 == 0 && claimed < size - 8 {
                (Layout::CountedWithTrailing(size - 8 - claimed), 8, claimed)
            } else {
                return Err(Error::invalid(
                    path,
                    Some(0),
                    format!("header says {claimed} bytes of offsets but the file has {} after it, and it is no header-less list either", size - 8),
                ));
            }
        } else if size % 4 == 0 {
            (Layout::HeaderLess, 0, size)
        } else {
            return Err(Error::invalid(path, Some(0), format!("{size} bytes is not a list of 4-byte offsets")));
        };
        reader.seek(start)?;
        let mut done = 0u64;
        while done < payload {
            let n = ((payload - done) as usize).min(CHUNK_OFFSETS * 4);
            let buf = read_exact(reader, n, path, start + done)?;
            for (i, c) in buf.chunks_exact(4).enumerate() {
                let at = start + done + 4 * i as u64;
                set.insert(i32::from_le_bytes(c.try_into().expect("4 bytes")), at);
            }
            done += n as u64;
        }
        Ok((set, layout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::memory::MemStore;
    use crate::io::{Role, Store};

    fn read(bytes: Vec<u8>, rows: u64) -> Result<(DeletedSet, Layout)> {
        let s = MemStore { max_read: 5, ..Default::default() };
        s.put(Role::Source, "d", bytes);
        DeletedSet::read(&s.open(Role::Source, "d")?, "t/s/deleted_docs", rows)
    }

    fn offsets(o: &[i32]) -> Vec<u8> {
        o.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn counted(o: &[i32]) -> Vec<u8> {
        let mut v = ((o.len() * 4) as u64).to_le_bytes().to_vec();
        v.extend(offsets(o));
        v
    }

    #[test]
    fn unsorted_repeated_offsets_form_a_set() {
        let (set, layout) = read(counted(&[9, 3, 9, 0, 3, 70]), 100).unwrap();
        assert_eq!(layout, Layout::Counted);
        assert_eq!(set.count(), 4);
        assert!(set.contains(0) && set.contains(3) && set.contains(9) && set.contains(70));
        assert!(!set.contains(1));
        assert_eq!(set.iter().collect::<Vec<_>>(), [0, 3, 9, 70]);
        assert!(set.any_in(60, 71) && !set.any_in(10, 70) && !set.any_in(71, 100));
    }

    #[test]
    fn empty_forms() {
        assert_eq!(read(vec![], 5).unwrap().0.count(), 0);
        assert_eq!(read(vec![0; 8], 5).unwrap().1, Layout::Counted);
    }

    #[test]
    fn header_less_list() {
        let (set, layout) = read(offsets(&[4, 1, 2]), 5).unwrap();
        assert_eq!(layout, Layout::HeaderLess);
        assert_eq!(set.count(), 3);
    }

    #[test]
    fn stale_trailing_bytes_are_ignored() {
        let mut bytes = counted(&[1]);
        bytes.extend([7, 7, 7]);
        let (set, layout) = read(bytes, 5).unwrap();
        assert_eq!(layout, Layout::CountedWithTrailing(3));
        assert_eq!(set.count(), 1);
    }

    #[test]
    fn out_of_range_offsets_are_collected_and_named() {
        let (set, _) = read(counted(&[1, 5]), 5).unwrap();
        assert_eq!((set.count(), set.outside), (1, 1));
        assert_eq!(
            set.outside_error("t/s/deleted_docs"),
            Some(Error::invalid("t/s/deleted_docs", Some(12), "deleted row offset 5 is outside the segment, which has 5 rows"))
        );
        let (set, _) = read(counted(&[-1, 9, 2]), 5).unwrap();
        assert_eq!((set.count(), set.outside, set.outside_first.clone()), (1, 2, vec![(-1, 8), (9, 12)]));
        assert!(set.outside_error("d").unwrap().to_string().contains("(2 such offsets in all)"));
    }
}
