//! The description of an installation (JSON or Rust values).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub collections: Vec<CollectionSpec>,
    /// Seeds vector contents.
    #[serde(default)]
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionSpec {
    pub name: String,
    /// Components (float) or bits (binary).
    pub dim: u32,
    /// 1 L2, 2 IP (float); 3..7 binary.
    #[serde(default = "one")]
    pub metric: i64,
    #[serde(default = "one")]
    pub engine_type: i64,
    #[serde(default = "empty_params")]
    pub index_params: String,
    /// Soft-dropped (state = 1): must not be migrated.
    #[serde(default)]
    pub dropped: bool,
    #[serde(default)]
    pub segments: Vec<SegmentSpec>,
    #[serde(default)]
    pub partitions: Vec<PartitionSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    pub tag: String,
    #[serde(default)]
    pub dropped: bool,
    #[serde(default)]
    pub segments: Vec<SegmentSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SegmentSpec {
    pub rows: u64,
    /// deleted_docs offsets exactly as written: unsorted and repeated are allowed.
    #[serde(default)]
    pub deleted: Vec<i32>,
    /// Write deleted_docs in the older header-less form.
    #[serde(default)]
    pub header_less_deletes: bool,
    /// Offsets written after the counted ones, as stale bytes (not deletions).
    #[serde(default)]
    pub stale_deletes: Vec<i32>,
    /// Leave deleted_docs out (the meta still counts the deletions).
    #[serde(default)]
    pub no_deleted_docs: bool,
    /// Indexed: a BACKUP raw row plus an INDEX twin row and an index file.
    #[serde(default)]
    pub indexed: bool,
    /// TO_INDEX (2) instead of RAW (1) for an unindexed segment.
    #[serde(default)]
    pub to_index: bool,
    /// A stale segment (TO_DELETE row and its files still on disk): must not be migrated.
    #[serde(default)]
    pub stale: bool,
    /// First id; ids are consecutive from here. Default: derived from the segment number.
    #[serde(default)]
    pub first_id: Option<i64>,
}

fn one() -> i64 {
    1
}

fn empty_params() -> String {
    "{}".into()
}

impl Spec {
    /// One float collection (L2, FLAT) with these segments in its default partition.
    pub fn one_collection(seed: u64, name: &str, dim: u32, segments: Vec<SegmentSpec>) -> Spec {
        Spec {
            seed,
            collections: vec![CollectionSpec {
                name: name.to_string(),
                dim,
                metric: 1,
                engine_type: 1,
                index_params: "{}".into(),
                dropped: false,
                segments,
                partitions: vec![],
            }],
        }
    }
}

impl CollectionSpec {
    pub fn binary(&self) -> bool {
        (3..=7).contains(&self.metric)
    }

    pub fn row_bytes(&self) -> usize {
        if self.binary() {
            self.dim as usize / 8
        } else {
            self.dim as usize * 4
        }
    }
}
