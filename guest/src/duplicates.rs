//! Primary keys that appear more than once among a collection's live rows. Milvus 1.x accepted
//! repeated ids (in one segment or across segments and partitions); a 2.x primary key is meant
//! to be unique, and a repeated one makes queries return either copy. The scan reports them;
//! `migration.duplicateIds: keep-last` also drops every copy but the newest (the highest segment
//! id, then the highest row), which is what a 1.x search would have shown last.
//!
//! Memory: 8 bytes per live row (one sorted list of ids), plus the repeated ids. The host sizes
//! the instance's memory for it.

use std::collections::HashMap;

use crate::dump::{open_segment, SegmentSource};
use crate::error::Result;
use crate::io::{read_exact, Reader, Report, Store};
use crate::plan::SegmentUnit;

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
fn each_live_id<R: Reader>(src: &SegmentSource<R>, mut f: impl FnMut(u64, i64)) -> Result<()> {
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

pub fn find_duplicates(store: &impl Store, report: &impl Report, units: &[SegmentUnit], keep_last: bool) -> Result<DuplicateReport> {
    let open = |u: &SegmentUnit| open_segment(store, report, &u.table_id, &u.segment_id, u.vector, u.dim, &format!("collection {:?}", u.collection));
    let mut out = DuplicateReport { drops: vec![vec![]; units.len()], ..Default::default() };
    // Each segment is opened once, for both passes. One that cannot be read is left out here:
    // its own unit fails with the reason, and a dump with a failed unit is not complete.
    let sources: Vec<_> = units.iter().map(|u| open(u).ok()).collect();
    let mut ids = Vec::new();
    for src in sources.iter().flatten() {
        let _ = each_live_id(src, |_, id| ids.push(id));
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
    let mut newest: HashMap<i64, (usize, u64)> = HashMap::new();
    for k in order {
        let Some(src) = &sources[k] else { continue };
        let mut seen = Vec::new();
        let read = each_live_id(src, |row, id| {
            if repeated.binary_search(&id).is_ok() {
                seen.push((row, id));
            }
        });
        if read.is_err() {
            continue;
        }
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
            rows: ids.len() as u64,
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
        let r = find_duplicates(&store, &MemReport::default(), &units, false).unwrap();
        assert_eq!((r.ids, r.repeated_ids, r.extra_copies, r.examples.clone()), (7, 1, 3, vec![7]));
        assert!(r.drops.iter().all(Vec::is_empty), "keep-all drops nothing");

        let r = find_duplicates(&store, &MemReport::default(), &units, true).unwrap();
        // The newest copy of 7 is segment 300 row 0; the others go.
        assert_eq!(r.drops, vec![vec![], vec![0], vec![0, 2]]);
    }
}
