//! The bad-data policy (`migration.badData`): what a dump does with rows Milvus 2.x would refuse
//! or that cannot be paired. `fail` stops with the file, the offset and the reason; `skip` drops
//! the row and counts it; `reject` drops it and also writes it, with the reason, to
//! `_rejects/<segment dir>.jsonl` in the target store (one JSON object a line, like pgloader's
//! reject files), so nothing is lost without a trace.
use crate::prelude::*;

use serde_json::{json, Value};

use crate::error::Result;
use crate::io::{Role, Store, Writer, Written};
use crate::meta::VectorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    #[default]
    Fail,
    Skip,
    Reject,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Fail => "fail",
            Policy::Skip => "skip",
            Policy::Reject => "reject",
        }
    }
}

const EXPONENT: u32 = 0x7f80_0000;

fn non_finite(c: &[u8]) -> bool {
    u32::from_le_bytes(c.try_into().expect("4 bytes")) & EXPONENT == EXPONENT
}

/// The index (in values) of the first NaN or ±Inf among the little-endian f32 values of
/// `bytes`. Blocks of 64 values are first tested with a branch-free fold, which vectorizes.
pub fn first_non_finite(bytes: &[u8]) -> Option<usize> {
    for (b, block) in bytes.chunks(256).enumerate() {
        if block.chunks_exact(4).fold(false, |bad, c| bad | non_finite(c)) {
            return block.chunks_exact(4).position(non_finite).map(|i| b * 64 + i);
        }
    }
    None
}

/// `NaN`, `inf` or `-inf`, for messages.
pub fn float_name(bytes: [u8; 4]) -> String {
    let v = f32::from_le_bytes(bytes);
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v}")
    }
}

/// A vector as JSON: numbers, with non-finite values as the strings `NaN`, `inf`, `-inf`
/// (JSON has no such numbers); binary vectors as hex.
fn vector_json(kind: VectorKind, bytes: &[u8]) -> Value {
    match kind {
        VectorKind::Binary => Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect()),
        VectorKind::Float => Value::Array(
            bytes
                .chunks_exact(4)
                .map(|c| {
                    let v = f32::from_le_bytes(c.try_into().expect("4 bytes"));
                    serde_json::Number::from_f64(v as f64).map_or_else(|| Value::String(float_name(c.try_into().expect("4 bytes"))), Value::Number)
                })
                .collect(),
        ),
    }
}

/// One dropped row (or ignored deletion) as the policy sees it.
pub struct Dropped<'a> {
    /// The file the problem is in.
    pub file: &'a str,
    /// The row offset in the segment (for an ignored deletion: the offset it named).
    pub row: i64,
    pub id: Option<i64>,
    pub vector: Option<&'a [u8]>,
    pub reason: String,
}

/// What was dropped, for the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A row the bad-data policy dropped.
    Row,
    /// An older copy of a repeated primary key (keep-last).
    Duplicate,
    /// A deletion of a row outside the segment, ignored.
    Deletion,
}

/// Where a segment's dropped rows go: counted, and for `reject` written as they come, so
/// memory stays bounded however many there are.
pub struct Rejects<'s, S: Store> {
    store: &'s S,
    policy: Policy,
    kind: VectorKind,
    path: String,
    writer: Option<S::W>,
    pub rows: u64,
    pub duplicates: u64,
    pub deletes: u64,
}

impl<'s, S: Store> Rejects<'s, S> {
    pub fn new(store: &'s S, policy: Policy, kind: VectorKind, output_dir: &str) -> Self {
        Rejects { store, policy, kind, path: format!("_rejects/{output_dir}.jsonl"), writer: None, rows: 0, duplicates: 0, deletes: 0 }
    }

    /// Counts (and for `reject`, writes) a dropped row or an ignored deletion.
    pub fn drop(&mut self, d: Dropped, kind: Kind) -> Result<()> {
        *match kind {
            Kind::Row => &mut self.rows,
            Kind::Duplicate => &mut self.duplicates,
            Kind::Deletion => &mut self.deletes,
        } += 1;
        let deletion = kind == Kind::Deletion;
        if self.policy != Policy::Reject {
            return Ok(());
        }
        if self.writer.is_none() {
            self.writer = Some(self.store.create(Role::Target, &self.path)?);
        }
        let mut line = json!({"file": d.file, "reason": d.reason});
        line[if deletion { "deletedOffset" } else { "row" }] = json!(d.row);
        if let Some(id) = d.id {
            line["id"] = json!(id);
        }
        if let Some(v) = d.vector {
            line["vector"] = vector_json(self.kind, v);
        }
        let mut text = line.to_string();
        text.push('\n');
        self.writer.as_ref().expect("opened above").write(text.as_bytes())
    }

    /// Publishes the reject file, if anything was rejected.
    pub fn finish(self) -> Result<Option<Written>> {
        self.writer.map(|w| w.finish()).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::memory::MemStore;

    fn bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|f| f.to_le_bytes()).collect()
    }

    #[test]
    fn finds_the_first_nan_or_infinity() {
        assert_eq!(first_non_finite(&bytes(&[1.0, -0.0, f32::MAX, f32::MIN_POSITIVE])), None);
        let mut v = vec![0.5f32; 300];
        assert_eq!(first_non_finite(&bytes(&v)), None);
        v[130] = f32::NEG_INFINITY;
        v[200] = f32::NAN;
        assert_eq!(first_non_finite(&bytes(&v)), Some(130));
        assert_eq!(first_non_finite(&bytes(&v[131..])), Some(69));
        assert_eq!(float_name(f32::NAN.to_le_bytes()), "NaN");
        assert_eq!(float_name(f32::INFINITY.to_le_bytes()), "inf");
    }

    #[test]
    fn reject_lines_keep_the_row_and_the_reason() {
        let store = MemStore::default();
        let mut r = Rejects::new(&store, Policy::Reject, VectorKind::Float, "c/_default/7");
        let v = bytes(&[1.5, f32::NAN]);
        r.drop(Dropped { file: "t/7/7.rv", row: 3, id: Some(42), vector: Some(&v), reason: "NaN".into() }, Kind::Row).unwrap();
        r.drop(Dropped { file: "t/7/deleted_docs", row: 99, id: None, vector: None, reason: "outside".into() }, Kind::Deletion).unwrap();
        assert_eq!((r.rows, r.deletes), (1, 1));
        let w = r.finish().unwrap().unwrap();
        assert_eq!(w.path, "_rejects/c/_default/7.jsonl");
        let text = String::from_utf8(store.get(Role::Target, &w.path).unwrap()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0], json!({"file": "t/7/7.rv", "row": 3, "id": 42, "vector": [1.5, "NaN"], "reason": "NaN"}));
        assert_eq!(lines[1]["deletedOffset"], 99);

        let mut skip = Rejects::new(&store, Policy::Skip, VectorKind::Float, "c/_default/8");
        skip.drop(Dropped { file: "f", row: 0, id: None, vector: None, reason: String::new() }, Kind::Row).unwrap();
        assert_eq!(skip.rows, 1);
        assert!(skip.finish().unwrap().is_none(), "skip writes no file");
    }
}
