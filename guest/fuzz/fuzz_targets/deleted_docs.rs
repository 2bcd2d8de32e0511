//! `DeletedSet::read` on arbitrary bytes and row counts, checked against a plain `BTreeSet`
//! model of the spec (milvus1x-format.md §6.3): the same layout decision, the same set, the
//! offsets outside the segment collected (count, first ones with their byte positions, the
//! error naming the first), and `contains` / `iter` / `any_in` / `add` agreeing with the model.
#![no_main]

use std::collections::BTreeSet;

use arbitrary::Arbitrary;
use guest::error::Error;
use guest::segment::deleted::{DeletedSet, Expect, Layout, OUTSIDE_KEPT};
use guest_fuzz::{counted, MemReader};
use libfuzzer_sys::fuzz_target;

/// Rows are capped so one input costs at most an 8 KiB bitset (and stays fast to scan).
const MAX_ROWS: u64 = 1 << 16;

#[derive(Debug, Arbitrary)]
struct Input {
    rows: u32,
    /// Prepend a correct byte-count header (so the fuzzer reaches the offsets easily).
    add_header: bool,
    /// Stale bytes appended after a correct header's payload (1.1.1+ rewrites).
    trailing: u8,
    max_read: u8,
    probes: Vec<(u32, u32)>,
    offsets: Vec<u8>,
}

/// Out-of-range offsets `DeletedSet` keeps for messages.


#[derive(Debug)]
enum Model {
    /// The layout, the deleted rows, and the offsets outside the segment with their positions.
    Ok(Layout, BTreeSet<u64>, Vec<(i32, u64)>),
    BadLayout,
}

fn model(bytes: &[u8], rows: u64) -> Model {
    let size = bytes.len() as u64;
    let (layout, start, len) = if size == 0 {
        return Model::Ok(Layout::Empty, BTreeSet::new(), vec![]);
    } else if size >= 8 {
        let claimed = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        if claimed % 4 == 0 && claimed == size - 8 {
            (Layout::Counted, 8, claimed)
        } else if claimed % 4 == 0 && claimed < size - 8 {
            // The spec's reading comes first (no meta given): the header, stale bytes after it.
            (Layout::CountedWithTrailing(size - 8 - claimed), 8, claimed)
        } else if size % 4 == 0 {
            (Layout::HeaderLess, 0, size)
        } else {
            return Model::BadLayout;
        }
    } else if size % 4 == 0 {
        (Layout::HeaderLess, 0, size)
    } else {
        return Model::BadLayout;
    };
    let (mut set, mut outside) = (BTreeSet::new(), Vec::new());
    for (i, c) in bytes[start as usize..(start + len) as usize].chunks_exact(4).enumerate() {
        let v = i32::from_le_bytes(c.try_into().unwrap());
        if v < 0 || v as u64 >= rows {
            outside.push((v, start + 4 * i as u64));
        } else {
            set.insert(v as u64);
        }
    }
    Model::Ok(layout, set, outside)
}

fuzz_target!(|input: Input| {
    let rows = input.rows as u64 % (MAX_ROWS + 1);
    let bytes = if input.add_header {
        let mut b = counted(&input.offsets[..input.offsets.len() / 4 * 4]);
        b.extend(std::iter::repeat(0xA5).take(input.trailing as usize));
        b
    } else {
        input.offsets.clone()
    };
    let reader = MemReader::new(bytes.clone(), input.max_read as usize);
    let got = DeletedSet::read(&reader, "t/s/deleted_docs", rows, Expect::default());
    match (model(&bytes, rows), got) {
        (Model::Ok(layout, mut set, outside), Ok((mut d, got_layout))) => {
            assert_eq!(got_layout, layout);
            assert_eq!(d.outside, outside.len() as u64);
            assert_eq!(d.outside_first, outside[..outside.len().min(OUTSIDE_KEPT)]);
            match (d.outside_error("t/s/deleted_docs"), outside.first()) {
                (None, None) => {}
                (Some(Error::InvalidInput { offset, reason, .. }), Some(&(v, at))) => {
                    assert_eq!(offset, Some(at), "{reason}");
                    assert!(reason.contains(&format!("offset {v} is outside the segment")), "{reason}");
                }
                (e, o) => panic!("outside_error {e:?} for first outside offset {o:?}"),
            }
            check(&d, &set, rows, &input.probes);
            // Rows dropped later (the bad-data policy) join the set; out-of-range ones do not.
            for &(a, _) in input.probes.iter().take(8) {
                let r = a as u64 % (rows + 2);
                d.add(r);
                if r < rows {
                    set.insert(r);
                }
            }
            check(&d, &set, rows, &input.probes);
        }
        (Model::BadLayout, Err(Error::InvalidInput { offset: Some(0), .. })) => {}
        (m, got) => panic!("model says {m:?}, DeletedSet::read says {got:?}"),
    }
});

fn check(d: &DeletedSet, set: &BTreeSet<u64>, rows: u64, probes: &[(u32, u32)]) {
    assert_eq!(d.count(), set.len() as u64);
    assert!(d.iter().eq(set.iter().copied()), "iter differs from the model");
    for &r in set {
        assert!(d.contains(r));
    }
    for r in [rows, rows + 1, u64::MAX] {
        assert!(!d.contains(r));
    }
    for &(a, b) in probes {
        let (a, b) = (a as u64 % (rows + 1), b as u64 % (rows + 1));
        let (start, end) = (a.min(b), a.max(b));
        assert_eq!(d.contains(a), set.contains(&a));
        assert_eq!(d.any_in(start, end), set.range(start..end).next().is_some(), "any_in({start}, {end})");
    }
}
