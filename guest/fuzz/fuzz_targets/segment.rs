//! The segment decoders: `CountedFile::open` / `rows` on the raw `.uid` and `.rv` bytes, then
//! a whole `dump::dump_segment` over an in-memory store whose `.rv`, `.uid` and `deleted_docs`
//! come from the fuzzer (well-formed, corrupted or raw; NaN/Inf vectors; keep-last drops; any
//! bad-data policy). It must never panic. When it succeeds, the npy files it wrote (headers as
//! `npy::header` makes them, the first group's also read with npyz) must hold exactly the live
//! rows, in order: paired rows, not deleted, not dropped (keep-last rows and, under skip/reject,
//! exactly the rows with a non-finite float); the target holds only those files and the reject
//! file; progress counts each row once.
#![no_main]

use std::collections::BTreeSet;

use arbitrary::Arbitrary;
use guest::bad_data::Policy;
use guest::dump::{dump_segment, FileGroups};
use guest::io::Role;
use guest::meta::VectorKind;
use guest::npy::{header, Dtype};
use guest::plan::{DumpOptions, SegmentUnit};
use guest::segment::deleted::Expect;
use guest::segment::{CountedFile, DeletedSet};
use guest_fuzz::{counted, MemReader, MemReport, MemStore};
use libfuzzer_sys::fuzz_target;

/// Generated vector payloads stay below this (a huge dimension gets a payload that cannot match).
const MAX_GENERATED: u64 = 64 * 1024;

#[derive(Debug, Arbitrary)]
enum Dim {
    /// A valid dimension: float 1..=64, binary 8..=128.
    Small(u8),
    Any(u32),
}

#[derive(Debug, Arbitrary)]
enum FileSpec {
    /// A correct counted file for `rows` rows.
    Good,
    Missing,
    /// The correct payload under a wrong byte count.
    WrongCount(u64),
    /// The correct file cut short (or with junk appended when `grow`).
    Resize { by: u16, grow: bool },
    Raw(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum DelLayout {
    Counted,
    HeaderLess,
    CountedWithTrailing(u8),
}

#[derive(Debug, Arbitrary)]
enum DelSpec {
    Missing,
    /// Offsets taken modulo rows + 2 (so a few land just outside the segment).
    Offsets(DelLayout, Vec<u16>),
    /// Every row r with r % (n + 1) == phase: many short runs (the pass-through path).
    EveryNth(DelLayout, u8, u8),
    Raw(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Extra {
    SecondUid,
    SecondRv,
    BloomFilter,
    Subdirectory,
}

#[derive(Debug, Arbitrary)]
enum Size<T> {
    Small(u16),
    Any(T),
}

#[derive(Debug, Arbitrary)]
struct Input {
    binary: bool,
    dim: Dim,
    rows: u16,
    uid: FileSpec,
    rv: FileSpec,
    deleted: DelSpec,
    extras: Vec<Extra>,
    read_chunk: Size<u32>,
    max_group_bytes: Size<u64>,
    meta_rows: u64,
    max_read: u8,
    seed: u8,
    policy: u8,
    /// Clear the top exponent bit of every generated f32 (so every value is finite).
    finite: bool,
    /// (row, component, kind): set a generated float to NaN, +Inf or -Inf.
    poison: Vec<(u16, u8, u8)>,
    /// Rows the plan drops as older copies of a repeated id (keep-last), modulo rows + 2.
    drop_rows: Vec<u16>,
}

fn file(spec: &FileSpec, payload: Vec<u8>) -> Option<Vec<u8>> {
    Some(match spec {
        FileSpec::Good => counted(&payload),
        FileSpec::Missing => return None,
        FileSpec::WrongCount(c) => {
            let mut f = counted(&payload);
            f[..8].copy_from_slice(&c.to_le_bytes());
            f
        }
        FileSpec::Resize { by, grow } => {
            let mut f = counted(&payload);
            if *grow {
                f.extend(std::iter::repeat(0x5A).take(*by as usize));
            } else {
                f.truncate(f.len().saturating_sub(*by as usize));
            }
            f
        }
        FileSpec::Raw(b) => b.clone(),
    })
}

fn deleted_file(layout: &DelLayout, offsets: impl Iterator<Item = i32>) -> Vec<u8> {
    let list: Vec<u8> = offsets.flat_map(i32::to_le_bytes).collect();
    match layout {
        DelLayout::Counted => counted(&list),
        DelLayout::HeaderLess => list,
        DelLayout::CountedWithTrailing(n) => {
            let mut f = counted(&list);
            f.extend(std::iter::repeat(0xEE).take(*n as usize));
            f
        }
    }
}

/// The checks on the counted-header decoder alone, against its spec.
fn check_counted(bytes: &[u8], row_bytes: u64, max_read: usize) {
    let got = CountedFile::open(MemReader::new(bytes.to_vec(), max_read), "t/s/f");
    let valid = bytes.len() >= 8 && u64::from_le_bytes(bytes[..8].try_into().unwrap()).checked_add(8) == Some(bytes.len() as u64);
    match got {
        Ok(f) => {
            assert!(valid, "accepted a bad header");
            assert_eq!(f.payload, bytes.len() as u64 - 8);
            let rows = f.rows(row_bytes, "rows");
            assert_eq!(rows.is_ok(), f.payload % row_bytes == 0);
            if let Ok(n) = rows {
                assert_eq!(n * row_bytes, f.payload);
            }
        }
        Err(e) => assert!(!valid, "rejected a good header: {e}"),
    }
}

/// The body (after the header) of an npy file written by the dump. Its header must be the one
/// `npy::header` makes (checked against numpy's text by the npy_roundtrip target); `npyz` reads
/// it too when `with_npyz` (its Python-literal parser is slow, so once per segment).
fn npy_body(bytes: &[u8], dtype: Dtype, shape: &[u64], with_npyz: bool) -> Vec<u8> {
    let h = header(dtype, shape);
    assert!(bytes.starts_with(&h), "npy header is not npy::header({dtype:?}, {shape:?})");
    if with_npyz {
        let npy = npyz::NpyFile::new(bytes).expect("the dump wrote an npy file npyz cannot read");
        assert_eq!(npy.shape(), shape);
        assert_eq!(npy.order(), npyz::Order::C);
        assert_eq!(npy.dtype().descr(), format!("'{}'", dtype.descr()));
    }
    bytes[h.len()..].to_vec()
}

fuzz_target!(|input: Input| {
    let vector = if input.binary { VectorKind::Binary } else { VectorKind::Float };
    let dim = match input.dim {
        Dim::Small(d) if input.binary => 8 * (1 + d as u32 % 16),
        Dim::Small(d) => 1 + d as u32 % 64,
        Dim::Any(d) => d,
    };
    let rows = input.rows as u64 % 1025;
    let row_bytes = vector.row_bytes(dim);

    // Row i: id 1000 + i (so ids name rows), vector bytes a pattern of i, the seed and the byte.
    let ids: Vec<u8> = (0..rows).flat_map(|i| (1000 + i as i64).to_le_bytes()).collect();
    let mut vecs: Vec<u8> = match row_bytes {
        Some(rb) if rows * rb <= MAX_GENERATED => (0..rows * rb)
            .map(|k| ((k / rb) as u8).wrapping_mul(31) ^ (k % rb) as u8 ^ input.seed)
            .collect(),
        _ => Vec::new(),
    };
    if vector == VectorKind::Float && !vecs.is_empty() {
        if input.finite {
            vecs.iter_mut().skip(3).step_by(4).for_each(|b| *b &= 0x3f);
        }
        for &(r, c, kind) in &input.poison {
            let at = (r as usize % rows as usize) * dim as usize * 4 + (c as usize % dim as usize) * 4;
            let v = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][kind as usize % 3];
            vecs[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    // Short reads: a few bytes at a time (headers), or some multiple of 64; 0 is unlimited.
    let max_read = match input.max_read {
        m @ 0..=7 => m as usize,
        m => m as usize * 64,
    };
    let store = MemStore { max_read, ..Default::default() };
    let uid = file(&input.uid, ids);
    let rv = file(&input.rv, vecs);
    if let Some(b) = uid {
        check_counted(&b, 8, max_read);
        store.put(Role::Source, "t/s/s.uid", b);
    }
    if let Some(b) = rv {
        check_counted(&b, row_bytes.unwrap_or(1), max_read);
        store.put(Role::Source, "t/s/s.rv", b);
    }
    let span = rows as u32 + 2;
    let deleted = match &input.deleted {
        DelSpec::Missing => None,
        DelSpec::Offsets(l, o) => Some(deleted_file(l, o.iter().map(|&v| (v as u32 % span) as i32))),
        DelSpec::EveryNth(l, n, phase) => {
            let n = *n as u64 + 1;
            Some(deleted_file(l, (0..rows).filter(|r| r % n == *phase as u64 % n).map(|r| r as i32)))
        }
        DelSpec::Raw(b) => Some(b.clone()),
    };
    if let Some(b) = &deleted {
        store.put(Role::Source, "t/s/deleted_docs", b.clone());
    }
    for e in &input.extras {
        match e {
            Extra::SecondUid => store.put(Role::Source, "t/s/t.uid", counted(&[])),
            Extra::SecondRv => store.put(Role::Source, "t/s/t.rv", counted(&[])),
            Extra::BloomFilter => store.put(Role::Source, "t/s/bloom_filter", vec![1, 2, 3]),
            Extra::Subdirectory => store.put(Role::Source, "t/s/x.rv/y", vec![]),
        }
    }

    let unit = SegmentUnit {
        collection: "c".into(),
        partition_tag: String::new(),
        table_id: "t".into(),
        segment_id: "s".into(),
        vector,
        dim,
        rows: input.meta_rows,
        file_size: 0,
        output_dir: "c/_default/s".into(),
        // The plan lists each such row once, ascending.
        drop_rows: input.drop_rows.iter().map(|&r| r as u64 % (rows + 2)).collect::<BTreeSet<u64>>().into_iter().collect(),
    };
    let opts = DumpOptions {
        read_chunk: match input.read_chunk {
            Size::Small(n) => n as u32,
            Size::Any(n) => n,
        },
        max_group_bytes: match input.max_group_bytes {
            Size::Small(n) => n as u64,
            Size::Any(n) => n,
        },
        bad_data: [Policy::Fail, Policy::Skip, Policy::Reject][input.policy as usize % 3],
        ..Default::default()
    };
    let report = MemReport::default();
    let Ok(r) = dump_segment(&store, &report, &unit, &opts) else {
        return;
    };

    // It succeeded: the files were well formed, so the expected output follows from them.
    let policy = opts.bad_data;
    let row_bytes = row_bytes.expect("dump accepted an invalid dimension");
    // The files it used: the only ones ending in .uid and .rv (possibly an extra's).
    let only = |ext: &str| {
        let found: Vec<String> = store.paths(Role::Source).into_iter().filter(|p| p.ends_with(ext)).collect();
        assert_eq!(found.len(), 1, "dump succeeded with {ext} files {found:?}");
        store.get(Role::Source, &found[0]).unwrap()
    };
    let (uid, rv) = (only(".uid"), only(".rv"));
    let uid_rows = (uid.len() as u64 - 8) / 8;
    let rv_rows = (rv.len() as u64 - 8) / row_bytes;
    assert_eq!(uid.len() as u64, 8 + 8 * uid_rows);
    assert_eq!(rv.len() as u64, 8 + rv_rows * row_bytes);
    // Row i of .uid pairs with row i of .rv; the longer file's tail is unpaired.
    let paired = uid_rows.min(rv_rows);
    let unpaired = uid_rows.max(rv_rows) - paired;
    let del = match &deleted {
        // Which reading the meta's row count picks is the deleted_docs target's to check.
        Some(b) => {
            let expect = Expect { meta_rows: Some(unit.rows.saturating_sub(unpaired)), strict: opts.bad_data == Policy::Fail };
            DeletedSet::read(&MemReader::new(b.clone(), 0), "d", paired, expect).expect("deleted_docs read").0
        }
        None => DeletedSet::empty(paired),
    };
    let rb = row_bytes as usize;
    let vector_of = |r: u64| &rv[8 + rb * r as usize..][..rb];
    // Older copies of repeated ids, then (not among those) rows with a NaN or infinite float.
    let keep_last: Vec<u64> = unit.drop_rows.iter().copied().filter(|&r| r < paired && !del.contains(r)).collect();
    let non_finite: Vec<u64> = (0..paired)
        .filter(|&r| !del.contains(r) && keep_last.binary_search(&r).is_err())
        .filter(|&r| vector == VectorKind::Float && vector_of(r).chunks_exact(4).any(|c| !f32::from_le_bytes(c.try_into().unwrap()).is_finite()))
        .collect();
    if policy == Policy::Fail {
        assert_eq!(unpaired, 0, "fail policy accepted unpaired rows");
        assert_eq!(del.outside, 0, "fail policy accepted deletions outside the segment");
        assert!(non_finite.is_empty(), "fail policy accepted non-finite rows {non_finite:?}");
    }
    let mut dropped: Vec<u64> = keep_last.iter().chain(&non_finite).copied().collect();
    dropped.sort_unstable();
    assert_eq!(r.dropped_rows, dropped, "dropped rows are not the keep-last rows and the live rows with NaN/Inf");
    let live: Vec<u64> = (0..paired).filter(|&r| !del.contains(r) && dropped.binary_search(&r).is_err()).collect();
    assert_eq!((r.rows_in, r.deleted, r.rows_out), (paired + unpaired, del.count(), live.len() as u64));
    assert_eq!(r.ignored_deletes, del.outside);
    assert_eq!(r.bytes_in, uid.len() as u64 + rv.len() as u64);
    // Progress counts each row once, even when a NaN/Inf row made the dump write twice.
    assert_eq!(report.rows.get(), live.len() as u64, "progress rows are not the rows written");
    assert!(report.bytes.get() <= r.bytes_in, "progress bytes {} beyond the {} bytes read", report.bytes.get(), r.bytes_in);

    // The reject file: one JSON line per dropped row, unpaired row and ignored deletion (the first 1000).
    let rejected = unpaired + dropped.len() as u64 + del.outside_first.len() as u64;
    let rejects_path = "_rejects/c/_default/s.jsonl";
    match (&r.rejects, policy == Policy::Reject && rejected > 0) {
        (None, false) => {}
        (Some(w), true) => {
            assert_eq!(w.path, rejects_path);
            let text = String::from_utf8(store.get(Role::Target, rejects_path).expect("reject file")).expect("UTF-8 rejects");
            assert_eq!(text.lines().count() as u64, rejected);
        }
        (w, _) => panic!("reject file {w:?}, expected one: {}", policy == Policy::Reject && rejected > 0),
    }
    let written: Vec<String> = store.paths(Role::Target).into_iter().filter(|p| p != rejects_path).collect();
    if live.is_empty() {
        assert!(r.files.is_empty() && written.is_empty(), "files written for a segment with no live rows: {written:?}");
        return;
    }
    let groups = FileGroups::new(live.len() as u64, row_bytes, opts.max_group_bytes, &unit.output_dir);
    assert_eq!(r.files.len() as u64, 2 * groups.count);
    let mut listed: Vec<String> = r.files.iter().map(|f| f.path.clone()).collect();
    listed.sort();
    assert_eq!(listed, written, "the report lists other files than are in the target");
    let (mut got_ids, mut got_vecs) = (Vec::new(), Vec::new());
    for k in 0..groups.count {
        let (dir, n) = (groups.dir(k), groups.rows(k));
        assert!(n > 0, "empty group {k}");
        assert_eq!(r.files[2 * k as usize].path, format!("{dir}/data.npy"));
        assert_eq!(r.files[2 * k as usize + 1].path, format!("{dir}/id.npy"));
        let id_file = store.get(Role::Target, &format!("{dir}/id.npy")).unwrap();
        got_ids.extend(npy_body(&id_file, Dtype::I8, &[n], k == 0));
        let data = store.get(Role::Target, &format!("{dir}/data.npy")).unwrap();
        got_vecs.extend(match vector {
            VectorKind::Float => npy_body(&data, Dtype::F4, &[n, dim as u64], k == 0),
            VectorKind::Binary => npy_body(&data, Dtype::U1, &[n, row_bytes], k == 0),
        });
    }
    let want_ids: Vec<u8> = live.iter().flat_map(|&r| uid[8 + 8 * r as usize..][..8].to_vec()).collect();
    let want_vecs: Vec<u8> = live.iter().flat_map(|&r| vector_of(r).to_vec()).collect();
    assert!(got_ids == want_ids, "ids differ from the live rows of the .uid");
    assert!(got_vecs == want_vecs, "vectors differ from the live rows of the .rv");
});
