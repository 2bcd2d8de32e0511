//! `deleted_docs`: i32 row offsets of deleted rows (spec: milvus1x-format.md §6.3).
//!
//! Unsorted across delete batches and possibly repeated before 1.1.1, so it is read into a set
//! (a bitset: one bit per row, however many offsets the file lists). Two layouts exist: the
//! usual u64 byte-count header then the offsets, and an older header-less list of offsets.
//! Bytes after the counted payload (possible in 1.1.1+, which rewrites without truncating) are
//! ignored. An offset outside the segment is corruption: the reader collects such offsets and
//! the caller decides (migration.badData).
use crate::prelude::*;

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
    ///
    /// The layout is the spec's: a u64 byte count, then exactly that many bytes of offsets;
    /// bytes after them are stale (1.1.1+ rewrites without truncating) and ignored. A file
    /// whose header does not fit its size could also be an older header-less list, so each
    /// reading the bytes allow is tried and the meta's live row count (`expect`) decides; a
    /// reading that leaves fewer live rows than the meta says is never taken.
    pub fn read(reader: &impl Reader, path: &str, rows: u64, expect: Expect) -> Result<(Self, Layout)> {
        let size = reader.size();
        if size == 0 {
            let set = DeletedSet::empty(rows);
            expect.check(path, rows, &[(Layout::Empty, &set)])?;
            return Ok((set, Layout::Empty));
        }
        let mut layouts = Vec::new();
        let mut claimed = None;
        if size >= 8 {
            let head = read_exact(reader, 8, path, 0)?;
            let c = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
            claimed = Some(c);
            if c % 4 == 0 && c <= size - 8 {
                let layout = if c == size - 8 { Layout::Counted } else { Layout::CountedWithTrailing(size - 8 - c) };
                layouts.push((layout, 8, c));
            }
        }
        // (A file shorter than a header can only be header-less.)
        if size % 4 == 0 && (size < 8 || claimed != Some(size - 8)) {
            layouts.push((Layout::HeaderLess, 0, size));
        }
        if layouts.is_empty() {
            let why = match claimed {
                Some(c) => format!("header says {c} bytes of offsets but the file has {} after it", size - 8),
                None => format!("{size} bytes is too short for a header"),
            };
            return Err(Error::invalid(path, Some(0), format!("{why}, and {size} bytes is no header-less list of 4-byte offsets either")));
        }
        let mut readings = Vec::new();
        for (layout, start, payload) in layouts {
            readings.push((layout, Self::read_offsets(reader, path, rows, start, payload)?));
        }
        let views: Vec<(Layout, &DeletedSet)> = readings.iter().map(|(l, s)| (*l, s)).collect();
        let k = expect.check(path, rows, &views)?;
        Ok(readings.swap_remove(k)).map(|(l, s)| (s, l))
    }

    /// The offsets in `payload` bytes from `start`.
    fn read_offsets(reader: &impl Reader, path: &str, rows: u64, start: u64, payload: u64) -> Result<Self> {
        let mut set = DeletedSet::empty(rows);
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
        Ok(set)
    }
}

/// The independent fact a `deleted_docs` reading is checked against: the meta's live rows of
/// the segment (`TableFiles.row_count`, decremented on every delete). It can be smaller than
/// the truth before 1.1.1 (a repeated offset was subtracted twice), never larger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expect {
    /// The meta's live rows among the rows read (None: not known, e.g. an old manifest).
    pub meta_rows: Option<u64>,
    /// `migration.badData: fail`: a reading that only "could be" is not good enough.
    pub strict: bool,
}

impl Expect {
    /// Which of `readings` (in the spec's order of preference) to take, or why none can be.
    fn check(&self, path: &str, rows: u64, readings: &[(Layout, &DeletedSet)]) -> Result<usize> {
        let Some(meta) = self.meta_rows else { return Ok(0) };
        let live = |s: &DeletedSet| rows - s.count();
        if let Some(k) = readings.iter().position(|(_, s)| live(s) == meta) {
            return Ok(k);
        }
        let above = readings.iter().position(|(_, s)| live(s) > meta);
        let unique_counted = readings.len() == 1 && readings[0].0 != Layout::HeaderLess;
        match above {
            // One reading as the spec lays it out, more live rows than the meta: the meta's
            // count lags (pre-1.1.1); the caller warns.
            Some(k) if unique_counted || !self.strict => Ok(k),
            _ => {
                let said: Vec<String> = readings
                    .iter()
                    .map(|(l, s)| format!("read as {l:?} it deletes {} and leaves {} live", s.count(), live(s)))
                    .collect();
                let hint = if above.is_some() { " (migration.badData: skip or reject takes the reading that keeps more rows)" } else { "" };
                Err(Error::invalid(
                    path,
                    Some(0),
                    format!(
                        "no reading of this file agrees with the meta: the segment has {rows} rows and the meta's row_count says {meta} are live; {}{hint}",
                        said.join("; ")
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::memory::MemStore;
    use crate::io::{Role, Store};

    fn read(bytes: Vec<u8>, rows: u64) -> Result<(DeletedSet, Layout)> {
        read_as(bytes, rows, Expect::default())
    }

    fn read_as(bytes: Vec<u8>, rows: u64, expect: Expect) -> Result<(DeletedSet, Layout)> {
        let s = MemStore { max_read: 5, ..Default::default() };
        s.put(Role::Source, "d", bytes);
        DeletedSet::read(&s.open(Role::Source, "d")?, "t/s/deleted_docs", rows, expect)
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
        // Shorter than a header (found by the deleted_docs fuzz target: it overflowed).
        let (set, layout) = read(offsets(&[3]), 5).unwrap();
        assert_eq!((layout, set.iter().collect::<Vec<_>>()), (Layout::HeaderLess, vec![3]));
        assert!(read(vec![1, 2, 3], 5).is_err());
    }

    #[test]
    fn stale_trailing_bytes_are_ignored() {
        let mut bytes = counted(&[1]);
        bytes.extend([7, 7, 7]);
        let (set, layout) = read(bytes, 5).unwrap();
        assert_eq!(layout, Layout::CountedWithTrailing(3));
        assert_eq!(set.count(), 1);
    }

    /// The review's case: a header for [17, 3, 250] and two stale offsets [3, 299] after it
    /// (1.1.1+ rewrites without truncating). Read as a header-less list, the header's words
    /// delete rows 0 and 12 and the stale ones delete 299.
    #[test]
    fn stale_offsets_after_a_header_are_not_deletions() {
        let mut bytes = counted(&[17, 3, 250]);
        bytes.extend(offsets(&[3, 299]));
        for expect in [Expect::default(), Expect { meta_rows: Some(297), strict: true }] {
            let (set, layout) = read_as(bytes.clone(), 300, expect).unwrap();
            assert_eq!(layout, Layout::CountedWithTrailing(8));
            assert_eq!(set.iter().collect::<Vec<_>>(), [3, 17, 250]);
        }
    }

    #[test]
    fn the_meta_decides_between_readings_and_a_short_count_is_an_error() {
        // A header-less list [4, 0, 5, 6] also parses as "4 bytes: [5]" plus 4 stale bytes.
        let bytes = offsets(&[4, 0, 5, 6]);
        let (set, layout) = read_as(bytes.clone(), 10, Expect { meta_rows: Some(6), strict: true }).unwrap();
        assert_eq!((layout, set.count()), (Layout::HeaderLess, 4));
        let (set, layout) = read_as(bytes.clone(), 10, Expect { meta_rows: Some(9), strict: true }).unwrap();
        assert_eq!((layout, set.count()), (Layout::CountedWithTrailing(4), 1));
        // Neither reading leaves 7 live rows: strict fails naming both; lenient takes the one above.
        let e = read_as(bytes.clone(), 10, Expect { meta_rows: Some(7), strict: true }).unwrap_err().to_string();
        assert!(e.contains("row_count says 7") && e.contains("CountedWithTrailing(4) it deletes 1 and leaves 9") && e.contains("HeaderLess it deletes 4 and leaves 6"), "{e}");
        assert_eq!(read_as(bytes.clone(), 10, Expect { meta_rows: Some(7), strict: false }).unwrap().1, Layout::CountedWithTrailing(4));
        // Fewer live rows than the meta says, whatever the policy: an error.
        let e = read_as(counted(&[1, 2, 3]), 10, Expect { meta_rows: Some(9), strict: false }).unwrap_err().to_string();
        assert!(e.contains("row_count says 9 are live") && e.contains("leaves 7 live"), "{e}");
        // More live rows than the meta (pre-1.1.1 counts lag): taken; the caller warns.
        assert_eq!(read_as(counted(&[1]), 10, Expect { meta_rows: Some(8), strict: true }).unwrap().0.count(), 1);
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
