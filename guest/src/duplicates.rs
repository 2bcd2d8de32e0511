//! Primary keys that appear more than once among a collection's live rows. Milvus 1.x accepted
//! repeated ids (in one segment or across segments and partitions); a 2.x primary key is meant
//! to be unique, and a repeated one makes queries return either copy. The scan reports them;
//! `migration.duplicateIds: keep-last` also drops every copy but the newest (the highest segment
//! id, then the highest row), which is what a 1.x search would have shown last.
//!
//! Memory: 8 bytes per live row (one sorted list of ids), plus the repeated ids. The host sizes
//! the instance's memory for it.
use crate::prelude::*;

use alloc::collections::BTreeMap;

use crate::dump::{open_segment, unit_expect, SegmentSource};
use crate::error::{Error, Result};
use crate::io::{read_exact, Level, Reader, Report, Store};
use crate::plan::{DumpOptions, SegmentUnit};

/// Examples of repeated ids kept for the report.
const EXAMPLES: usize = 10;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DuplicateReport {
    /// Live rows whose ids were checked.
    pub ids: u64,
    /// Distinct ids that appear more than once.
    pub repeated_ids: u64,
    /// Copies beyond the first of each repeated id.
    pub extra_copies: u64,
    pub examples: Vec<i64>,
    /// Per unit (in the order given): rows to drop (keep-last), ascending.
    pub drops: Vec<Vec<u64>>,
}

/// Calls `f(row, id)` for each live row of a segment, reading ids in chunks.
pub fn each_live_id<R: Reader>(src: &SegmentSource<R>, mut f: impl FnMut(u64, i64)) -> Result<()> {
    const CHUNK: u64 = 64 * 1024;
    src.uid.reader.seek(8)?;
    let mut row = 0;
    while row < src.rows {
        let n = CHUNK.min(src.rows - row);
        let buf = read_exact(&src.uid.reader, (n * 8) as usize, &src.uid.path, 8 + row * 8)?;
        for (i, c) in buf.chunks_exact(8).enumerate() {
            let r = row + i as u64;
            if !src.deleted.contains(r) {
                f(r, i64::from_le_bytes(c.try_into().expect("8 bytes")));
            }
        }
        row += n;
    }
    Ok(())
}

/// Segment ids are 1.x file ids (creation times), so numeric order is age order.
fn age(u: &SegmentUnit) -> (u64, &str) {
    (u.segment_id.parse().unwrap_or(u64::MAX), u.segment_id.as_str())
}

pub fn find_duplicates(store: &impl Store, report: &impl Report, units: &[SegmentUnit], opts: &DumpOptions) -> Result<DuplicateReport> {
    let keep_last = opts.keep_last;
    let open = |u: &SegmentUnit| {
        open_segment(store, report, &u.table_id, &u.segment_id, u.vector, u.dim, &format!("collection {:?}", u.collection), unit_expect(u, opts))
    };
    let mut out = DuplicateReport { drops: vec![vec![]; units.len()], ..Default::default() };
    // Each segment is opened once, for both passes. Under keep-all, one that cannot be read is
    // left out here: its own unit fails with the reason, and a dump with a failed unit is not
    // complete. Under keep-last it stops the scan: its ids could be the newer copies of others'.
    let mut sources = Vec::new();
    let mut ids = Vec::new();
    for u in units {
        let src = open(u).and_then(|src| each_live_id(&src, |_, id| ids.push(id)).map(|_| src));
        match src {
            Ok(src) => sources.push(Some(src)),
            Err(e) if keep_last => {
                return Err(Error::Other(format!("segment {} of collection {:?} could not be read for repeated ids: {e}", u.segment_id, u.collection)))
            }
            Err(e) => {
                report.log(Level::Warn, &format!("segment {} of collection {:?}: its ids were not checked for repeats ({e})", u.segment_id, u.collection));
                sources.push(None);
            }
        }
    }
    out.ids = ids.len() as u64;
    ids.sort_unstable();
    let mut repeated: Vec<i64> = Vec::new();
    for w in ids.windows(2) {
        if w[0] == w[1] {
            out.extra_copies += 1;
            if repeated.last() != Some(&w[0]) {
                repeated.push(w[0]);
            }
        }
    }
    drop(ids);
    out.repeated_ids = repeated.len() as u64;
    out.examples = repeated.iter().take(EXAMPLES).copied().collect();
    if !keep_last || repeated.is_empty() {
        return Ok(out);
    }
    // Oldest segment first: each later copy displaces the one seen before it.
    let mut order: Vec<usize> = (0..units.len()).filter(|&k| sources[k].is_some()).collect();
    order.sort_by(|&a, &b| age(&units[a]).cmp(&age(&units[b])));
    // A BTreeMap, not a HashMap: std's HashMap seeds itself from the host's randomness (an import
    // outside the world, wasi:random/insecure-seed); only the repeated ids are in it.
    let mut newest: BTreeMap<i64, (usize, u64)> = BTreeMap::new();
    for k in order {
        let Some(src) = &sources[k] else { continue };
        let mut seen = Vec::new();
        each_live_id(src, |row, id| {
            if repeated.binary_search(&id).is_ok() {
                seen.push((row, id));
            }
        })?;
        for (row, id) in seen {
            if let Some((u, r)) = newest.insert(id, (k, row)) {
                out.drops[u].push(r);
            }
        }
    }
    for d in &mut out.drops {
        d.sort_unstable();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::memory::{MemReport, MemStore};
    use crate::io::Role;
    use crate::meta::VectorKind;

    fn counted(payload: Vec<u8>) -> Vec<u8> {
        let mut v = (payload.len() as u64).to_le_bytes().to_vec();
        v.extend(payload);
        v
    }

    fn segment(store: &MemStore, seg: &str, ids: &[i64], deleted: &[i32]) -> SegmentUnit {
        store.put(Role::Source, &format!("t/{seg}/{seg}.uid"), counted(ids.iter().flat_map(|i| i.to_le_bytes()).collect()));
        store.put(Role::Source, &format!("t/{seg}/{seg}.rv"), counted(vec![0; ids.len() * 4]));
        store.put(Role::Source, &format!("t/{seg}/deleted_docs"), counted(deleted.iter().flat_map(|d| d.to_le_bytes()).collect()));
        SegmentUnit {
            collection: "c".into(),
            partition_tag: String::new(),
            table_id: "t".into(),
            segment_id: seg.into(),
            vector: VectorKind::Float,
            dim: 1,
            rows: (ids.len() - deleted.len()) as u64,
            file_size: 0,
            output_dir: format!("c/_default/{seg}"),
            drop_rows: vec![],
        }
    }

    #[test]
    fn repeated_ids_are_counted_and_keep_last_drops_the_older_copies() {
        let store = MemStore::default();
        // 7 repeats inside segment 200 and in 100 and 300; 9 appears in 100 but that row is deleted.
        let units = vec![
            segment(&store, "300", &[7, 1], &[]),
            segment(&store, "100", &[7, 9, 2], &[1]),
            segment(&store, "200", &[7, 9, 7], &[]),
        ];
        let keep_all = DumpOptions::default();
        let keep_last = DumpOptions { keep_last: true, ..Default::default() };
        let r = find_duplicates(&store, &MemReport::default(), &units, &keep_all).unwrap();
        assert_eq!((r.ids, r.repeated_ids, r.extra_copies, r.examples.clone()), (7, 1, 3, vec![7]));
        assert!(r.drops.iter().all(Vec::is_empty), "keep-all drops nothing");

        let r = find_duplicates(&store, &MemReport::default(), &units, &keep_last).unwrap();
        // The newest copy of 7 is segment 300 row 0; the others go.
        assert_eq!(r.drops, vec![vec![], vec![0], vec![0, 2]]);

        // A segment that cannot be read: keep-all reports the others and warns; keep-last
        // stops (the unreadable segment might hold the newest copies).
        let mut broken = units.clone();
        broken.push(segment(&store, "400", &[7], &[]));
        store.put(Role::Source, "t/400/400.uid", vec![1, 2, 3]);
        let log = MemReport::default();
        let r = find_duplicates(&store, &log, &broken, &keep_all).unwrap();
        assert_eq!(r.repeated_ids, 1);
        assert!(log.lines.borrow().iter().any(|(_, l)| l.contains("segment 400") && l.contains("not checked")), "{:?}", log.lines.borrow());
        let e = find_duplicates(&store, &MemReport::default(), &broken, &keep_last).unwrap_err().to_string();
        assert!(e.contains("segment 400") && e.contains("repeated ids"), "{e}");
    }
}
